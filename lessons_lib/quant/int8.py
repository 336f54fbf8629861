"""Real int8 inference with onnxruntime: where to put Q/DQ pairs so the CPU runs int8 kernels.

The Q/DQ insertion itself is :func:`lessons_lib.deploy.qdq.insert_qdq` (symmetric, zero point 0, weights
per output channel). This module adds what lesson 11 needs on top:

* **Where.** onnxruntime's CPU provider rewrites ``DequantizeLinear -> Conv -> QuantizeLinear`` into one
  ``QLinearConv`` (int8 x int8 -> int32 accumulate -> requantise: ``vpdpbusd`` on CPUs with VNNI, the
  saturating ``vpmaddubsw`` on AVX2 without it -- see :func:`default_reduce_range`). A Conv
  whose *output* has no Q node stays a float Conv fed by DQ nodes -- correct, but no faster. So besides
  the inputs of every Conv / Gemm (TensorRT's placement, :func:`deploy.qdq.quantizable_inputs`), the
  outputs of the Convs get a Q/DQ pair too (:func:`qdq_tensor_names`).
* **Calibration once, many methods.** :func:`collect_histograms` runs the float model over the
  calibration batches once; :func:`scales_from_histograms` turns the histograms into int8 scales
  ``T / 127`` for any of :data:`lessons_lib.quant.METHODS` ("max", "percentile", "mse", "entropy").
"""
from __future__ import annotations

from typing import Iterable, Mapping

import onnx
import torch

from .calibrate import METHODS, Histogram, calibrate


def qdq_tensor_names(model: onnx.ModelProto, conv_outputs: bool = True) -> tuple[list[str], list[str]]:
    """``(activations, weights)`` to quantise: the activation inputs of Conv / Gemm / MatMul (plus, with
    ``conv_outputs``, every Conv's output, so that onnxruntime can form ``QLinearConv``) and their weights."""
    from ..deploy.onnx_export import as_model
    from ..deploy.qdq import quantizable_inputs

    m = as_model(model)
    acts, weights = quantizable_inputs(m)
    if conv_outputs:
        acts = acts + [n.output[0] for n in m.graph.node if n.op_type == "Conv" and n.output[0] not in acts]
    return acts, weights


def collect_histograms(model: onnx.ModelProto, names: list[str], batches: Iterable[torch.Tensor], *,
                       num_bins: int = 2048) -> dict[str, Histogram]:
    """One :class:`lessons_lib.quant.Histogram` of ``|x|`` per tensor name, over all ``batches``
    (the float model run by onnxruntime with those tensors as extra outputs)."""
    from ..deploy.ort import intermediate_outputs

    if not names:
        raise ValueError("names is empty: give the tensor names to calibrate")
    hists = {n: Histogram(num_bins) for n in names}
    seen = 0
    for values in intermediate_outputs(model, names, batches):
        seen += 1
        for n, v in values.items():
            hists[n].update(torch.from_numpy(v))
    if seen == 0:
        raise ValueError("batches is empty: need at least one calibration batch")
    return hists


def scales_from_histograms(hists: Mapping[str, Histogram], method: str = "max", *, num_bits: int = 8) -> dict[str, float]:
    """Symmetric scales ``T / (2^(b-1) - 1)`` with ``T = lessons_lib.quant.calibrate(hist, method)``."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} must be one of {METHODS}")
    qmax = 2 ** (num_bits - 1) - 1
    out = {}
    for n, h in hists.items():
        if h.counts is None:  # an all-zero tensor: any scale represents it exactly
            out[n] = 1.0
        else:
            out[n] = calibrate(h, method, num_bits=num_bits) / qmax
    return out


def default_reduce_range() -> bool:
    """True on an x86 CPU whose int8 kernel saturates (AVX2 / AVX-512 without VNNI, see
    :mod:`lessons_lib.quant.x86int8`), else False: what :func:`quantize_onnx` uses by default here."""
    from ..machine import cpu_features

    return cpu_features()["int8_kernel"] == "avx2-vpmaddubsw"


def quantize_onnx(model: onnx.ModelProto, hists: Mapping[str, Histogram], method: str = "max", *,
                  reduce_range: bool | None = None) -> onnx.ModelProto:
    """The int8 Q/DQ model: activation scales from ``hists`` by ``method``, per-channel weight scales
    ``max|W_c| / 127`` (``/ 64`` with ``reduce_range``), inserted by :func:`lessons_lib.deploy.qdq.insert_qdq`.

    ``reduce_range=None`` picks :func:`default_reduce_range` for this CPU: off where the int8 kernel is
    exact (VNNI, AMX, not x86), on where onnxruntime's kernel would saturate (lesson 11 measures both).
    Pass True or False to choose.
    """
    from ..deploy.qdq import insert_qdq, weight_scales

    rr = default_reduce_range() if reduce_range is None else reduce_range
    _, weights = qdq_tensor_names(model)
    return insert_qdq(model, scales_from_histograms(hists, method), weight_scales(model, weights, reduce_range=rr))
