"""Count parameters, multiply-accumulates and memory traffic per layer; measure latency.

Conventions (those of fvcore and ptflops, and of the papers' "FLOPs" tables):

* **MACs** are multiply-accumulates of convolution and linear layers only, bias excluded -- the
  convention fvcore and ptflops use for those layers and torchvision's published "GFLOPS" (which
  are really GMACs: resnet18 1.814, mobilenet_v2 0.301, shufflenet_v2_x1_0 0.146 at 224x224).
  ``FLOPs ~= 2 x MACs``.
* Everything else (BatchNorm, activations, pooling, element-wise modules) is counted separately as
  ``other_ops`` (one op per output element, k*k per output for pooling), because counters disagree on it.
* **Memory access** of a layer = bytes of its weights + its input + its output activations (the
  ShuffleNet v2 "MAC" in the memory sense). **Arithmetic intensity** = FLOPs / memory bytes.

Conv MACs and memory bytes come from :func:`lessons_lib.conv.conv2d_macs` and
:func:`lessons_lib.conv.memory_bytes`, the formulas every lesson uses.
"""
from __future__ import annotations

import math
import numbers
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from .conv import conv2d_macs, memory_bytes
from .machine import describe
from . import validate as V
from .validate import int_at_least

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class LayerRow:
    name: str
    type: str
    out_shape: tuple
    params: int
    macs: int
    other_ops: int
    mem_bytes: int

    @property
    def intensity(self) -> float:
        """FLOPs (2 x MACs, or other ops) per byte moved."""
        flops = 2 * self.macs if self.macs else self.other_ops
        return flops / self.mem_bytes if self.mem_bytes else 0.0


@dataclass
class ProfileReport:
    """Per-layer rows plus totals; ``.table()`` for text, ``.plot()`` for a figure."""

    rows: list[LayerRow]
    input_shape: tuple
    total_params: int
    total_macs: int
    other_ops: int = 0
    mem_bytes: int = field(default=0)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def table(self, max_rows: int | None = 40, only_macs: bool = False) -> str:
        """The rows as a text table (layer, type, output shape, params, MACs, memory KiB, FLOP/B) and a total line.

        Args:
            max_rows: at most this many rows are listed (``None``: all).
            only_macs: list only the rows with MACs (conv and linear layers).

        Returns:
            The table as one string.
        """
        rows = [r for r in self.rows if r.macs] if only_macs else self.rows
        head = f"{'layer':<34}{'type':<18}{'output':<20}{'params':>10}{'MACs':>14}{'mem KiB':>10}{'FLOP/B':>8}"
        lines = [head, "-" * len(head)]
        shown = rows if max_rows is None else rows[:max_rows]
        for r in shown:
            lines.append(f"{r.name[:33]:<34}{r.type[:17]:<18}{str(list(r.out_shape))[:19]:<20}"
                         f"{r.params:>10,}{r.macs:>14,}{r.mem_bytes / 1024:>10.1f}{r.intensity:>8.1f}")
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more rows")
        lines.append("-" * len(head))
        lines.append(f"{'total':<72}{self.total_params:>10,}{self.total_macs:>14,}{self.mem_bytes / 1024:>10.1f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, ax=None, top: int = 20):
        """Horizontal bars: MACs of the ``top`` most expensive layers.

        Args:
            ax: a matplotlib ``Axes`` to draw on, or ``None`` for a new figure.
            top: how many layers (with MACs) are shown.

        Returns:
            The matplotlib ``Axes``.
        """
        import matplotlib.pyplot as plt

        rows = sorted((r for r in self.rows if r.macs), key=lambda r: r.macs, reverse=True)[:top]
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 0.25 * len(rows) + 1))
        ax.barh([r.name for r in rows][::-1], [r.macs / 1e6 for r in rows][::-1])
        ax.set_xlabel("MMACs")
        ax.set_title(f"MACs per layer (top {len(rows)}), total {self.total_macs / 1e6:.1f} M")
        return ax


def _numel(t: Any) -> int:
    if isinstance(t, torch.Tensor):
        return t.numel()
    if isinstance(t, (tuple, list)):
        return sum(_numel(x) for x in t)
    return 0


