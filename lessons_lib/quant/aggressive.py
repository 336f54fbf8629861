"""Aggressive (<= 4-bit) weight quantisers: k-means weight sharing, binarisation, log2 (power-of-two) levels.

* k-means (document 001 "聚类与伪量化"; Han et al., Deep Compression, ICLR 2016): cluster a layer's
  weights into ``k = 2^num_bits`` shared values by 1-D Lloyd iterations from a *linear* initialisation
  (centroids evenly spaced between min and max, the paper's best); store a ``num_bits``-bit index per weight.
* binarisation (document 001 "二值化"; XNOR-Net): ``W ~ alpha_c * sign(W)`` with ``sign(0) = +1`` and
  ``alpha_c = mean |W_c|`` per output channel (the least-squares optimal scale for a sign pattern).
* log2 (document 001 "对数量化"; Miyashita et al. 2016): magnitudes rounded in the log domain to
  powers of two, so a multiply becomes a shift.
* ternary (Li, Zhang & Liu 2016, "Ternary Weight Networks", section 2.1-2.2): ``W ~ alpha * t`` with
  ``t`` in {-1, 0, +1}; ``t = sign(W)`` where ``|W| > Delta``, ``Delta = 0.7 * mean|W|`` (their
  approximation of the optimal threshold for Gaussian / uniform weights) and ``alpha`` the mean ``|W|``
  of the surviving weights (the least-squares scale for that pattern).
"""
from __future__ import annotations

import torch

from .. import validate as V
from .affine import _check_axis, check_bits, check_finite


def kmeans_quantize(weight: torch.Tensor, num_bits: int, iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, codebook)``: ``indices`` Tensor[weight.shape] int64 in ``[0, 2^num_bits)``,
    ``codebook`` Tensor[2^num_bits] float32 (sorted), so ``codebook[indices]`` approximates ``weight``.

    Lloyd's algorithm in 1-D: assign each weight to the nearest centroid (boundaries are midpoints of
    the sorted centroids), move each centroid to the mean of its weights, stop when no assignment
    changes. An empty cluster keeps its centroid.

    Args:
        weight: ``Tensor[...]`` (any shape, e.g. ``[C_out, C_in, kh, kw]``) float, finite, non-empty.
        num_bits: index bits, 1..12 (``k = 2^num_bits`` clusters).
        iters: the most Lloyd iterations to run, an int >= 1.

    Returns:
        ``(indices, codebook)``: ``Tensor[weight.shape]`` int64 in ``[0, 2^num_bits)`` and ``Tensor[2^num_bits]``
        float32 centroids in ascending order.
    """
    w = check_finite(weight, "weight").detach().flatten().double()
    b = check_bits(num_bits)
    if b > 12:
        raise ValueError(f"num_bits={num_bits} must be <= 12 for k-means weight sharing (2^num_bits clusters)")
    iters = V.integer("iters", iters, 1)
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
    ``alpha_c = mean |W|`` over slice ``c`` along ``axis``. Reconstruct with :func:`binarize_reconstruct`.

    Args:
        weight: ``Tensor[...]`` (at least 1-d, e.g. ``[C_out, C_in, kh, kw]``) float, finite, non-empty.
        axis: the channel axis of ``alpha``, an int in ``[-weight.ndim, weight.ndim - 1]``.

    Returns:
        ``(signs, alpha)``: ``Tensor[weight.shape]`` int8 in {-1, +1} (``sign(0) = +1``) and ``Tensor[C]``
        float32, ``C = weight.shape[axis]``.
    """
    w = check_finite(weight, "weight").detach().float()
    axis = _check_axis(w, axis)
    signs = torch.where(w >= 0, 1, -1).to(torch.int8)
    alpha = w.abs().movedim(axis, 0).reshape(w.shape[axis], -1).mean(1)
    return signs, alpha


