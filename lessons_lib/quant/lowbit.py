"""Aggressive (<= 4-bit) quantisation of a whole model's weights, storage cost, and shift arithmetic.

Builds on :mod:`lessons_lib.quant.aggressive` (one tensor at a time) and :mod:`.affine`:

* :func:`quantize_weights` replaces the weights of every ``Conv2d`` (and optionally ``Linear``) of a copy
  of a model by their quantised values: ``"int"`` (symmetric linear, per output channel),
  ``"kmeans"`` (a ``2^num_bits``-entry codebook per layer, document 001), ``"binary"`` (``alpha_c * sign(W)``,
  XNOR-Net), ``"log2"`` (``sign * 2^e``) or ``"twn"`` (Ternary Weight Networks: ``alpha * {-1, 0, +1}`` with
  the threshold ``0.7 * mean|W|`` per layer). Activations stay float (weight-only quantisation).
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

from .. import validate as V
from .affine import check_bits, check_finite, dequantize_per_channel, qparams_per_channel, quantize_per_channel
from .aggressive import binarize, binarize_reconstruct, kmeans_quantize, log2_quantize, ternarize, ternarize_reconstruct

WEIGHT_METHODS = ("int", "kmeans", "binary", "log2", "twn")


def quantize_tensor(w: torch.Tensor, method: str, num_bits: int) -> torch.Tensor:
    """``w`` replaced by its ``method``-quantised values (same shape, float32). ``num_bits`` is ignored by "binary"
    and "twn" (1 and 2 bits per weight).

    Args:
        w: ``Tensor[C_out, ...]`` float, finite, non-empty (at least 1-d for "int" and "binary": axis 0 is the
            output channel).
        method: ``"int"`` (symmetric linear per output channel, ``num_bits >= 2``), ``"kmeans"`` (one codebook
            for the whole tensor, ``num_bits <= 12``), ``"binary"`` (``alpha_c * sign(W)``), ``"log2"``
            (``sign * 2^e``, ``num_bits >= 2``) or ``"twn"`` (:func:`lessons_lib.quant.aggressive.ternarize`,
            one threshold ``0.7 * mean|W|`` and one scale for the tensor, as in the paper).
        num_bits: integer bits, 1..16 (checked even for "binary" and "twn"), within the limits of ``method``.

    Returns:
        ``Tensor[w.shape]`` float32, detached.
    """
    check_finite(w, "w")
    V.choice("method", method, WEIGHT_METHODS)
    check_bits(num_bits)
    w = w.detach().float()
    if method == "binary":
        signs, alpha = binarize(w, axis=0)
        return binarize_reconstruct(signs, alpha, axis=0)
    if method == "twn":
        codes, alpha = ternarize(w)
        return ternarize_reconstruct(codes, alpha)
    b = check_bits(num_bits)
    if method == "int":
        if b < 2:
            raise ValueError(f"num_bits={num_bits} must be >= 2 for symmetric linear quantisation "
                             "(use 'binary' for 1 bit)")
        s, z = qparams_per_channel(w, 0, b, symmetric=True)
        return dequantize_per_channel(quantize_per_channel(w, s, z, 0, b, symmetric=True), s, z, 0)
    if method == "kmeans":
        idx, codebook = kmeans_quantize(w, b)
        return codebook[idx]
    return log2_quantize(w, b)


def _layers(model: nn.Module, include_linear: bool) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def quantize_weights(model: nn.Module, method: str = "int", num_bits: int = 8, *,
                     include_linear: bool = False) -> nn.Module:
    """A copy of ``model`` (eval mode) with every Conv2d weight (and Linear, if ``include_linear``)
    replaced by :func:`quantize_tensor`. Biases and BatchNorm stay float.

    Args:
        model: an ``nn.Module`` with at least one ``Conv2d`` (or ``Linear`` with ``include_linear``); not modified.
        method: ``"int"``, ``"kmeans"``, ``"binary"``, ``"log2"`` or ``"twn"`` (see :func:`quantize_tensor`).
        num_bits: integer bits, 1..16, within the limits of ``method``.
        include_linear: also quantise every ``nn.Linear`` weight.

    Returns:
        The quantised copy, an ``nn.Module`` in eval mode.
    """
    V.module("model", model)
    V.choice("method", method, WEIGHT_METHODS)
    check_bits(num_bits)
    V.boolean("include_linear", include_linear)
    out = copy.deepcopy(model).eval()
    layers = _layers(out, include_linear)
    if not layers:
        raise ValueError(f"model={type(model).__name__} has no Conv2d{'/Linear' if include_linear else ''} layer")
    with torch.no_grad():
        for _, m in layers:
            m.weight.copy_(quantize_tensor(m.weight, method, num_bits))
    return out


def kmeans_compression(n: int, num_bits: int, float_bits: int = 32) -> float:
    """Storage ratio of k-means weight sharing for one layer of ``n`` weights (Han et al. 2016):
    ``r = n * float_bits / (n * num_bits + 2^num_bits * float_bits)`` (indices plus the codebook).

    Args:
        n: the number of weights in the layer, an int >= 1.
        num_bits: index bits, 1..16 (``k = 2^num_bits`` codebook entries).
        float_bits: bits of a float weight and of a codebook entry, an int >= 1.

    Returns:
        The ratio ``r``, a Python float > 0 (below 1 when the codebook costs more than the indices save).
    """
    for name, v in (("n", n), ("float_bits", float_bits)):
        V.integer(name, v, 1)
    b = check_bits(num_bits)
    return n * float_bits / (n * b + 2**b * float_bits)


def weight_storage(model: nn.Module, num_bits: int, *, codebook: bool = False, include_linear: bool = False,
                   float_bits: int = 32) -> dict[str, int]:
    """Bits needed for the quantised layers' weights: ``{"float": n * float_bits, "quantised": ...}``
    with ``n * num_bits`` plus, if ``codebook``, one ``2^num_bits``-entry float codebook per layer.

    Args:
        model: any ``nn.Module`` (not modified); the weights of its ``Conv2d`` (and ``Linear``) layers count.
        num_bits: bits per quantised weight, 1..16.
        codebook: add one ``2^num_bits * float_bits``-bit codebook per layer (k-means weight sharing).
        include_linear: count the ``nn.Linear`` layers too.
        float_bits: bits of a float weight and of a codebook entry, an int >= 1.

    Returns:
        ``dict`` of Python ints: ``"layers"`` (layers counted), ``"weights"`` (``n``, their weights),
        ``"float"`` and ``"quantised"`` (bits); all 0 when the model has no such layer.
    """
    V.module("model", model)
    b = check_bits(num_bits)
    V.boolean("codebook", codebook)
    V.boolean("include_linear", include_linear)
    V.integer("float_bits", float_bits, 1)
    layers = _layers(model, include_linear)
    n = sum(m.weight.numel() for _, m in layers)
    extra = len(layers) * 2**b * float_bits if codebook else 0
    return {"layers": len(layers), "weights": n, "float": n * float_bits, "quantised": n * b + extra}


# ------------------------------------------------------------------------------ shift arithmetic
def _check_int_tensor(x: object, name: str) -> torch.Tensor:
    return V.tensor(name, x, dtype="integer")


def shift_multiply(q: torch.Tensor, e) -> torch.Tensor:
    """``q * 2^e`` for integer ``q`` by shifting: ``q << e`` where ``e >= 0``, ``q >> -e`` (arithmetic,
    i.e. ``floor(q / 2^-e)``) where ``e < 0``.

    Args:
        q: integer ``Tensor[...]``, computed in int64 (a left shift past int64 is not detected).
        e: an int or an integer tensor broadcastable to ``q``, every ``|e| <= 62``.

    Returns:
        ``Tensor`` int64 of the broadcast shape of ``q`` and ``e``.
    """
    q = _check_int_tensor(q, "q").to(torch.int64)
    if isinstance(e, torch.Tensor):
        V.tensor("e", e, dtype="integer")
    elif isinstance(e, bool) or not isinstance(e, numbers.Integral):
        raise TypeError(f"e={V.show(e)} must be an int or an integer tensor")
    e = torch.as_tensor(e).to(torch.int64)
    if bool((e.abs() > 62).any()):
        raise ValueError(f"e={int(e.abs().max())} is out of range: |e| must be <= 62 for int64 shifts")
    return torch.where(e >= 0, q << e.clamp(min=0), q >> (-e).clamp(min=0))


def log2_parts(w_log2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sign, exponent)`` of power-of-two values (from :func:`lessons_lib.quant.log2_quantize`):
    ``w = sign * 2^exponent``; ``sign`` in {-1, 0, +1} (0 for zeros, whose exponent is 0).

    Args:
        w_log2: ``Tensor[...]`` float, finite, non-empty; every entry 0 or ``+-2^e`` with an integer ``e``
            (else ``ValueError``).

    Returns:
        ``(sign, exponent)``: two ``Tensor[w_log2.shape]`` int64.
    """
    w = check_finite(w_log2, "w_log2").detach().double()
    a = w.abs()
    e = torch.where(a > 0, torch.log2(a.clamp(min=1e-300)), torch.zeros_like(a))
    if not torch.equal(e, e.round()):
        raise ValueError(f"w_log2={V.show(w_log2)} has entries that are not signed powers of two "
                         "(use log2_quantize first)")
    return torch.sign(w).to(torch.int64), e.round().to(torch.int64)


