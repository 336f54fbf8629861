"""Aggressive (<= 4-bit) quantisation of a whole model's weights, storage cost, and shift arithmetic.

Builds on :mod:`lessons_lib.quant.aggressive` (one tensor at a time) and :mod:`.affine`:

* :func:`quantize_weights` replaces the weights of every ``Conv2d`` (and optionally ``Linear``) of a copy
  of a model by their quantised values: ``"int"`` (symmetric linear, per output channel),
  ``"kmeans"`` (a ``2^bits``-entry codebook per layer, document 001), ``"binary"`` (``alpha_c * sign(W)``,
  XNOR-Net) or ``"log2"`` (``sign * 2^e``). Activations stay float (weight-only quantisation).
* :func:`kmeans_compression` is Han et al.'s storage ratio ``r = n B / (n log2(k) + k B)``.
* :func:`shift_multiply` / :func:`shift_dot`: with power-of-two weights a product ``x * 2^e`` is a
  bit shift of the integer ``x`` (document 001: log quantisation turns multiplications into additions
  -- of exponents -- and shifts).
"""
from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .affine import check_bits, check_finite, dequantize_per_channel, qparams_per_channel, quantize_per_channel
from .aggressive import binarize, binarize_reconstruct, kmeans_quantize, log2_quantize

WEIGHT_METHODS = ("int", "kmeans", "binary", "log2")


def quantize_tensor(w: torch.Tensor, method: str, bits: int) -> torch.Tensor:
    """``w`` replaced by its ``method``-quantised values (same shape, float32). ``bits`` is ignored by "binary"."""
    check_finite(w, "w")
    if method not in WEIGHT_METHODS:
        raise ValueError(f"method={method!r} must be one of {WEIGHT_METHODS}")
    w = w.detach().float()
    if method == "binary":
        signs, alpha = binarize(w, axis=0)
        return binarize_reconstruct(signs, alpha, axis=0)
    b = check_bits(bits, "bits")
    if method == "int":
        if b < 2:
            raise ValueError(f"bits={bits} must be >= 2 for symmetric linear quantisation (use 'binary' for 1 bit)")
        s, z = qparams_per_channel(w, 0, b, symmetric=True)
        return dequantize_per_channel(quantize_per_channel(w, s, z, 0, b, symmetric=True), s, z, 0)
    if method == "kmeans":
        idx, codebook = kmeans_quantize(w, b)
        return codebook[idx]
    return log2_quantize(w, b)


def _layers(model: nn.Module, include_linear: bool) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def quantize_weights(model: nn.Module, method: str = "int", bits: int = 8, *,
                     include_linear: bool = False) -> nn.Module:
    """A copy of ``model`` (eval mode) with every Conv2d weight (and Linear, if ``include_linear``)
    replaced by :func:`quantize_tensor`. Biases and BatchNorm stay float."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be a torch.nn.Module")
    if method not in WEIGHT_METHODS:
        raise ValueError(f"method={method!r} must be one of {WEIGHT_METHODS}")
    out = copy.deepcopy(model).eval()
    layers = _layers(out, include_linear)
    if not layers:
        raise ValueError(f"model={type(model).__name__} has no Conv2d{'/Linear' if include_linear else ''} layer")
    with torch.no_grad():
        for _, m in layers:
            m.weight.copy_(quantize_tensor(m.weight, method, bits))
    return out


def kmeans_compression(n: int, bits: int, float_bits: int = 32) -> float:
    """Storage ratio of k-means weight sharing for one layer of ``n`` weights (Han et al. 2016):
    ``r = n * float_bits / (n * bits + 2^bits * float_bits)`` (indices plus the codebook)."""
    for name, v in (("n", n), ("float_bits", float_bits)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name}={v!r} must be an int >= 1")
    b = check_bits(bits, "bits")
    return n * float_bits / (n * b + 2**b * float_bits)


def weight_storage(model: nn.Module, bits: int, *, codebook: bool = False, include_linear: bool = False,
                   float_bits: int = 32) -> dict[str, int]:
    """Bits needed for the quantised layers' weights: ``{"float": n * float_bits, "quantised": ...}``
    with ``n * bits`` plus, if ``codebook``, one ``2^bits``-entry float codebook per layer."""
    b = check_bits(bits, "bits")
    layers = _layers(model, include_linear)
    n = sum(m.weight.numel() for _, m in layers)
    extra = len(layers) * 2**b * float_bits if codebook else 0
    return {"layers": len(layers), "weights": n, "float": n * float_bits, "quantised": n * b + extra}


# ------------------------------------------------------------------------------ shift arithmetic
def _check_int_tensor(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer torch.Tensor, got "
                        f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    return x


def shift_multiply(q: torch.Tensor, e) -> torch.Tensor:
    """``q * 2^e`` for integer ``q`` by shifting: ``q << e`` where ``e >= 0``, ``q >> -e`` (arithmetic,
    i.e. ``floor(q / 2^-e)``) where ``e < 0``. ``e``: an int or an integer tensor broadcastable to ``q``."""
    q = _check_int_tensor(q, "q").to(torch.int64)
    e = torch.as_tensor(e)
    if e.is_floating_point():
        raise TypeError(f"e must be an int or an integer tensor, got dtype {e.dtype}")
    e = e.to(torch.int64)
    if bool((e.abs() > 62).any()):
        raise ValueError(f"e={int(e.abs().max())} is out of range: |e| must be <= 62 for int64 shifts")
    return torch.where(e >= 0, q << e.clamp(min=0), q >> (-e).clamp(min=0))


def log2_parts(w_log2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sign, exponent)`` of power-of-two values (from :func:`lessons_lib.quant.log2_quantize`):
    ``w = sign * 2^exponent``; ``sign`` in {-1, 0, +1} (0 for zeros, whose exponent is 0)."""
    w = check_finite(w_log2, "w_log2").detach().double()
    a = w.abs()
    e = torch.where(a > 0, torch.log2(a.clamp(min=1e-300)), torch.zeros_like(a))
    if not torch.equal(e, e.round()):
        raise ValueError("w_log2 has entries that are not signed powers of two (use log2_quantize first)")
    return torch.sign(w).to(torch.int64), e.round().to(torch.int64)


def shift_dot(x_int: torch.Tensor, w_log2: torch.Tensor, frac_bits: int = 16) -> torch.Tensor:
    """``sum_k x_int[..., k] * w_log2[k]`` computed with shifts and adds only, as a fixed-point integer
    with ``frac_bits`` fractional bits: the result divided by ``2^frac_bits`` equals the float dot
    product exactly when ``frac_bits >= -min(exponent)`` (no bit shifted out)."""
    x = _check_int_tensor(x_int, "x_int").to(torch.int64)
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, numbers.Integral) or not 0 <= frac_bits <= 40:
        raise ValueError(f"frac_bits={frac_bits!r} must be an int in [0, 40]")
    sign, e = log2_parts(w_log2)
    if sign.shape != x.shape[-1:]:
        raise ValueError(f"w_log2 must have shape ({x.shape[-1]},) to match x_int's last dim, got {tuple(sign.shape)}")
    terms = shift_multiply(x << frac_bits, e) * sign  # shift, then add or subtract
    return terms.sum(-1)