def _shape(t: Any) -> tuple:
    if isinstance(t, torch.Tensor):
        return tuple(t.shape)
    if isinstance(t, (tuple, list)) and t and isinstance(t[0], torch.Tensor):
        return tuple(t[0].shape)
    return ()


def _rows_cols(sizes: Sequence[int]) -> tuple[int, int]:
    """Spatial sizes of a 1-, 2- or 3-d conv as the ``(rows, cols)`` of :func:`lessons_lib.conv.conv2d_macs`:
    a Conv1d is a Conv2d of height 1, a Conv3d folds its depth into the rows (MACs multiply over axes)."""
    return math.prod(sizes[:-1]), sizes[-1]


def _layer_macs(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """(MACs, other ops) of one leaf module call."""
    if isinstance(m, _CONV):
        spatial = tuple(out.shape[-len(m.kernel_size):])
        images = out.numel() // (m.out_channels * math.prod(spatial))
        per_image = conv2d_macs(m.in_channels, m.out_channels, _rows_cols(m.kernel_size), _rows_cols(spatial),
                                m.groups)
        return images * per_image, 0
    if isinstance(m, nn.Linear):
        return out.numel() * m.in_features, 0
    if isinstance(m, _POOL):
        k = m.kernel_size if isinstance(m.kernel_size, int) else math.prod(m.kernel_size)
        return 0, out.numel() * (k * k if isinstance(m.kernel_size, int) else k)
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return 0, _numel(inp)
    return 0, _numel(out)


def profile_model(model: nn.Module, input_shape: Sequence[int], *, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> ProfileReport:
    """Run ``model`` once on a random ``input_shape`` tensor and account for every leaf module.

    A module called twice (e.g. a shared ReLU) gives two rows. The model is moved to ``device`` and
    ``dtype`` (``nn.Module.to`` works in place) and left in the train/eval mode it had.

    Args:
        model: the ``nn.Module`` to profile.
        input_shape: shape of the random normal input, a tuple / list / ``torch.Size`` of >= 2 positive ints,
            e.g. ``(1, 3, 224, 224)``.
        device: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.
        dtype: a floating-point ``torch.dtype`` for the input and the model.

    Returns:
        :class:`ProfileReport`: one :class:`LayerRow` per leaf-module call and the totals; ``total_macs`` counts
        conv and linear layers only (see module doc).
    """
    V.module("model", model)
    rule = f"input_shape={input_shape!r} must be a sequence of >= 2 positive ints, e.g. (1, 3, 224, 224)"
    if not (isinstance(input_shape, (tuple, list, torch.Size))
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in input_shape)):
        raise TypeError(rule)
    if len(input_shape) < 2 or not all(s > 0 for s in input_shape):
        raise ValueError(rule)
    device = V.device("device", device)
    V.instance("dtype", dtype, torch.dtype, "a torch.dtype (e.g. torch.float32)")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype} must be a floating dtype (the input is random normal)")
    rows: list[LayerRow] = []
    elem = torch.tensor([], dtype=dtype).element_size()
    hooks = []

    def hook(name):
        def fn(m, args, out):
            inp = args[0] if args else None
            macs, other = _layer_macs(m, inp, out)
            params = sum(p.numel() for p in m.parameters(recurse=False))
            mem = memory_bytes(params, _numel(inp), _numel(out), elem)
            rows.append(LayerRow(name, type(m).__name__, _shape(out), params, int(macs), int(other), int(mem)))
        return fn

    for name, m in model.named_modules():
        if len(list(m.children())) == 0:
            hooks.append(m.register_forward_hook(hook(name or type(m).__name__)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            x = torch.randn(*input_shape, device=device, dtype=dtype)
            model.to(device=device, dtype=dtype)(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    total_params = sum(p.numel() for p in model.parameters())
    return ProfileReport(rows, tuple(input_shape), total_params, sum(r.macs for r in rows),
                         sum(r.other_ops for r in rows), sum(r.mem_bytes for r in rows))


# ------------------------------------------------------------------------------------------ latency
@dataclass
class Latency:
    """Timing summary in milliseconds (median and the 10th / 90th percentiles of ``repeats`` runs)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    device: str
    machine: str
    times_ms: tuple[float, ...] = ()
    """Every timed run in order (in :func:`measure_side_by_side`, run ``i`` of each candidate is round ``i``,
    so two candidates' ``times_ms`` are paired replicates for :func:`lessons_lib.stats.verdict`)."""

    @property
    def spread_ms(self) -> float:
        return self.p90_ms - self.p10_ms

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}, n={self.repeats}) on {self.machine}"


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _check_timing_args(warmup: object, repeats: object, min_time_s: object, budget_s: object = None) -> None:
    V.real("budget_s", budget_s, 0, low_open=True, none_ok=True)  # seconds
    V.integer("warmup", warmup, 0)
    V.integer("repeats", repeats, 1)
    V.real("min_time_s", min_time_s, 0)  # seconds


def _check_inputs(name: str, inputs: object) -> None:
    import numpy as np

    V.instance(name, inputs, (torch.Tensor, tuple, np.ndarray), "a tensor or a tuple of arguments")


def _device_of(args: tuple) -> torch.device:
    return next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))


