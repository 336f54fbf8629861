"""Aggressive (<= 4-bit) weight quantisers: k-means weight sharing, binarisation, log2 (power-of-two) levels.

* k-means (document 001 "聚类与伪量化"; Han et al., Deep Compression, ICLR 2016): cluster a layer's
  weights into ``k = 2^bits`` shared values by 1-D Lloyd iterations from a *linear* initialisation
  (centroids evenly spaced between min and max, the paper's best); store a ``bits``-bit index per weight.
* binarisation (document 001 "二值化"; XNOR-Net): ``W ~ alpha_c * sign(W)`` with ``sign(0) = +1`` and
  ``alpha_c = mean |W_c|`` per output channel (the least-squares optimal scale for a sign pattern).
* log2 (document 001 "对数量化"; Miyashita et al. 2016): magnitudes rounded in the log domain to
  powers of two, so a multiply becomes a shift.
"""
from __future__ import annotations

import torch

from .affine import _check_axis, check_bits, check_finite


def kmeans_quantize(weight: torch.Tensor, bits: int, iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, codebook)``: ``indices`` Tensor[weight.shape] int64 in ``[0, 2^bits)``,
    ``codebook`` Tensor[2^bits] float32 (sorted), so ``codebook[indices]`` approximates ``weight``.

    Lloyd's algorithm in 1-D: assign each weight to the nearest centroid (boundaries are midpoints of
    the sorted centroids), move each centroid to the mean of its weights, stop when no assignment
    changes. An empty cluster keeps its centroid.
    """
    w = check_finite(weight).detach().flatten().double()
    b = check_bits(bits, "bits")
    if b > 12:
        raise ValueError(f"bits={bits} must be <= 12 for k-means weight sharing (2^bits clusters)")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters={iters!r} must be an int >= 1")
    k = 2**b
    centers = torch.linspace(float(w.min()), float(w.max()), k, dtype=torch.float64)
    idx = None
    for _ in range(iters):
        new = torch.bucketize(w, (centers[1:] + centers[:-1]) / 2)
        if idx is not None and torch.equal(new, idx):
            break
        idx = new
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, idx, w)
        cnt = torch.bincount(idx, minlength=k).double()
        centers = torch.where(cnt > 0, sums / cnt.clamp(min=1), centers)
    idx = torch.bucketize(w, (centers[1:] + centers[:-1]) / 2)
    return idx.reshape(weight.shape), centers.float()


def binarize(weight: torch.Tensor, axis: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(signs, alpha)``: ``signs`` Tensor[weight.shape] int8 in {-1, +1}; ``alpha`` Tensor[C] float32 with
    ``alpha_c = mean |W|`` over slice ``c`` along ``axis``. Reconstruct with :func:`binarize_reconstruct`."""
    w = check_finite(weight).detach().float()
    axis = _check_axis(w, axis)
    signs = torch.where(w >= 0, 1, -1).to(torch.int8)
    alpha = w.abs().movedim(axis, 0).reshape(w.shape[axis], -1).mean(1)
    return signs, alpha


def binarize_reconstruct(signs: torch.Tensor, alpha: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """``alpha_c * signs`` as float32 (the binary weights a network would use)."""
    axis = _check_axis(signs, axis)
    shape = [1] * signs.ndim
    shape[axis] = -1
    return signs.float() * alpha.float().reshape(shape)


def log2_quantize(x: torch.Tensor, bits: int = 4, max_exp: int | None = None) -> torch.Tensor:
    """Power-of-two quantisation: ``sign(x) * 2^e`` with ``e = round(log2|x|)`` clipped to
    ``[max_exp - L + 1, max_exp]``, ``L = 2^(bits-1) - 1`` levels; values whose ``e`` falls below the
    lowest level (and exact zeros) become 0. One bit holds the sign and one code means zero.

    ``max_exp`` defaults to ``round(log2 max|x|)``. Rounding happens in the log domain, so the decision
    point between ``2^k`` and ``2^(k+1)`` is ``sqrt(2) * 2^k``, not ``1.5 * 2^k``.
    """
    x = check_finite(x)
    b = check_bits(bits, "bits")
    if b < 2:
        raise ValueError(f"bits={bits} must be >= 2 (one sign bit plus at least one exponent code)")
    a = x.detach().abs().double()
    if max_exp is None:
        if float(a.max()) == 0:
            return torch.zeros_like(x)
        max_exp = int(torch.round(torch.log2(a.max())))
    levels = 2 ** (b - 1) - 1
    min_exp = max_exp - levels + 1
    with torch.no_grad():
        e = torch.round(torch.log2(a.clamp(min=1e-300)))
        q = torch.where((a > 0) & (e >= min_exp), torch.exp2(e.clamp(max=max_exp)), torch.zeros_like(a))
    return (torch.sign(x.detach()).double() * q).to(x.dtype)