def shift_dot(x_int: torch.Tensor, w_log2: torch.Tensor, frac_bits: int = 16) -> torch.Tensor:
    """``sum_k x_int[..., k] * w_log2[k]`` computed with shifts and adds only, as a fixed-point integer
    with ``frac_bits`` fractional bits: the result divided by ``2^frac_bits`` equals the float dot
    product exactly when ``frac_bits >= -min(exponent)`` (no bit shifted out).

    Args:
        x_int: integer ``Tensor[..., K]``.
        w_log2: ``Tensor[K]`` float of zeros and signed powers of two (e.g. from :func:`log2_quantize`).
        frac_bits: fractional bits of the result, an int in ``[0, 40]``.

    Returns:
        ``Tensor[...]`` int64 (``x_int``'s shape without the last dim): the dot product times ``2^frac_bits``,
        each term floored (arithmetic right shift) where ``frac_bits < -exponent``.
    """
    x = _check_int_tensor(x_int, "x_int").to(torch.int64)
    frac_bits = V.integer("frac_bits", frac_bits, 0, 40)
    sign, e = log2_parts(w_log2)
    if sign.shape != x.shape[-1:]:
        raise ValueError(f"w_log2={V.show(w_log2)} must have shape ({x.shape[-1]},) to match x_int's last dim")
    terms = shift_multiply(x << frac_bits, e) * sign  # shift, then add or subtract
    return terms.sum(-1)