def _summary(times: list[float], dev: torch.device) -> Latency:
    return Latency(statistics.median(times), _percentile(times, 0.1), _percentile(times, 0.9), len(times),
                   str(dev), describe(dev), tuple(times))


def measure_latency(model_or_fn: nn.Module | Callable[..., Any], inputs: Any, *, warmup: int = 3,
                    repeats: int = 20, min_time_s: float = 0.0, budget_s: float | None = None) -> Latency:
    """Median wall time of ``model_or_fn(*inputs)`` in ms, synchronising CUDA around each call.

    Modules run in eval mode under ``torch.inference_mode``. ``min_time_s`` never extends past ``budget_s``;
    ``Latency.repeats`` says how many calls were timed.

    Args:
        model_or_fn: an ``nn.Module`` (put in eval mode) or any callable.
        inputs: a tensor or a tuple of tensors (all on one device; an ``ndarray`` is accepted too), passed as
            ``model_or_fn(*inputs)``.
        warmup: untimed calls first, an int >= 0.
        repeats: timed calls, an int >= 1.
        min_time_s: seconds, a number >= 0: keeps repeating (beyond ``repeats``) until that much time was
            measured, for very fast calls.
        budget_s: seconds, a number > 0, or ``None``: stops repeating (before ``repeats``, after at least one
            timed call) once the warm-up and the timed calls have taken that long, so a call that is
            unexpectedly slow on this machine cannot blow a lesson's time budget.

    Returns:
        :class:`Latency`: median, p10 and p90 in ms of the timed calls, their number, the device and the machine.
    """
    if not callable(model_or_fn):
        raise TypeError(f"model_or_fn={model_or_fn!r} must be an nn.Module or a callable")
    _check_timing_args(warmup, repeats, min_time_s, budget_s)
    _check_inputs("inputs", inputs)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    dev = _device_of(args)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if isinstance(model_or_fn, nn.Module):
        model_or_fn.eval()
    times: list[float] = []
    t_begin = time.perf_counter()
    with torch.inference_mode():
        for _ in range(warmup):
            model_or_fn(*args)
        sync()
        start = time.perf_counter()
        while not _spent(t_begin, budget_s, len(times)) and (
                len(times) < repeats or (time.perf_counter() - start) < min_time_s):
            t0 = time.perf_counter()
            model_or_fn(*args)
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    return _summary(times, dev)


def _spent(t_begin: float, budget_s: float | None, n_timed: int) -> bool:
    return budget_s is not None and n_timed >= 1 and time.perf_counter() - t_begin >= budget_s


