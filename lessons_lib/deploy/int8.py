"""Real int8 inference with onnxruntime: where to put Q/DQ pairs so the CPU runs int8 kernels.

The Q/DQ insertion itself is :func:`lessons_lib.deploy.qdq.insert_qdq` (symmetric, zero point 0, weights
per output channel). This module adds what lesson 11 needs on top:

* **Where.** onnxruntime's CPU provider rewrites ``DequantizeLinear -> Conv -> QuantizeLinear`` into one
  ``QLinearConv`` (int8 x int8 -> int32 accumulate -> requantise: ``vpdpbusd`` on CPUs with VNNI, the
  saturating ``vpmaddubsw`` on AVX2 without it -- see :func:`default_reduce_range`). A Conv
  whose *output* has no Q node stays a float Conv fed by DQ nodes -- correct, but no faster. So besides
  the inputs of every Conv / Gemm (TensorRT's placement, :func:`deploy.qdq.quantizable_inputs`), the
  outputs of the Convs get a Q/DQ pair too (:func:`qdq_tensor_names`).
* **Calibration once, many methods** is the pipeline of :mod:`lessons_lib.deploy.qdq`
  (:func:`~lessons_lib.deploy.qdq.activation_histograms`, then
  :func:`~lessons_lib.deploy.qdq.scales_from_histograms` for any of :data:`lessons_lib.quant.METHODS`),
  the same one lesson 15 uses for TensorRT, with the same default.
"""
from __future__ import annotations

from typing import Mapping

import onnx

from .. import machine
from .. import validate as V
from ..quant import METHODS, Histogram
from .onnx_export import as_model
from .qdq import DEFAULT_METHOD, insert_qdq, quantizable_inputs, scales_from_histograms, weight_scales


def qdq_tensor_names(model: onnx.ModelProto, conv_outputs: bool = True) -> tuple[list[str], list[str]]:
    """``(activations, weights)`` to quantise: the activation inputs of Conv / Gemm / MatMul (plus, with
    ``conv_outputs``, every Conv's output, so that onnxruntime can form ``QLinearConv``) and their weights.

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).
        conv_outputs: also list the output of every Conv (a bool).

    Returns:
        ``(activations, weights)``: two lists of tensor names without repeats -- the activations of
        :func:`lessons_lib.deploy.qdq.quantizable_inputs` followed by the Conv outputs not already among them, and
        the weight initializers.
    """
    V.boolean("conv_outputs", conv_outputs)
    m = as_model(model)
    acts, weights = quantizable_inputs(m)
    if conv_outputs:
        acts = acts + [n.output[0] for n in m.graph.node if n.op_type == "Conv" and n.output[0] not in acts]
    return acts, weights


def default_reduce_range() -> bool:
    """True on an x86 CPU whose int8 kernel saturates (AVX2 / AVX-512 without VNNI, see
    :mod:`lessons_lib.quant.x86int8`), else False: what :func:`quantize_onnx` uses by default here.

    Returns:
        ``bool``: whether ``machine.cpu_features()["int8_kernel"]`` is ``"avx2-vpmaddubsw"``.
    """
    return machine.cpu_features()["int8_kernel"] == "avx2-vpmaddubsw"


def quantize_onnx(model: onnx.ModelProto, hists: Mapping[str, Histogram], method: str = DEFAULT_METHOD, *,
                  reduce_range: bool | None = None) -> onnx.ModelProto:
    """The int8 Q/DQ model: activation scales from ``hists`` by ``method``, per-channel weight scales
    ``max|W_c| / 127`` (``/ 64`` with ``reduce_range``), inserted by :func:`lessons_lib.deploy.qdq.insert_qdq`.

    Args:
        model: float ONNX model (``onnx.ModelProto`` or a path to an .onnx file); not modified.
        hists: ``{tensor name: quant.Histogram}``, e.g. from :func:`lessons_lib.deploy.qdq.activation_histograms`
            over the activations of :func:`qdq_tensor_names`; every name must be a graph input or node output.
        method: threshold method, one of :data:`lessons_lib.quant.METHODS` (``"max"``, ``"percentile"``, ``"mse"``,
            ``"entropy"``); default :data:`lessons_lib.deploy.qdq.DEFAULT_METHOD`.
        reduce_range: ``None`` picks :func:`default_reduce_range` for this CPU: off where the int8 kernel is
            exact (VNNI, AMX, not x86), on where onnxruntime's kernel would saturate (lesson 11 measures both).
            Pass True or False to choose.

    Returns:
        ``onnx.ModelProto``: a checked copy of ``model`` with a Q/DQ pair on every tensor of ``hists`` and every
        Conv / Gemm / MatMul weight initializer stored as int8 behind a ``DequantizeLinear``.
    """
    model = as_model(model)
    V.mapping("hists", hists, what="a dict tensor name -> quant.Histogram")
    V.choice("method", method, METHODS)
    V.boolean("reduce_range", reduce_range, none_ok=True)
    rr = default_reduce_range() if reduce_range is None else reduce_range
    _, weights = qdq_tensor_names(model)
    return insert_qdq(model, scales_from_histograms(hists, method), weight_scales(model, weights, reduce_range=rr))
