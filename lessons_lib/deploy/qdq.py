"""Lower precision in the ONNX graph itself: fp16 initializers, and int8 as explicit Q/DQ nodes.

TensorRT 11 builds *strongly typed* networks only: the precision of every tensor is what the ONNX
file declares. The FP16/INT8 builder flags and the calibrator classes are gone
(NVIDIA, "Migrating from TensorRT 10.x to 11.x"), so

* fp16: the ONNX must hold fp16 tensors (:func:`to_fp16`, or export a ``.half()`` model);
* int8: the ONNX must carry ``QuantizeLinear -> DequantizeLinear`` pairs (:func:`insert_qdq`), with
  symmetric scales (zero point 0): one scale per activation tensor, one per output channel
  (axis 0) for weights. Calibration, which TensorRT used to do inside the builder, now happens
  before export: :func:`calibrate_activations` (KL / entropy thresholds from ``lessons_lib.quant``)
  and :func:`weight_scales` (per-channel ``max|W| / 127``).

``QuantizeLinear(x, s, 0) = saturate(round(x / s))`` to int8, ``DequantizeLinear(q, s, 0) = q * s``.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .. import quant
from .. import validate as V
from .onnx_export import as_model
from .ort import intermediate_outputs

QUANTIZABLE = ("Conv", "Gemm", "MatMul")


def quantizable_inputs(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """``(activations, weights)``: tensor names feeding input 0 and input 1 of every Conv / Gemm /
    MatMul -- where TensorRT expects Q/DQ pairs (activations per tensor, weights per channel).

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``(activations, weights)``: two lists of names in graph order, without repeats; an input 0 is listed
        only if it is not an initializer, an input 1 only if it is one.
    """
    m = as_model(model)
    inits = {i.name for i in m.graph.initializer}
    acts: list[str] = []
    weights: list[str] = []
    for n in m.graph.node:
        if n.op_type in QUANTIZABLE and len(n.input) >= 2:
            if n.input[0] not in inits and n.input[0] not in acts:
                acts.append(n.input[0])
            if n.input[1] in inits and n.input[1] not in weights:
                weights.append(n.input[1])
    return acts, weights


DEFAULT_METHOD = "entropy"
"""The one default threshold method of the calibration pipeline (lessons 11 and 15, ``int8.quantize_onnx``):
TensorRT's entropy (KL) calibration, with the ReLU zero spike handled as pytorch-quantization does."""
DEFAULT_ZERO_BIN = "copy_next"
ZERO_BINS = ("copy_next", "keep")
ALL_ZERO_SCALE = 1.0
"""Scale given to a tensor that was exactly zero on every calibration batch: any scale represents it exactly."""


def activation_histograms(model: onnx.ModelProto, names: list[str], batches: Iterable[torch.Tensor], *,
                          num_bins: int = 2048) -> dict[str, quant.Histogram]:
    """One :class:`lessons_lib.quant.Histogram` of ``|x|`` per tensor, over all ``batches`` (one pass of the
    float model through onnxruntime, with those tensors as extra outputs).

    Args:
        model: float ONNX model (``ModelProto`` or path).
        names: tensor names to calibrate (graph inputs or node outputs), e.g. from :func:`quantizable_inputs`.
        batches: iterable of ``Tensor[N, C, H, W]`` inputs; at least one.
        num_bins: histogram bins (TensorRT uses 2048).
    Returns:
        ``{name: Histogram}``; a tensor that was zero everywhere keeps ``counts is None`` (see
        :data:`ALL_ZERO_SCALE`).
    """
    names = V.sequence("names", names, V.string)
    num_bins = V.integer("num_bins", num_bins, 2)
    hists = {n: quant.Histogram(num_bins) for n in names}
    seen = 0
    for values in intermediate_outputs(model, list(names), batches):
        seen += 1
        for n, v in values.items():
            hists[n].update(torch.from_numpy(v))
    if seen == 0:
        raise ValueError("batches is empty: need at least one calibration batch")
    return hists