def measure_side_by_side(candidates: Mapping[str, nn.Module | Callable[..., Any]], inputs: Any, *,
                         warmup: int = 3, repeats: int = 20, budget_s: float | None = None) -> dict[str, Latency]:
    """Time several models on the same ``inputs`` in interleaved rounds (A, B, C, A, B, C, ...).

    A change of machine load (other processes, clock boost) then hits every candidate alike, so
    ratios of the medians are far steadier than those of separate :func:`measure_latency` runs.

    Args:
        candidates: ``{name: nn.Module or callable}``, at least one; modules are put in eval mode.
        inputs: shared (a tensor or a tuple of arguments), or a mapping with one entry per candidate.
        warmup: untimed rounds first, an int >= 0.
        repeats: timed rounds, an int >= 1.
        budget_s: seconds, a number > 0, or ``None``: stops after the round in which the whole measurement
            (warm-up included) reached that many seconds, with at least one round.

    Returns:
        ``{name: Latency}`` in the order of ``candidates``; every candidate keeps the same number of timed calls.
    """
    V.mapping("candidates", candidates, non_empty=True, what="a mapping name -> model or callable")
    for name, fn in candidates.items():
        if not callable(fn):
            raise TypeError(f"candidates[{name!r}]={fn!r} must be an nn.Module or a callable")
    _check_timing_args(warmup, repeats, 0.0, budget_s)
    if isinstance(inputs, Mapping):
        missing = [n for n in candidates if n not in inputs]
        if missing:
            raise ValueError(f"inputs has no entry for {missing}; give one per candidate or one shared input")
        for n in candidates:
            _check_inputs(f"inputs[{n!r}]", inputs[n])
    else:
        _check_inputs("inputs", inputs)
    if isinstance(inputs, Mapping):
        args = {n: (inputs[n] if isinstance(inputs[n], tuple) else (inputs[n],)) for n in candidates}
    else:
        shared = inputs if isinstance(inputs, tuple) else (inputs,)
        args = {n: shared for n in candidates}
    devs = {n: _device_of(a) for n, a in args.items()}
    cuda = any(d.type == "cuda" for d in devs.values())
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for fn in candidates.values():
        if isinstance(fn, nn.Module):
            fn.eval()
    times: dict[str, list[float]] = {n: [] for n in candidates}
    t_begin = time.perf_counter()
    with torch.inference_mode():
        for _ in range(warmup):
            for n, fn in candidates.items():
                fn(*args[n])
        sync()
        for r in range(repeats):
            if _spent(t_begin, budget_s, r):
                break
            for n, fn in candidates.items():
                t0 = time.perf_counter()
                fn(*args[n])
                sync()
                times[n].append((time.perf_counter() - t0) * 1e3)
    return {n: _summary(times[n], devs[n]) for n in candidates}


def largest_size_within(make_call: Callable[[int], Callable[[], Any]], sizes: Sequence[int],
                        budget_s: float) -> tuple[int, float]:
    """The largest of ``sizes`` whose single call ``make_call(size)()`` takes at most ``budget_s`` seconds
    here, and that call's time in seconds.

    Each size is timed once, in order, stopping at the first that is over budget
    (so with sizes growing geometrically the probing costs little more than the call it selects). The
    smallest size is returned even when it is over budget. For sizing a timing experiment to the
    measured speed of this machine (e.g. a bf16 matmul that is 100x slower on a CPU without bf16
    instructions) instead of to an assumption.

    Args:
        make_call: ``make_call(size)`` returns the zero-argument call to time (building it is not timed; the
            call runs under ``torch.inference_mode``).
        sizes: a non-empty, ascending sequence of ints.
        budget_s: seconds one call may take, a number > 0.

    Returns:
        ``(size, seconds)``: the selected size and the wall time of its call in seconds.
    """
    V.function("make_call", make_call)
    rule = f"sizes={V.show(sizes)} must be a non-empty ascending sequence of ints"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) \
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in sizes):
        raise TypeError(rule)
    if not sizes or list(sizes) != sorted(sizes):
        raise ValueError(rule)
    V.real("budget_s", budget_s, 0, low_open=True)  # seconds
    best, best_t = sizes[0], None
    for n in sizes:
        call = make_call(n)
        with torch.inference_mode():
            t0 = time.perf_counter()
            call()
            dt = time.perf_counter() - t0
        if best_t is not None and dt > budget_s:
            break
        best, best_t = n, dt
        if dt > budget_s:
            break
    return best, best_t


