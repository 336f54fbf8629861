"""The roofline of this machine: measured peak throughput, measured memory bandwidth, and where layers sit.

The roofline model (Williams, Waterman and Patterson, "Roofline: an insightful visual performance model
for multicore architectures", CACM 52(4), 2009) bounds what a kernel of arithmetic intensity ``I``
(FLOPs per byte moved to and from memory) can reach on a machine of peak ``P`` (GFLOP/s) and memory
bandwidth ``B`` (GB/s):

    attainable(I) = min(P, I * B)                      [GFLOP/s]

The two roofs meet at the **ridge** ``I* = P / B``: a layer with ``I < I*`` is **memory-bound** (its time
is at least ``bytes / B``), one with ``I >= I*`` **compute-bound** (at least ``FLOPs / P``).

Here both roofs are *measured*, not read from a spec sheet:

* :func:`peak_gflops` times a large square fp32 matrix multiplication (``2 n^3`` FLOPs), the kernel
  every framework tunes most -- the best rate this machine reaches in practice, below its theoretical peak;
* :func:`bandwidth_gbs` times a large tensor copy into a preallocated tensor (bytes read + bytes written
  per second), far larger than the caches.

A layer's FLOPs are ``2 x MACs`` and its bytes are weights + input + output, read / written once
(:func:`lessons_lib.conv.memory_bytes`, as :func:`lessons_lib.profile.profile_model` counts them).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from . import validate as V
from .profile import Latency, largest_size_within, measure_latency, profile_model

__all__ = ["peak_gflops", "bandwidth_gbs", "attainable_gflops", "ridge_intensity", "bound", "layer_point",
           "roofline_ms"]

GEMM_SIZES = (128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
COPY_SIZES = tuple(2**k for k in range(16, 26))  # float32 elements: 256 KiB ... 128 MiB per tensor


@dataclass(frozen=True)
class Ceiling:
    """One measured roof: ``value`` in ``unit`` (GFLOP/s or GB/s), the ``size`` it was measured at
    (matrix side ``n`` or elements copied), what it measured, and the :class:`~lessons_lib.profile.Latency`."""

    value: float
    unit: str
    size: int
    what: str
    latency: Latency

    def __float__(self) -> float:
        return self.value

    def text(self) -> str:
        """One line: the value, the kernel and size, and the number of timed runs."""
        return f"{self.value:,.1f} {self.unit} ({self.what}, median of {self.latency.repeats} runs)"


@dataclass(frozen=True)
class Point:
    """A layer on the roofline: ``flops`` (2 x MACs) and ``mem_bytes`` (weights + input + output)."""

    flops: int
    mem_bytes: int

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.flops / self.mem_bytes


def _sizes(name: str, sizes: object) -> list[int]:
    rule = f"{name}={V.show(sizes)} must be a non-empty ascending sequence of ints >= 1"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) \
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in sizes):
        raise TypeError(rule)
    if not sizes or list(sizes) != sorted(sizes) or min(sizes) < 1:
        raise ValueError(rule)
    return [int(n) for n in sizes]


def peak_gflops(*, budget_s: float = 1.0, sizes: Sequence[int] = GEMM_SIZES, repeats: int = 5,
                device: str | torch.device = "cpu") -> Ceiling:
    """The compute roof measured here: GFLOP/s of a large square fp32 matmul ``A @ B`` (``2 n^3`` FLOPs).

    The side ``n`` is the largest of ``sizes`` whose single call takes at most ``budget_s / (repeats + 2)``
    seconds here (:func:`lessons_lib.profile.largest_size_within`), so the whole measurement fits in about
    ``budget_s`` on any machine; the output is preallocated (``torch.mm(..., out=)``), so no allocation is timed.

    Args:
        budget_s: seconds the measurement may take, a number > 0 (default 1.0).
        sizes: candidate matrix sides ``n``, a non-empty ascending sequence of ints >= 1.
        repeats: timed calls, an int >= 1 (default 5; the median is used).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.

    Returns:
        :class:`Ceiling`: ``value`` in GFLOP/s (``2 n^3 / median time``), the ``size`` ``n`` used, the latency.
    """
    budget_s = V.real("budget_s", budget_s, 0, low_open=True)
    sizes = _sizes("sizes", sizes)
    repeats = V.integer("repeats", repeats, 1)
    dev = V.device("device", device)
    gen = torch.Generator().manual_seed(0)

    def operands(n: int):
        a = torch.randn(n, n, generator=gen).to(dev)
        b = torch.randn(n, n, generator=gen).to(dev)
        return a, b, torch.empty(n, n, device=dev)

    made: dict[int, tuple] = {}

    def make_call(n: int):
        made.clear()  # keep only the latest operands (the selected size is the last or the one before)
        a, b, out = made.setdefault(n, operands(n))
        torch.mm(a, b, out=out)  # first touch outside the timed probe
        return lambda: (torch.mm(a, b, out=out), _sync(dev))

    n, _ = largest_size_within(make_call, sizes, budget_s / (repeats + 2))
    a, b, out = made[n] if n in made else operands(n)
    made.clear()
    lat = measure_latency(lambda x, y: torch.mm(x, y, out=out), (a, b), warmup=1, repeats=repeats,
                          budget_s=budget_s)
    return Ceiling(2.0 * n**3 / (lat.median_ms * 1e-3) / 1e9, "GFLOP/s", n, f"fp32 matmul {n}x{n} @ {n}x{n}", lat)


def bandwidth_gbs(*, budget_s: float = 1.0, sizes: Sequence[int] = COPY_SIZES, repeats: int = 5,
                  device: str | torch.device = "cpu") -> Ceiling:
    """The memory roof measured here: GB/s of ``dst.copy_(src)`` on large float32 tensors.

    Bytes moved = ``numel * 4`` read + ``numel * 4`` written (cache write-allocate traffic not counted, as
    STREAM's "Copy" counts). The size is the largest of ``sizes`` whose call fits ``budget_s / (repeats + 2)``;
    pick sizes well above the last-level cache (the default reaches 128 MiB per tensor) or the result is a
    cache bandwidth.

    Args:
        budget_s: seconds the measurement may take, a number > 0 (default 1.0).
        sizes: candidate element counts, a non-empty ascending sequence of ints >= 1.
        repeats: timed calls, an int >= 1 (default 5; the median is used).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.

    Returns:
        :class:`Ceiling`: ``value`` in GB/s (10^9 bytes per second), the element count used, the latency.
    """
    budget_s = V.real("budget_s", budget_s, 0, low_open=True)
    sizes = _sizes("sizes", sizes)
    repeats = V.integer("repeats", repeats, 1)
    dev = V.device("device", device)

    def tensors(n: int):
        src = torch.ones(n, device=dev)
        return src, torch.zeros(n, device=dev)

    made: dict[int, tuple] = {}

    def make_call(n: int):
        if n not in made:
            made.clear()
        src, dst = made.setdefault(n, tensors(n))
        dst.copy_(src)  # first touch (page faults) outside the timed probe
        return lambda: (dst.copy_(src), _sync(dev))

    n, _ = largest_size_within(make_call, sizes, budget_s / (repeats + 2))
    src, dst = made[n] if n in made else tensors(n)
    made.clear()
    lat = measure_latency(lambda s: dst.copy_(s), src, warmup=1, repeats=repeats, budget_s=budget_s)
    return Ceiling(2.0 * 4 * n / (lat.median_ms * 1e-3) / 1e9, "GB/s", n,
                   f"float32 copy of {n * 4 / 2**20:,.0f} MiB", lat)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _roofs(peak: object, bandwidth: object) -> tuple[float, float]:
    return (V.real("peak", float(peak) if isinstance(peak, Ceiling) else peak, 0, low_open=True),
            V.real("bandwidth", float(bandwidth) if isinstance(bandwidth, Ceiling) else bandwidth, 0, low_open=True))


def attainable_gflops(intensity: float, peak: float | Ceiling, bandwidth: float | Ceiling) -> float:
    """The roofline: ``min(peak, intensity * bandwidth)``, the best GFLOP/s a kernel of that intensity can reach.

    Args:
        intensity: arithmetic intensity in FLOPs per byte, a number >= 0.
        peak: compute roof in GFLOP/s, a number > 0 (or a :class:`Ceiling` from :func:`peak_gflops`).
        bandwidth: memory roof in GB/s, a number > 0 (or a :class:`Ceiling` from :func:`bandwidth_gbs`).

    Returns:
        ``float``: GFLOP/s.
    """
    intensity = V.real("intensity", intensity, 0)
    p, b = _roofs(peak, bandwidth)
    return min(p, intensity * b)


def ridge_intensity(peak: float | Ceiling, bandwidth: float | Ceiling) -> float:
    """Where the two roofs meet: ``peak / bandwidth`` FLOPs per byte.

    Args:
        peak: compute roof in GFLOP/s, a number > 0 (or a :class:`Ceiling`).
        bandwidth: memory roof in GB/s, a number > 0 (or a :class:`Ceiling`).

    Returns:
        ``float``: the ridge intensity in FLOP/B; below it a kernel is memory-bound.
    """
    p, b = _roofs(peak, bandwidth)
    return p / b


def bound(intensity: float, peak: float | Ceiling, bandwidth: float | Ceiling) -> str:
    """``"memory-bound"`` if ``intensity < peak / bandwidth``, else ``"compute-bound"``.

    Args:
        intensity: arithmetic intensity in FLOPs per byte, a number >= 0.
        peak: compute roof in GFLOP/s, a number > 0 (or a :class:`Ceiling`).
        bandwidth: memory roof in GB/s, a number > 0 (or a :class:`Ceiling`).

    Returns:
        ``str``: ``"memory-bound"`` or ``"compute-bound"``.
    """
    intensity = V.real("intensity", intensity, 0)
    return "memory-bound" if intensity < ridge_intensity(peak, bandwidth) else "compute-bound"


def layer_point(layer: nn.Module, input_shape: Sequence[int]) -> Point:
    """FLOPs (2 x MACs) and bytes moved of the conv and linear layers of ``layer`` on one ``input_shape``
    input: its place on the roofline (:attr:`Point.intensity`). For an ``nn.Conv2d`` or a chain of them this
    equals :func:`lessons_lib.conv.layer_cost` (``flops`` and ``mem_bytes``).

    Args:
        layer: an ``nn.Module`` with at least one conv or linear layer (e.g. ``nn.Conv2d``, a separable pair).
        input_shape: the input's shape, a sequence of >= 2 positive ints, e.g. ``(1, 64, 28, 28)``.

    Returns:
        :class:`Point`: ``flops`` and ``mem_bytes`` summed over the conv / linear rows of
        :func:`lessons_lib.profile.profile_model` (fp32).
    """
    V.module("layer", layer)
    rows = [r for r in profile_model(layer, input_shape).rows if r.macs]
    if not rows:
        raise ValueError(f"layer={type(layer).__name__} has no conv or linear layer (nothing to place)")
    return Point(2 * sum(r.macs for r in rows), sum(r.mem_bytes for r in rows))


def roofline_ms(flops: float, mem_bytes: float, peak: float | Ceiling, bandwidth: float | Ceiling) -> float:
    """The roofline's lower bound on one layer's time: ``max(flops / peak, mem_bytes / bandwidth)`` in ms.

    Args:
        flops: floating-point operations, a number >= 0 (2 x MACs; element-wise layers may count 0).
        mem_bytes: bytes moved, a number >= 0.
        peak: compute roof in GFLOP/s, a number > 0 (or a :class:`Ceiling`).
        bandwidth: memory roof in GB/s, a number > 0 (or a :class:`Ceiling`).

    Returns:
        ``float``: milliseconds.
    """
    flops, mem_bytes = V.real("flops", flops, 0), V.real("mem_bytes", mem_bytes, 0)
    p, b = _roofs(peak, bandwidth)
    return max(flops / (p * 1e9), mem_bytes / (b * 1e9)) * 1e3