def scales_from_histograms(hists: Mapping[str, quant.Histogram], method: str = DEFAULT_METHOD, *,
                           num_bits: int = 8, zero_bin: str = DEFAULT_ZERO_BIN) -> dict[str, float]:
    """Symmetric scale ``T / (2^(b-1) - 1)`` per tensor, ``T = lessons_lib.quant.calibrate(hist, method)``.

    ``zero_bin="copy_next"`` (pytorch-quantization / ModelOpt) stops the spike of exact zeros after a
    ReLU (about half of all values here) from dominating the KL search; ``"keep"`` uses the raw
    histogram, which picks far too small thresholds on ReLU outputs (shown in lesson 15). It only
    affects ``method="entropy"``. A tensor that was all zero gets :data:`ALL_ZERO_SCALE`.

    Args:
        hists: ``{name: Histogram}`` from :func:`activation_histograms`.
        method: one of :data:`lessons_lib.quant.METHODS`.
        num_bits: integer bits (8 for int8).
        zero_bin: ``"copy_next"`` or ``"keep"``.
    Returns:
        ``{name: scale}`` (Python floats > 0).
    """
    V.mapping("hists", hists, what="a dict tensor name -> quant.Histogram")
    for n, h in hists.items():
        V.instance(f"hists[{n!r}]", h, quant.Histogram, "a lessons_lib.quant.Histogram")
    V.choice("method", method, quant.METHODS)
    V.choice("zero_bin", zero_bin, ZERO_BINS)
    qmax = 2 ** (quant.affine.check_bits(num_bits) - 1) - 1
    kw = {"zero_bin": zero_bin} if method == "entropy" else {}
    return {n: ALL_ZERO_SCALE if h.counts is None else quant.calibrate(h, method, num_bits=num_bits, **kw) / qmax
            for n, h in hists.items()}


def calibrate_activations(model: onnx.ModelProto, names: list[str], batches: Iterable[torch.Tensor], *,
                          method: str = DEFAULT_METHOD, num_bins: int = 2048,
                          zero_bin: str = DEFAULT_ZERO_BIN) -> dict[str, float]:
    """:func:`activation_histograms` then :func:`scales_from_histograms`: ``{tensor name: int8 scale}``.

    Args:
        model, names, batches, num_bins: as in :func:`activation_histograms`.
        method, zero_bin: as in :func:`scales_from_histograms` (defaults :data:`DEFAULT_METHOD`,
            :data:`DEFAULT_ZERO_BIN`).
    Returns:
        ``{name: scale}`` (Python floats > 0).
    """
    V.choice("method", method, quant.METHODS)
    V.choice("zero_bin", zero_bin, ZERO_BINS)
    return scales_from_histograms(activation_histograms(model, names, batches, num_bins=num_bins), method,
                                  zero_bin=zero_bin)


def weight_scales(model: onnx.ModelProto, names: list[str], *, reduce_range: bool = False) -> dict[str, np.ndarray]:
    """Per-output-channel symmetric scales ``max|W[c]| / 127`` (``quant.qparams_per_channel``, axis 0).

    ``reduce_range=True``: ``max|W[c]| / 64``, codes in [-64, 64], exactly onnxruntime's ``reduce_range``
    for int8 weights. It is the remedy for x86 CPUs without VNNI, whose int8 kernel sums pairs of u8 x s8
    products in a saturating int16 (:mod:`lessons_lib.quant.x86int8`): with ``|w| <= 64`` a pair stays at
    most ``2 * 255 * 64 = 32640 <= 32767``. The weights are still stored as int8; they lose one bit.

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).
        names: initializer (weight) names, e.g. the weights of :func:`quantizable_inputs`; may be empty.
        reduce_range: a bool, see above.

    Returns:
        ``{name: ndarray[C_out]}``: float32 scales, one per slice ``W[c]`` along axis 0.
    """
    V.boolean("reduce_range", reduce_range)
    m = as_model(model)
    names = V.sequence("names", names, V.string, min_len=0)
    inits = {i.name: i for i in m.graph.initializer}
    out = {}
    for n in names:
        if n not in inits:
            raise ValueError(f"names={names!r}: {n!r} is not an initializer (weight) of the model")
        w = torch.from_numpy(numpy_helper.to_array(inits[n]).copy())
        s, _ = quant.qparams_per_channel(w, axis=0, symmetric=True)
        if reduce_range:
            s = s * (127 / 64)
        out[n] = s.numpy().astype(np.float32)
    return out


