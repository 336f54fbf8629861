"""Choosing the clipping threshold ``T`` of symmetric int8: max, percentile, MSE and entropy (KL).

All four work on a histogram of ``|x|`` over ``[0, max|x|]`` (2048 bins by default), collected by
:class:`Histogram` over as many batches as you like. The int8 scale is then ``S = T / 127``.

* ``max``: ``T = max|x|`` (non-saturating; document 003's "range of the layer").
* ``percentile``: the left edge of the bin where the CDF reaches ``p`` % (pytorch-quantization and
  ONNX Runtime's convention, reference-algorithms.md §2).
* ``mse``: the bin centre ``T`` that minimises ``sum_j counts_j (fq_T(c_j) - c_j)^2`` over the bin
  centres ``c_j`` (pytorch-quantization's ``_compute_amax_mse``).
* ``entropy``: TensorRT's saturating calibration (NVIDIA GTC 2017, s7310 "8-bit Inference with
  TensorRT"; document 003 "Saturate Quantization"), see :func:`kl_curve`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import validate as V
from .affine import check_bits, check_finite

ZERO_BIN = ("keep", "copy_next")  # treatments of histogram bin 0 (see kl_curve)


# ------------------------------------------------------------------------------------ histogram
class Histogram:
    """Accumulate a histogram of ``|x|`` over batches: ``num_bins`` bins over ``[0, R]``, ``R >= max|x|``.

    The first batch sets ``R = max|x|``. When a later batch exceeds ``R``, the bin width grows by the
    smallest integer factor ``k`` that covers the new max and groups of ``k`` old bins are summed, so
    the re-binning is exact and the bin count stays ``num_bins``. ``zeros`` counts exact zeros (the
    spike a ReLU produces), which all land in bin 0.

    Args:
        num_bins: the number of bins, an int >= 2.
    """

    def __init__(self, num_bins: int = 2048):
        self.num_bins = V.integer("num_bins", num_bins, 2)
        self.counts: np.ndarray | None = None
        self.width = 0.0
        self.max = 0.0
        self.total = 0
        self.zeros = 0

    @property
    def edges(self) -> np.ndarray:
        """``num_bins + 1`` bin edges, ``edges[j] = j * width``."""
        if self.counts is None:
            raise ValueError("the histogram is empty or all zero: update() it with non-zero data first")
        return np.arange(self.num_bins + 1, dtype=np.float64) * self.width

    def update(self, x: torch.Tensor) -> "Histogram":
        """Add ``|x|`` of one batch, first widening the bins if ``max|x|`` exceeds the current range.

        Args:
            x: ``Tensor[...]`` (any shape, any device) float, finite, non-empty.

        Returns:
            ``self``, so calls chain: ``Histogram().update(a).update(b)``.
        """
        a = check_finite(x.detach() if isinstance(x, torch.Tensor) else x).abs().flatten().double().cpu().numpy()
        self.total += a.size
        self.zeros += int((a == 0).sum())
        m = float(a.max())
        self.max = max(self.max, m)
        if self.counts is None:
            if m == 0:
                return self
            self.width = m / self.num_bins
            self.counts = np.zeros(self.num_bins, dtype=np.int64)
            self.counts[0] += self.total - a.size  # all-zero batches seen before this one
        elif m > self.width * self.num_bins:
            k = math.ceil(m / (self.width * self.num_bins))
            merged = np.add.reduceat(self.counts, np.arange(0, self.num_bins, k))
            self.counts = np.zeros(self.num_bins, dtype=np.int64)
            self.counts[: merged.size] = merged
            self.width *= k
        idx = np.minimum((a / self.width).astype(np.int64), self.num_bins - 1)
        self.counts += np.bincount(idx, minlength=self.num_bins)
        return self

    def __repr__(self) -> str:
        return (f"Histogram(num_bins={self.num_bins}, total={self.total}, zeros={self.zeros}, "
                f"max={self.max:.6g}, width={self.width:.6g})")


def _check_counts(counts) -> np.ndarray:
    c = V.array("counts", counts).astype(np.float64)
    if c.ndim != 1:
        raise ValueError(f"counts={V.show(counts)} must be 1-d, got shape {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError(f"counts={V.show(counts)} must be finite and >= 0 (got a NaN, inf or negative count)")
    return c


def _check_hist(counts, edges, min_bins: int = 1) -> tuple[np.ndarray, np.ndarray]:
    c = _check_counts(counts)
    e = V.array("edges", edges).astype(np.float64)
    if c.size < min_bins:
        raise ValueError(f"counts={V.show(counts)} must be 1-d with at least {min_bins} bins, got shape {c.shape}")
    if c.sum() <= 0:
        raise ValueError(f"counts={V.show(counts)} sum to {c.sum()}: the histogram is empty or all zero")
    if e.shape != (c.size + 1,):
        raise ValueError(f"edges={V.show(edges)} must have len(counts) + 1 = {c.size + 1} entries, got shape {e.shape}")
    if not np.isfinite(e).all() or (np.diff(e) <= 0).any():
        raise ValueError(f"edges={V.show(edges)} must be finite and strictly increasing")
    return c, e


# ------------------------------------------------------------------------------------ entropy
def _xlogx(v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(v)
    pos = v > 0
    out[pos] = v[pos] * np.log(v[pos])
    return out


def expand_candidate(counts, i: int, num_quantized_bins: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Q)`` of candidate ``i`` (unnormalised counts, length ``i``), as on the GTC slide.

    ``P = counts[:i]`` with the tail ``sum(counts[i:])`` folded into ``P[i-1]``. ``Q``: bin ``j``
    belongs to group ``floor(j * nq / i)`` (pytorch-quantization's spread); each non-empty bin of a
    group gets the group's sum divided by its number of non-empty bins; empty bins stay 0.

    Args:
        counts: 1-d histogram counts (array, list or tensor), finite, >= 0.
        i: the candidate: the number of bins kept, an int in ``[num_quantized_bins, len(counts)]``.
        num_quantized_bins: ``nq``, the number of quantised levels, an int >= 2.

    Returns:
        ``(P, Q)``: two float64 numpy arrays of length ``i`` (not normalised).
    """
    c = _check_counts(counts)
    nq = V.integer("num_quantized_bins", num_quantized_bins, 2)
    V.integer("i", i)
    if not nq <= i <= c.size:
        raise ValueError(f"i={i} must be in [num_quantized_bins={nq}, len(counts)={c.size}]")
    i = int(i)
    p = c[:i].copy()
    p[-1] += c[i:].sum()
    group = (np.arange(i) * nq) // i
    sums = np.bincount(group, weights=c[:i], minlength=nq)
    nonzero = np.bincount(group, weights=(c[:i] > 0).astype(np.float64), minlength=nq)
    q = np.where(c[:i] > 0, sums[group] / np.maximum(nonzero[group], 1), 0.0)
    return p, q