def items_within(budget_s: float, seconds_per_item: float, *, at_least: int, at_most: int,
                 multiple_of: int = 1) -> int:
    """How many items (images, batches) a step can process in ``budget_s`` at the measured
    ``seconds_per_item``: ``budget_s / seconds_per_item`` rounded down to a multiple of ``multiple_of``,
    clipped to ``[at_least, at_most]``. Lessons use it to shrink an evaluation on a slow CPU and say so.

    Args:
        budget_s: seconds available, a number > 0.
        seconds_per_item: measured seconds per item, a number > 0.
        at_least, at_most: bounds of the result, ints >= 1 with ``at_least <= at_most`` (not rounded to
            ``multiple_of``).
        multiple_of: the granularity, an int >= 1 (e.g. the batch size).

    Returns:
        ``int``: the number of items.
    """
    for name, v in (("budget_s", budget_s), ("seconds_per_item", seconds_per_item)):
        V.real(name, v, 0, low_open=True)  # seconds
    for name, v in (("at_least", at_least), ("at_most", at_most), ("multiple_of", multiple_of)):
        V.integer(name, v, 1)
    if at_least > at_most:
        raise ValueError(f"at_least={at_least} must be <= at_most={at_most}")
    n = int(budget_s / seconds_per_item) // multiple_of * multiple_of
    return max(at_least, min(at_most, n))


# ------------------------------------------------ lesson 01's sweep: separable vs standard conv, timed
@dataclass
class SweepRow:
    """One channel count of :func:`separable_sweep`: MACs (whole batch) and median ms per kind."""

    channels: int
    macs: dict[str, int]
    ms: dict[str, float]
    machine: str

    @property
    def predicted_ratio(self) -> float:
        """separable / standard MACs (= ``1/c2 + 1/k^2``)."""
        return self.macs["separable"] / self.macs["standard"]

    @property
    def measured_ratio(self) -> float:
        """separable / standard median time, measured side by side."""
        return self.ms["separable"] / self.ms["standard"]

    def gflops(self, kind: str) -> float:
        """Achieved GFLOPS of ``kind``: 2 x MACs / time.

        Args:
            kind: ``"standard"``, ``"depthwise"``, ``"pointwise"`` or ``"separable"``.

        Returns:
            ``float``: GFLOPS (10^9 floating-point operations per second).
        """
        return 2 * self.macs[kind] / (self.ms[kind] * 1e-3) / 1e9


def separable_sweep(channels: Sequence[int], hw: int = 28, kernel_size: int = 3, *, batch: int = 1,
                    repeats: int = 20, warmup: int = 3, device: str | torch.device = "cpu") -> list[SweepRow]:
    """For each ``c`` in ``channels``: time a standard k x k conv (c -> c), its depthwise and pointwise parts
    and the separable pair, interleaved (:func:`lessons_lib.profile.measure_side_by_side`) on a random
    ``Tensor[batch, c, hw, hw]``, and return their MACs and median times.

    Args:
        channels: the channel counts ``c``, a non-empty sequence of ints >= 1.
        hw: height and width of the input, an int >= 1.
        kernel_size: ``k``, an odd int >= 1.
        batch: images per input, an int >= 1.
        repeats: timed rounds per channel count, an int >= 1.
        warmup: untimed rounds first, an int >= 0.
        device: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.

    Returns:
        One :class:`SweepRow` per channel count, with ``macs`` (whole batch) and ``ms`` (median) keyed
        ``"standard"``, ``"depthwise"``, ``"pointwise"`` and ``"separable"``.
    """
    from .conv import conv_layer, layer_cost

    channels = V.sequence("channels", channels, lambda n, v: int_at_least(n, v))
    hw, batch = int_at_least("hw", hw), int_at_least("batch", batch)
    _check_timing_args(warmup, repeats, 0.0)
    dev = V.device("device", device)
    rows = []
    for c in channels:
        c = int_at_least("channels[i]", c)
        dw, pw = conv_layer("depthwise", c, c, kernel_size), conv_layer("pointwise", c, c)
        layers = {"standard": conv_layer("standard", c, c, kernel_size), "depthwise": dw, "pointwise": pw,
                  "separable": nn.Sequential(dw, pw)}
        layers = {k: m.to(dev) for k, m in layers.items()}
        lat = measure_side_by_side(layers, torch.randn(batch, c, hw, hw, device=dev), warmup=warmup, repeats=repeats)
        macs = {k: layer_cost(m, hw).macs * batch for k, m in layers.items()}
        rows.append(SweepRow(c, macs, {k: v.median_ms for k, v in lat.items()}, describe(dev)))
    return rows