def _scale_array(label: str, s: object) -> np.ndarray:
    """``s`` (a scale or per-channel scales) as float32 values, checked by ``quant.affine._check_scale``."""
    return quant.affine._check_scale(s, label).numpy().astype(np.float32)


def insert_qdq(model: onnx.ModelProto, activation_scales: Mapping[str, float],
               weight_scales: Mapping[str, object] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` with explicit, symmetric (zero point 0) int8 quantisation.

    Raises ``ValueError`` for unknown names, non-positive scales, a per-channel scale whose length
    differs from the weight's ``shape[0]``, or an opset below 13 (per-axis Q/DQ needs 13).

    Args:
        model: float ONNX model (``onnx.ModelProto`` or a path to an .onnx file), opset >= 13; not modified.
        activation_scales: ``{tensor: scale}``, one scale per tensor; the tensor (graph input or node output)
            gets ``QuantizeLinear -> DequantizeLinear`` and every consumer reads the DQ output.
        weight_scales: ``{initializer: scales}`` with ``scales`` a scalar or ``shape[0]`` values
            (per output channel, ``axis=0``); the weight is stored as int8 ``clip(round(W / s), -127, 127)``
            behind a ``DequantizeLinear`` (TensorRT's weight range is [-127, 127]). ``None``: no weight is quantised.

    Returns:
        ``onnx.ModelProto``: the quantised copy, checked by ``onnx.checker``.
    """
    m = onnx.ModelProto.FromString(as_model(model).SerializeToString())
    V.mapping("activation_scales", activation_scales, what="a dict tensor name -> scale")
    weight_scales = dict(V.mapping("weight_scales", weight_scales, what="a dict initializer name -> scales")
                         if weight_scales is not None else {})
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ValueError(f"model opset {opset} < 13: per-channel QuantizeLinear/DequantizeLinear need opset >= 13")
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    produced = {o for n in g.node for o in n.output} | {i.name for i in g.input}
    for name in activation_scales:
        if name not in produced or name in inits:
            raise ValueError(f"activation_scales: {name!r} is not a graph input or node output of the model")
    new_inits: list[TensorProto] = []
    renamed: dict[str, str] = {}
    head: list[onnx.NodeProto] = []

    for name, s in weight_scales.items():
        if name not in inits:
            raise ValueError(f"weight_scales: {name!r} is not an initializer of the model")
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        scale = _scale_array(f"weight_scales[{name!r}]", s)
        if scale.ndim > 1 or (scale.ndim == 1 and scale.size not in (1, w.shape[0])):
            raise ValueError(f"weight {name!r} has shape {list(w.shape)}: its scales must be a scalar or "
                             f"{w.shape[0]} values (axis 0), got shape {list(scale.shape)}")
        per_channel = scale.ndim == 1 and scale.size > 1
        scale = scale if per_channel else scale.reshape(())
        bshape = (-1,) + (1,) * (w.ndim - 1) if per_channel else ()
        q = np.clip(np.rint(w / scale.reshape(bshape)), -127, 127).astype(np.int8)
        zp = np.zeros(scale.shape, dtype=np.int8)
        new_inits += [numpy_helper.from_array(q, f"{name}_quantized"),
                      numpy_helper.from_array(scale, f"{name}_scale"),
                      numpy_helper.from_array(zp, f"{name}_zero_point")]
        attrs = {"axis": 0} if per_channel else {}
        head.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                                     [f"{name}_dq"], name=f"{name}_DequantizeLinear", **attrs))
        renamed[name] = f"{name}_dq"

    own_q: set[int] = set()

    def qdq_nodes(name: str) -> list[onnx.NodeProto]:
        s = _scale_array(f"activation_scales[{name!r}]", activation_scales[name])
        if s.size != 1:
            raise ValueError(f"activation {name!r} needs one scale (per tensor), got {s.size}")
        new_inits.extend([numpy_helper.from_array(s.reshape(()), f"{name}_scale"),
                          numpy_helper.from_array(np.zeros((), np.int8), f"{name}_zero_point")])
        renamed[name] = f"{name}_dq"
        qnode = helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_q"],
                                 name=f"{name}_QuantizeLinear")
        own_q.add(id(qnode))
        return [qnode,
                helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero_point"],
                                 [f"{name}_dq"], name=f"{name}_DequantizeLinear")]

    for i in g.input:
        if i.name in activation_scales:
            head += qdq_nodes(i.name)
    body: list[onnx.NodeProto] = []
    for n in g.node:
        body.append(n)
        for o in n.output:
            if o in activation_scales:
                body += qdq_nodes(o)
    for n in body:
        if id(n) in own_q:
            continue  # the Q node reads the original tensor
        for k, x in enumerate(n.input):
            if x in renamed:
                n.input[k] = renamed[x]
    drop = set(weight_scales)
    kept = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.node[:]
    g.node.extend(head + body)
    onnx.checker.check_model(m)
    return m


# ------------------------------------------------------------------------------------ fp16
def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every float32 initializer, ``Constant`` value, graph input/output and ``Cast`` to
    float turned into float16 -- an fp16 network as a strongly typed builder reads it.

    Values beyond fp16's range (|x| > 65504) raise ``ValueError`` instead of silently becoming inf.

    Args:
        model: float32 ONNX model (``onnx.ModelProto`` or a path to an .onnx file); not modified.

    Returns:
        ``onnx.ModelProto``: the float16 copy, with shapes re-inferred and checked by ``onnx.checker``.
    """
    m = onnx.ModelProto.FromString(as_model(model).SerializeToString())
    g = m.graph

    def half(t: TensorProto) -> TensorProto:
        a = numpy_helper.to_array(t)
        if np.abs(a).max(initial=0.0) > 65504:
            raise ValueError(f"tensor {t.name!r} has |x| up to {np.abs(a).max():.4g} > 65504 (fp16 max)")
        return numpy_helper.from_array(a.astype(np.float16), t.name)

    for k, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[k].CopyFrom(half(t))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(half(a.t))
            if n.op_type in ("Cast", "CastLike") and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]
    m = onnx.shape_inference.infer_shapes(m, check_type=True)
    onnx.checker.check_model(m)
    return m


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all initializer values (what fp16 halves and int8 quarters).

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``int``: the summed ``nbytes`` of the initializers, in bytes.
    """
    return sum(numpy_helper.to_array(i).nbytes for i in as_model(model).graph.initializer)


def qdq_summary(model: onnx.ModelProto) -> dict[str, object]:
    """Facts about a Q/DQ model: Q and DQ node counts, per-channel DQ count, distinct zero points.

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``{"QuantizeLinear": int, "DequantizeLinear": int, "per-channel DQ": int, "zero points": list[int]}``,
        the zero points sorted.
    """
    m = as_model(model)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    per_channel = sum(1 for n in dq if inits.get(n.input[1], np.zeros(())).ndim == 1)
    zps = sorted({int(v) for n in q + dq if len(n.input) > 2 and n.input[2] in inits
                  for v in np.atleast_1d(inits[n.input[2]]).ravel()})
    return {"QuantizeLinear": len(q), "DequantizeLinear": len(dq), "per-channel DQ": per_channel,
            "zero points": zps}


def scales_of(model: onnx.ModelProto) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Read the scales back from a Q/DQ model (ours or onnxruntime's ``quantize_static`` QDQ output):
    ``({activation: scale}, {weight: scales})``. An activation is the input of a ``QuantizeLinear``
    (onnxruntime's ``<output>_QuantizeLinear_Input`` renaming of a graph output is undone); a weight is
    an int8 initializer ``<name>_quantized`` behind a ``DequantizeLinear`` (both tools' naming); int32
    (bias) initializers are skipped.

    Args:
        model: Q/DQ ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``({activation: float}, {weight: ndarray})``: the weight scales as float32 arrays (one value per output
        channel, or 0-d for a per-tensor scale).
    """
    m = as_model(model)
    inits = {i.name: i for i in m.graph.initializer}
    suffix = "_QuantizeLinear_Input"
    acts = {n.input[0].removesuffix(suffix): float(numpy_helper.to_array(inits[n.input[1]]))
            for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[1] in inits}
    weights = {}
    for n in m.graph.node:
        src = inits.get(n.input[0]) if n.op_type == "DequantizeLinear" else None
        if src is not None and src.data_type == TensorProto.INT8 and n.input[0].endswith("_quantized"):
            weights[n.input[0][: -len("_quantized")]] = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
    return acts, weights