def binarize_reconstruct(signs: torch.Tensor, alpha: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """``alpha_c * signs`` as float32 (the binary weights a network would use).

    Args:
        signs: ``Tensor[...]`` (at least 1-d) of signs, any real dtype (not bool / complex), e.g. from :func:`binarize`.
        alpha: a real ``Tensor`` of ``signs.shape[axis]`` per-channel scales (any shape; flattened).
        axis: the channel axis, an int in ``[-signs.ndim, signs.ndim - 1]``.

    Returns:
        ``Tensor[signs.shape]`` float32: ``alpha[c] * signs`` on slice ``c`` along ``axis``.
    """
    V.tensor("signs", signs, dtype="number")
    V.tensor("alpha", alpha, dtype="number")
    axis = _check_axis(signs, axis)
    if alpha.numel() != signs.shape[axis]:
        raise ValueError(f"alpha={V.show(alpha)} must have signs.shape[{axis}]={signs.shape[axis]} entries "
                         "(one scale per channel)")
    shape = [1] * signs.ndim
    shape[axis] = -1
    return signs.float() * alpha.float().reshape(shape)


def log2_quantize(x: torch.Tensor, num_bits: int = 4, max_exp: int | None = None) -> torch.Tensor:
    """Power-of-two quantisation: ``sign(x) * 2^e`` with ``e = round(log2|x|)`` clipped to
    ``[max_exp - L + 1, max_exp]``, ``L = 2^(num_bits-1) - 1`` levels; values whose ``e`` falls below the
    lowest level (and exact zeros) become 0. One bit holds the sign and one code means zero.

    ``max_exp`` defaults to ``round(log2 max|x|)``. Rounding happens in the log domain, so the decision
    point between ``2^k`` and ``2^(k+1)`` is ``sqrt(2) * 2^k``, not ``1.5 * 2^k``.

    Args:
        x: ``Tensor[...]`` float, finite, non-empty.
        num_bits: bits per value including the sign bit, 2..16.
        max_exp: the largest exponent, an int in ``[-1074, 1023]``; ``None``: ``round(log2 max|x|)`` (all-zero
            ``x`` then gives zeros).

    Returns:
        ``Tensor[x.shape]`` of ``x``'s dtype (detached): each entry 0 or ``sign(x) * 2^e``,
        ``e`` in ``[max_exp - L + 1, max_exp]``.
    """
    x = check_finite(x)
    b = check_bits(num_bits)
    if b < 2:
        raise ValueError(f"num_bits={num_bits} must be >= 2 (one sign bit plus at least one exponent code)")
    max_exp = V.integer("max_exp", max_exp, -1074, 1023, none_ok=True)  # 2^max_exp must be a float64
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


TWN_DELTA_FACTOR = 0.7
"""Ternary Weight Networks' threshold factor: ``Delta = 0.7 * mean|W|`` (Li, Zhang & Liu 2016, eq. 6)."""


def ternarize(weight: torch.Tensor, delta_factor: float = TWN_DELTA_FACTOR,
              axis: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, alpha)`` of Ternary Weight Networks (Li, Zhang & Liu 2016): ``codes = sign(W)`` where
    ``|W| > Delta`` and 0 elsewhere, ``Delta = delta_factor * mean|W|``, ``alpha = mean |W|`` over the
    weights with ``|W| > Delta`` (0 when none survives); ``W ~ alpha * codes``.

    With ``axis=None`` (the paper: one ``Delta`` and one ``alpha`` per layer) ``alpha`` has one entry;
    with an ``axis`` (e.g. 0, per output channel) ``Delta`` and ``alpha`` are computed per slice.

    Args:
        weight: ``Tensor[...]`` (e.g. ``[C_out, C_in, kh, kw]``) float, finite, non-empty.
        delta_factor: the threshold factor, a number in ``[0, 1.5]`` (the paper's 0.7 by default).
        axis: ``None`` (one threshold for the tensor) or the channel axis, an int in
            ``[-weight.ndim, weight.ndim - 1]``.

    Returns:
        ``(codes, alpha)``: ``Tensor[weight.shape]`` int8 in {-1, 0, +1} and ``Tensor[C]`` float32
        (``C = 1`` for ``axis=None``, else ``weight.shape[axis]``). Reconstruct with
        :func:`ternarize_reconstruct`.
    """
    w = check_finite(weight, "weight").detach().float()
    f = V.real("delta_factor", delta_factor, 0, 1.5)
    if axis is None:
        flat = w.reshape(1, -1)
    else:
        axis = _check_axis(w, axis)
        flat = w.movedim(axis, 0).reshape(w.shape[axis], -1)
    a = flat.abs()
    delta = f * a.mean(1, keepdim=True)
    keep = a > delta
    alpha = (a * keep).sum(1) / keep.sum(1).clamp(min=1)
    codes = (torch.sign(flat) * keep).to(torch.int8)
    if axis is None:
        return codes.reshape(w.shape), alpha
    return codes.reshape(w.movedim(axis, 0).shape).movedim(0, axis).contiguous(), alpha


def ternarize_reconstruct(codes: torch.Tensor, alpha: torch.Tensor, axis: int | None = None) -> torch.Tensor:
    """``alpha * codes`` as float32 (the ternary weights a network would use).

    Args:
        codes: ``Tensor[...]`` of ternary codes, any real dtype, e.g. from :func:`ternarize`.
        alpha: a real ``Tensor`` of scales: one entry for ``axis=None``, ``codes.shape[axis]`` entries otherwise.
        axis: ``None`` or the channel axis, an int in ``[-codes.ndim, codes.ndim - 1]``.

    Returns:
        ``Tensor[codes.shape]`` float32.
    """
    V.tensor("codes", codes, dtype="number")
    V.tensor("alpha", alpha, dtype="number")
    if axis is None:
        if alpha.numel() != 1:
            raise ValueError(f"alpha={V.show(alpha)} must have 1 entry for axis=None (one scale per tensor)")
        return codes.float() * alpha.float().reshape(())
    return binarize_reconstruct(codes, alpha, axis)