def kl_curve(counts, edges, num_quantized_bins: int = 128, *, zero_bin: str = "keep") -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, divergences)`` for every candidate ``i = nq .. len(counts)``; ``thresholds = edges[i]``.

    ``divergences[k] = KL(P_i || Q_i) = sum_j p_j ln(p_j / q_j)`` with ``P, Q`` from :func:`expand_candidate`,
    each normalised to sum 1 (no smoothing; ``inf`` where ``q_j = 0 < p_j``). Loop-free: with
    ``C = cumsum(counts)`` and group sums ``S_g`` / non-empty counts ``n_g`` read from cumulative sums,
    ``sum_j P_j ln Q_j = sum_g S_g ln(S_g / n_g) + O_i ln Q_{i-1}`` (``O_i`` the folded tail), so
    every candidate costs ``O(nq)`` array work and no Python loop runs over ``i``.

    ``zero_bin="copy_next"`` replaces ``counts[0]`` by ``counts[1]`` first (pytorch-quantization /
    ModelOpt's treatment of the ReLU spike at 0); ``"keep"`` (default) uses the histogram as is.

    Args:
        counts: 1-d histogram counts (array, list or tensor), finite, >= 0, not all zero.
        edges: ``len(counts) + 1`` finite, strictly increasing bin edges.
        num_quantized_bins: ``nq``, an int in ``[2, len(counts)]`` (128 for int8).
        zero_bin: ``"keep"`` or ``"copy_next"``.

    Returns:
        ``(thresholds, divergences)``: float64 numpy arrays of length ``len(counts) - nq + 1``; each divergence
        >= 0 or ``inf``.
    """
    c, e = _check_hist(counts, edges)
    V.integer("num_quantized_bins", num_quantized_bins, 2, c.size)
    V.choice("zero_bin", zero_bin, ZERO_BIN)
    if zero_bin == "copy_next":
        c = c.copy()
        c[0] = c[1]
        if c.sum() <= 0:
            raise ValueError("counts are all zero once bin 0 is replaced by bin 1")
    nq, n = int(num_quantized_bins), c.size
    total = c.sum()
    C = np.concatenate(([0.0], np.cumsum(c)))
    NZ = np.concatenate(([0.0], np.cumsum(c > 0)))
    XL = np.concatenate(([0.0], np.cumsum(_xlogx(c))))
    i = np.arange(nq, n + 1)
    g = np.arange(nq + 1)
    bounds = (g[None, :] * i[:, None] + nq - 1) // nq  # start of group g = ceil(g * i / nq)
    S = C[bounds[:, 1:]] - C[bounds[:, :-1]]
    N = NZ[bounds[:, 1:]] - NZ[bounds[:, :-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        PlnQ = np.where(S > 0, S * np.log(S / np.maximum(N, 1)), 0.0).sum(1)
        last = c[i - 1]
        tail = total - C[i]
        q_last = np.where(last > 0, S[:, -1] / np.maximum(N[:, -1], 1), 0.0)
        PlnQ = PlnQ + np.where(tail > 0, tail * np.log(np.where(q_last > 0, q_last, 1.0)), 0.0)
        PlnP = XL[i - 1] + _xlogx(last + tail)
        kl = (PlnP / total - math.log(total)) - (PlnQ / total - np.log(np.maximum(C[i], 1e-300)))
    kl = np.where((tail > 0) & (q_last == 0), np.inf, np.maximum(kl, 0.0))
    return e[i], kl


def kl_threshold(counts, edges, num_quantized_bins: int = 128, *, zero_bin: str = "keep") -> float:
    """TensorRT's entropy-calibration threshold: the upper edge ``edges[i]`` of the candidate with the
    smallest ``KL(P || Q)`` (first one on ties). See :func:`kl_curve` for the definitions.

    Args:
        counts, edges: the histogram, as in :func:`kl_curve` (e.g. ``Histogram.counts``, ``Histogram.edges``).
        num_quantized_bins: ``nq``, an int in ``[2, len(counts)]`` (128 for int8).
        zero_bin: ``"keep"`` or ``"copy_next"`` (see :func:`kl_curve`).

    Returns:
        The threshold ``T``, a Python float, one of ``edges[nq:]``.
    """
    th, kl = kl_curve(counts, edges, num_quantized_bins, zero_bin=zero_bin)
    return float(th[int(np.argmin(kl))])


# ------------------------------------------------------------------------------------ others
def percentile_threshold(counts, edges, percentile: float = 99.99) -> float:
    """Left edge of the first bin whose CDF reaches ``percentile`` % (``searchsorted`` side='left').

    Args:
        counts: 1-d histogram counts (array, list or tensor), finite, >= 0, not all zero.
        edges: ``len(counts) + 1`` finite, strictly increasing bin edges.
        percentile: the CDF level in percent, a number in ``(0, 100]``.

    Returns:
        ``edges[j]``, a Python float, for the first bin ``j`` with ``CDF[j] >= percentile / 100`` (at most the
        last bin); ``edges[0]`` (0 for a :class:`Histogram`) when bin 0 alone reaches it.
    """
    c, e = _check_hist(counts, edges)
    V.real("percentile", percentile, 0, 100, low_open=True)
    cdf = np.cumsum(c / c.sum())
    idx = min(int(np.searchsorted(cdf, float(percentile) / 100.0)), c.size - 1)
    return float(e[idx])


def mse_threshold(counts, edges, num_bits: int = 8, start_bin: int = 128) -> float:
    """Bin centre ``T`` (index >= ``start_bin``) minimising the histogram-weighted squared error of
    symmetric fake quantisation with ``S = T / (2^(b-1) - 1)``.

    Args:
        counts: 1-d histogram counts (array, list or tensor), finite, >= 0, not all zero.
        edges: ``len(counts) + 1`` finite, strictly increasing bin edges.
        num_bits: integer bits ``b``, 2..16.
        start_bin: the first candidate bin, an int in ``[0, len(counts) - 1]``.

    Returns:
        The threshold ``T``, a Python float: the centre of the best bin (the first one on ties).
    """
    c, e = _check_hist(counts, edges)
    qmax = 2 ** (check_bits(num_bits) - 1) - 1
    if num_bits < 2:
        raise ValueError(f"num_bits={num_bits} must be >= 2 for symmetric quantisation")
    V.integer("start_bin", start_bin, 0, c.size - 1)
    centers = (e[1:] + e[:-1]) / 2
    best, best_err = start_bin, np.inf
    for lo in range(start_bin, c.size, 256):  # chunks of 256 candidates keep memory small
        amax = centers[lo:lo + 256, None]
        s = amax / qmax
        fq = np.clip(np.rint(centers[None, :] / s), -qmax, qmax) * s
        err = ((fq - centers[None, :]) ** 2 * c[None, :]).sum(1)
        k = int(np.argmin(err))
        if err[k] < best_err:
            best, best_err = lo + k, err[k]
    return float(centers[best])


METHODS = ("max", "percentile", "mse", "entropy")


def calibrate(x, method: str = "max", *, num_bits: int = 8, percentile: float = 99.99, num_bins: int = 2048,
              num_quantized_bins: int | None = None, zero_bin: str = "keep") -> float:
    """Threshold ``T`` (a float > 0) for symmetric quantisation of ``x``: a tensor or a :class:`Histogram`.

    Args:
        x: a ``Tensor[...]`` (float, finite, non-empty, not all zero; its ``|x|`` histogram is built here) or a
            :class:`Histogram` with non-zero data.
        method: ``"max"``, ``"percentile"``, ``"mse"`` (candidates from bin ``min(128, num_bins // 2)`` on) or
            ``"entropy"`` (:func:`kl_threshold`).
        num_bits: integer bits, 1..16; ``"mse"`` and ``"entropy"`` need >= 2.
        percentile: for ``"percentile"``, a number in ``(0, 100]``.
        num_bins: the bins of the histogram built from a tensor, an int >= 2 (a :class:`Histogram` keeps its own).
        num_quantized_bins: for ``"entropy"``, ``nq``: an int >= 2, at most the histogram's bin count; ``None``:
            ``2^(num_bits - 1)`` (128 for 8 bits).
        zero_bin: for ``"entropy"``, ``"keep"`` or ``"copy_next"`` (see :func:`kl_curve`).

    Returns:
        ``T``, a Python float (the scale is ``T / (2^(num_bits-1) - 1)``); > 0, except that ``"percentile"``
        gives 0.0 when bin 0 alone holds ``percentile`` % of the values.
    """
    V.choice("method", method, METHODS)
    b = check_bits(num_bits)
    V.real("percentile", percentile, 0, 100, low_open=True)
    V.integer("num_bins", num_bins, 2)
    V.integer("num_quantized_bins", num_quantized_bins, 2, none_ok=True)
    V.choice("zero_bin", zero_bin, ZERO_BIN)
    V.instance("x", x, (torch.Tensor, Histogram), "a torch.Tensor or a Histogram")
    if isinstance(x, Histogram):
        hist = x
    else:
        hist = Histogram(num_bins).update(x)
    if hist.counts is None:
        raise ValueError(f"x is empty or all zero ({hist!r}): no threshold to calibrate")
    if method == "max":
        return float(hist.max)
    if method == "percentile":
        return percentile_threshold(hist.counts, hist.edges, percentile)
    if method == "mse":
        return mse_threshold(hist.counts, hist.edges, b, start_bin=min(128, hist.num_bins // 2))
    nq = num_quantized_bins if num_quantized_bins is not None else 2 ** (b - 1)
    return kl_threshold(hist.counts, hist.edges, nq, zero_bin=zero_bin)
