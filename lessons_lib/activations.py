"""Activation functions of efficient CNNs, their derivatives, and what they cost (lesson 03).

Every function is ``Tensor -> Tensor`` (any shape, floating dtype) and equals its torch reference:

==============  ==========================================  ===================
ours            formula                                     torch reference
==============  ==========================================  ===================
``relu``        max(0, x)                                   ``F.relu``
``relu6``       min(max(0, x), 6)                           ``F.relu6``
``leaky_relu``  x if x > 0 else a*x  (a = 0.01)             ``F.leaky_relu``
``prelu``       x if x > 0 else a*x  (a learned, per ch.)   ``F.prelu``
``selu``        l*(x if x > 0 else alpha*(e^x - 1))          ``F.selu``
``sigmoid``     1 / (1 + e^-x)                              ``torch.sigmoid``
``hard_sigmoid``  relu6(x + 3) / 6                          ``F.hardsigmoid``
``swish``       x * sigmoid(x)   (SiLU, swish with beta=1)  ``F.silu``
``hard_swish``  x * relu6(x + 3) / 6                        ``F.hardswish``
``mish``        x * tanh(softplus(x))                       ``F.mish``
==============  ==========================================  ===================

Sources: document 001 (MobileNet v1 ReLU6, MobileNet v3 h-swish), document 000 (ReLU / LReLU /
PReLU / ReLU6 / hard-swish / SELU as "bag of specials"), document 003 (quantisation tips).
Document 001 writes ReLU6 as ``max(max(0, x), 6)``; :func:`relu6_as_printed_in_doc001` keeps that
expression so lesson 03 can show it is >= 6 everywhere.

:data:`ACTIVATIONS` is the one activation registry: lesson 03 plots and times it (name -> :class:`Activation`:
function, analytic derivative, torch reference, output range), and the blocks build their layers from
it with :func:`module` (name -> a fresh ``nn.Module``).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from torch import nn

from . import validate as V
from .profile import Latency, measure_side_by_side

__all__ = [
    "relu", "relu6", "leaky_relu", "prelu", "selu", "sigmoid", "hard_sigmoid", "swish", "hard_swish",
    "mish", "relu6_as_printed_in_doc001", "Activation", "ACTIVATIONS", "get", "derivative", "module",
    "max_error_on_grid", "time_per_element", "time_side_by_side", "cost_vs_baseline", "quantize_max_calibrated",
    "quantization_rmse", "activation_inputs",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}={type(x).__name__} must be a torch.Tensor")
    if not x.is_floating_point():
        raise TypeError(f"{name}={V.show(x)} has dtype={x.dtype}; activations need a floating dtype (e.g. torch.float32)")
    return x


# ------------------------------------------------------------------------------------- functions
def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``max(0, x)``.
    """
    return _check(x).clamp_min(0)


def relu6(x: torch.Tensor) -> torch.Tensor:
    """min(max(0, x), 6): ReLU with an upper bound (MobileNet v1/v2).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``min(max(0, x), 6)``, in [0, 6].
    """
    return _check(x).clamp(0.0, 6.0)


def relu6_as_printed_in_doc001(x: torch.Tensor) -> torch.Tensor:
    """Document 001's formula ``max(max(0, x), 6)`` taken literally -- it is >= 6 everywhere (a slip).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``max(max(0, x), 6)``, >= 6 everywhere.
    """
    return torch.maximum(_check(x).clamp_min(0), torch.tensor(6.0, dtype=x.dtype, device=x.device))


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise.

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).
        negative_slope: slope for x <= 0 (any finite real number; default 0.01).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``x`` where ``x > 0``, else ``negative_slope * x``.
    """
    V.real("negative_slope", negative_slope)
    x = _check(x)
    return torch.where(x > 0, x, x * negative_slope)


def prelu(x: torch.Tensor, weight: torch.Tensor | float = 0.25) -> torch.Tensor:
    """Leaky ReLU whose slope ``weight`` is learned: a scalar or one per channel (dim 1 of ``x``).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).
        weight: slope for x <= 0: a finite real number, or a real-dtype tensor that is 0-d, has one element, or
            has ``x.shape[1]`` elements (1-d; one slope per channel, broadcast over dim 1). Default 0.25.

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``x`` where ``x > 0``, else ``weight * x``.
    """
    x = _check(x)
    if isinstance(weight, torch.Tensor):
        V.tensor("weight", weight, dtype="number")
    else:
        V.real("weight", weight)
    w = torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    if w.ndim > 1 or (w.ndim == 1 and w.numel() not in (1, x.shape[1] if x.ndim > 1 else 1)):
        raise ValueError(f"weight has shape {tuple(w.shape)}; need a scalar or one slope per channel "
                         f"(x.shape[1]={x.shape[1] if x.ndim > 1 else 1})")
    if w.ndim == 1 and w.numel() > 1:
        w = w.view(1, -1, *([1] * (x.ndim - 2)))
    return torch.where(x > 0, x, x * w)


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled ELU (self-normalising): ``scale * (x if x > 0 else alpha * (e^x - 1))``.

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: SELU of ``x``, bounded below by ``-scale * alpha`` (about -1.7581).
    """
    x = _check(x)
    return SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x.clamp_max(0)))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function 1 / (1 + e^-x).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``1 / (1 + e^-x)``, in [0, 1].
    """
    return torch.sigmoid(_check(x))


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (0 below -3, 1 above 3) -- MobileNet v3's SE gate.

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``relu6(x + 3) / 6``, in [0, 1].
    """
    return relu6(_check(x) + 3.0) / 6.0


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x) (= SiLU, swish with beta = 1).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``x * sigmoid(x)``.
    """
    x = _check(x)
    return x * torch.sigmoid(x)


def hard_swish(x: torch.Tensor) -> torch.Tensor:
    """x * relu6(x + 3) / 6 = x * hard_sigmoid(x): approximates *swish* (not sigmoid) with no exp.

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``x * relu6(x + 3) / 6``.
    """
    x = _check(x)
    return x * (relu6(x + 3.0) / 6.0)


def mish(x: torch.Tensor) -> torch.Tensor:
    """x * tanh(softplus(x)).

    Args:
        x: input ``Tensor`` of any shape, floating dtype (``TypeError`` otherwise).

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: ``x * tanh(softplus(x))``.
    """
    x = _check(x)
    return x * torch.tanh(F.softplus(x))


# ----------------------------------------------------------------------------------- derivatives
def _d_relu(x):
    return (x > 0).to(x.dtype)


def _d_relu6(x):
    return ((x > 0) & (x < 6)).to(x.dtype)


def _d_leaky(x):
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01))


def _d_prelu(x):
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.25))


def _d_selu(x):
    return SELU_SCALE * torch.where(x > 0, torch.ones_like(x), SELU_ALPHA * torch.exp(x.clamp_max(0)))


def _d_sigmoid(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


def _d_hard_sigmoid(x):
    return ((x > -3) & (x < 3)).to(x.dtype) / 6.0


def _d_swish(x):
    s = torch.sigmoid(x)
    return s + x * s * (1 - s)


def _d_hard_swish(x):
    return torch.where(x <= -3, torch.zeros_like(x), torch.where(x >= 3, torch.ones_like(x), x / 3.0 + 0.5))


def _d_mish(x):
    t = torch.tanh(F.softplus(x))
    return t + x * (1 - t * t) * torch.sigmoid(x)


@dataclass(frozen=True)
class Activation:
    """One registry entry: ``fn`` (ours), ``grad`` (analytic derivative), ``ref`` (torch), output range,
    ``module`` (the ``torch.nn`` layer class computing ``ref``)."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    ref: Callable[[torch.Tensor], torch.Tensor]
    lo: float
    hi: float
    formula: str
    module: type[nn.Module]

    @property
    def bounded_above(self) -> bool:
        return math.isfinite(self.hi)


_INF = math.inf
#: name -> :class:`Activation`; PReLU uses its default initial slope 0.25 (as ``nn.PReLU()``).
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", relu, _d_relu, F.relu, 0.0, _INF, r"\max(0, x)", nn.ReLU),
    Activation("relu6", relu6, _d_relu6, F.relu6, 0.0, 6.0, r"\min(\max(0, x), 6)", nn.ReLU6),
    Activation("leaky_relu", leaky_relu, _d_leaky, F.leaky_relu, -_INF, _INF, r"x \text{ if } x>0 \text{ else } 0.01x",
               nn.LeakyReLU),
    Activation("prelu", prelu, _d_prelu, lambda x: F.prelu(x, torch.tensor([0.25], dtype=x.dtype)), -_INF, _INF,
               r"x \text{ if } x>0 \text{ else } a x", nn.PReLU),
    Activation("selu", selu, _d_selu, F.selu, -SELU_SCALE * SELU_ALPHA, _INF, r"\lambda(x \text{ if } x>0 \text{ else } \alpha(e^x-1))",
               nn.SELU),
    Activation("sigmoid", sigmoid, _d_sigmoid, torch.sigmoid, 0.0, 1.0, r"1/(1+e^{-x})", nn.Sigmoid),
    Activation("hard_sigmoid", hard_sigmoid, _d_hard_sigmoid, F.hardsigmoid, 0.0, 1.0, r"\mathrm{ReLU6}(x+3)/6",
               nn.Hardsigmoid),
    Activation("swish", swish, _d_swish, F.silu, -0.2784645427610738, _INF, r"x\,\sigma(x)", nn.SiLU),
    Activation("hard_swish", hard_swish, _d_hard_swish, F.hardswish, -0.375, _INF, r"x\,\mathrm{ReLU6}(x+3)/6",
               nn.Hardswish),
    Activation("mish", mish, _d_mish, F.mish, -0.3088434130172504, _INF, r"x \tanh(\ln(1+e^x))", nn.Mish),
)}
#: the activations whose output lies in [0, 1]: the gates of a squeeze-and-excitation block
GATES = tuple(n for n, a in ACTIVATIONS.items() if a.lo >= 0 and a.hi <= 1)


def get(name: str) -> Activation:
    """The registry entry ``name`` (see :data:`ACTIVATIONS`).

    Args:
        name: an activation name, one of the keys of :data:`ACTIVATIONS` (``"relu"``, ``"relu6"``, ...,
            ``"mish"``).

    Returns:
        :class:`Activation`: the registry entry (function, derivative, torch reference, output range).
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str")
    if name not in ACTIVATIONS:
        raise ValueError(f"name={name!r} is not an activation; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def module(name: str, *, inplace: bool = False, choices: Sequence[str] | None = None,
           param: str = "activation") -> nn.Module:
    """A fresh ``nn.Module`` for activation ``name`` (``ACTIVATIONS[name].module``), e.g. ``nn.ReLU6()``.

    Args:
        name: an activation name, one of ``choices``; a name outside them raises
            ``ValueError("<param>=<name> must be one of [...]")``.
        inplace: build it in place (``nn.ReLU(inplace=True)``); only for the layer classes that take an
            ``inplace`` argument (not sigmoid / prelu: ``ValueError`` for those). Default ``False``.
        choices: the allowed names, a non-empty list / tuple of keys of :data:`ACTIVATIONS`
            (default ``None``: all of them).
        param: the caller's argument name used in the error message (a non-empty str; default ``"activation"``).

    Returns:
        ``nn.Module``: a new instance of ``ACTIVATIONS[name].module``.
    """
    V.string("param", param, non_empty=True)
    allowed = list(ACTIVATIONS) if choices is None else V.sequence(
        "choices", choices, lambda n, v: V.choice(n, v, list(ACTIVATIONS)))
    V.choice(param, name, sorted(allowed))
    V.boolean("inplace", inplace)
    cls = ACTIVATIONS[name].module
    if not inplace:
        return cls()
    if "inplace" not in inspect.signature(cls).parameters:
        raise ValueError(f"{param}={name!r} has no in-place form ({cls.__name__}); use inplace=False")
    return cls(inplace=True)


def derivative(name: str, x: torch.Tensor) -> torch.Tensor:
    """The analytic derivative f'(x) of activation ``name`` (at kinks: the right-open convention of torch).

    Args:
        name: an activation name, one of the keys of :data:`ACTIVATIONS`.
        x: input ``Tensor`` of any shape, floating dtype.

    Returns:
        ``Tensor`` of the same shape and dtype as ``x``: f'(x) elementwise (prelu at its initial slope 0.25,
        leaky_relu at 0.01).
    """
    return get(name).grad(_check(x))


# --------------------------------------------------------------------------------- measurements
def max_error_on_grid(f: Callable, g: Callable, lo: float = -8.0, hi: float = 8.0,
                      n: int = 160_001) -> tuple[float, float]:
    """``(max |f(x) - g(x)|, the x where it occurs)`` over ``n`` evenly spaced points of [lo, hi] (float64).

    Args:
        f, g: callables ``Tensor -> Tensor`` (elementwise, e.g. two activations), called on a float64 1-d tensor.
        lo, hi: the interval's ends, finite numbers with ``lo < hi`` (default [-8, 8]).
        n: number of grid points (int >= 2; default 160 001).

    Returns:
        ``tuple[float, float]``: the largest absolute difference and the grid point ``x`` where it occurs.
    """
    V.function("f", f), V.function("g", g)
    V.real("lo", lo), V.real("hi", hi)
    if not lo < hi:
        raise ValueError(f"lo={lo!r}, hi={hi!r} must be numbers with lo < hi")
    V.integer("n", n, 2)
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    err = (f(x) - g(x)).abs()
    i = int(err.argmax())
    return float(err[i]), float(x[i])


#: how each registry entry's torch reference is spelled (what :func:`time_side_by_side` times by default)
TORCH_OP_NAMES: dict[str, str] = {
    "relu": "F.relu", "relu6": "F.relu6", "leaky_relu": "F.leaky_relu", "prelu": "F.prelu", "selu": "F.selu",
    "sigmoid": "torch.sigmoid", "hard_sigmoid": "F.hardsigmoid", "swish": "F.silu", "hard_swish": "F.hardswish",
    "mish": "F.mish",
}
#: the baselines :func:`time_side_by_side` can time as the unit of cost: a copy, and the cheapest activation
BASELINES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"torch.clone": torch.clone, "F.relu": F.relu}
IMPLS = ("torch", "ours", "both")


def time_side_by_side(names: Sequence[str] | None = None, *, impl: str = "torch", baseline: str = "torch.clone",
                      numel: int = 2**22, repeats: int = 15, warmup: int = 2,
                      device: str | torch.device = "cpu") -> dict[str, Latency]:
    """Time activations on one random float32 ``Tensor[numel]``, interleaved with a baseline in the same rounds.

    ``impl="torch"`` times PyTorch's own ops (each entry's ``ref``: ``F.relu6``, ``F.leaky_relu``, ``F.selu``,
    ``F.hardswish``, ``F.mish`` ...: one kernel, one pass over memory), ``impl="ours"`` the compositions of
    this module (several eager ops, each a pass over memory: a contrast, not the activations' cost),
    ``"both"`` both. Every call allocates its output, the baseline too, so the baseline is a fair unit.
    Run ``i`` of every entry is round ``i`` (:func:`lessons_lib.profile.measure_side_by_side`): the entries'
    ``times_ms`` are paired replicates.

    Args:
        names: activations to time, a non-empty list of keys of :data:`ACTIVATIONS` (default ``None``: all).
        impl: ``"torch"``, ``"ours"`` or ``"both"``.
        baseline: the unit of cost, a key of :data:`BASELINES` (``"torch.clone"``, a copy; or ``"F.relu"``).
        numel: elements of the input (int >= 1; default 2**22, 16 MiB: larger than most caches).
        repeats: timed rounds (int >= 1; default 15).
        warmup: untimed rounds first (int >= 0; default 2).
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``.

    Returns:
        ``dict[str, Latency]``: the baseline first (under its key, e.g. ``"torch.clone"``), then ``name`` for
        torch's op and ``"ours: name"`` for the composition, in the order of ``names``.
    """
    names = list(ACTIVATIONS) if names is None else V.sequence(
        "names", names, lambda n, v: V.choice(n, v, sorted(ACTIVATIONS)))
    V.choice("impl", impl, IMPLS)
    V.choice("baseline", baseline, sorted(BASELINES))
    V.integer("numel", numel, 1), V.integer("repeats", repeats, 1), V.integer("warmup", warmup, 0)
    device = V.device("device", device)
    x = torch.randn(numel, generator=torch.Generator().manual_seed(0)).to(device) * 4
    fns: dict[str, Callable] = {baseline: BASELINES[baseline]}
    for n in names:
        if impl in ("torch", "both"):
            fns[n] = _torch_op(n, device)
        if impl in ("ours", "both"):
            fns[f"ours: {n}"] = get(n).fn
    return measure_side_by_side(fns, x, warmup=warmup, repeats=repeats)


def _torch_op(name: str, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "prelu":  # the slope tensor is built once, not inside the timed call
        w = torch.tensor([0.25], device=device)
        return lambda x: F.prelu(x, w)
    return ACTIVATIONS[name].ref


def cost_vs_baseline(latencies: dict[str, Latency], baseline: str) -> dict[str, tuple[float, object]]:
    """Each entry's cost in units of ``baseline``, from paired rounds: the median over rounds of
    ``t_entry / t_baseline``, and :func:`lessons_lib.stats.verdict` on the paired times (lower is better).

    Args:
        latencies: ``{name: Latency}`` from :func:`time_side_by_side` (or
            :func:`lessons_lib.profile.measure_side_by_side`), every entry with the same >= 2 timed rounds.
        baseline: the key of the unit entry in ``latencies``.

    Returns:
        ``{name: (ratio, verdict)}`` for every entry but the baseline: ``ratio`` a float (``2.0`` = twice the
        baseline's time), ``verdict`` a :class:`lessons_lib.stats.Verdict` whose ``.better`` is the faster name,
        or ``None`` when the two cannot be told apart at this budget.
    """
    import statistics

    from .stats import verdict

    V.mapping("latencies", latencies, non_empty=True)
    V.string("baseline", baseline)
    if baseline not in latencies:
        raise ValueError(f"baseline={baseline!r} must be a key of latencies ({list(latencies)})")
    for k, lat in latencies.items():
        if not isinstance(lat, Latency):
            raise TypeError(f"latencies[{k!r}]={type(lat).__name__} must be a Latency (from measure_side_by_side)")
    base = latencies[baseline].times_ms
    if len(base) < 2 or any(len(lat.times_ms) != len(base) for lat in latencies.values()):
        raise ValueError(f"latencies={V.show(list(latencies))} must all hold the same >= 2 paired rounds")
    out = {}
    for k, lat in latencies.items():
        if k == baseline:
            continue
        ratio = statistics.median(t / b for t, b in zip(lat.times_ms, base))
        out[k] = (ratio, verdict(lat.times_ms, base, names=(k, baseline), higher_is_better=False, paired=True,
                                 unit="ms"))
    return out


def time_per_element(names: list[str] | None = None, *, numel: int = 2**22, repeats: int = 15,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Median nanoseconds per element of each activation (ours) on a ``numel`` float32 tensor.

    All activations run on the same random input, interleaved in the same rounds
    (:func:`time_side_by_side` with ``impl="ours"``), so ratios are fair. These are the library's eager
    compositions; torch's own ops are what :func:`time_side_by_side` times by default.

    Args:
        names: the activations to time, a non-empty list of keys of :data:`ACTIVATIONS` (default ``None``: all).
        numel: number of elements of the input tensor (int >= 1; default 2**22).
        repeats: timed runs per activation, after 2 warm-up runs (int >= 1; default 15).
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``.

    Returns:
        ``dict[str, float]``: name -> median time per element in nanoseconds.
    """
    lat = time_side_by_side(names, impl="ours", numel=numel, repeats=repeats, device=device)
    return {k.removeprefix("ours: "): v.median_ms * 1e6 / numel for k, v in lat.items() if k.startswith("ours: ")}


def quantize_max_calibrated(x: torch.Tensor, num_bits: int = 8) -> tuple[torch.Tensor, float]:
    """Unsigned uniform quantisation of a non-negative tensor with the scale set by its maximum.

    ``S = max(x) / (2^num_bits - 1)``, ``q = clamp(round(x / S), 0, 2^num_bits - 1)``. Equals
    ``torch.fake_quantize_per_tensor_affine(x, S, 0, 0, 2^num_bits - 1)``.

    Args:
        x: non-empty, non-negative ``Tensor`` of any shape, floating dtype (e.g. activations after ReLU / ReLU6).
        num_bits: bit width (int in [2, 16]; default 8).

    Returns:
        ``tuple[Tensor, float]``: ``(q * S, S)``, the dequantised tensor (same shape and dtype as ``x``) and the
        scale ``S`` (an all-zero ``x`` gives a copy of ``x`` and ``S = 0.0``).
    """
    x = _check(x)
    V.integer("num_bits", num_bits, 2, 16)
    if x.numel() == 0 or float(x.min()) < 0:
        raise ValueError(f"x={V.show(x)} must be non-empty and non-negative (quantise activations after ReLU / ReLU6)")
    qmax = 2**num_bits - 1
    scale = float(x.max()) / qmax
    if scale == 0:
        return x.clone(), 0.0
    return torch.clamp(torch.round(x / scale), 0, qmax) * scale, scale


def quantization_rmse(x: torch.Tensor, num_bits: int = 8) -> float:
    """Root-mean-square error of :func:`quantize_max_calibrated` on ``x``.

    Args:
        x: non-empty, non-negative ``Tensor`` of any shape, floating dtype.
        num_bits: bit width (int in [2, 16]; default 8).

    Returns:
        ``float``: ``sqrt(mean((dequantised - x)^2))``, in the units of ``x`` (computed in float64).
    """
    xq, _ = quantize_max_calibrated(x, num_bits)
    return float(((xq - x).double() ** 2).mean().sqrt())


@torch.no_grad()
def activation_inputs(model: nn.Module, x: torch.Tensor, kinds: tuple = (nn.ReLU, nn.ReLU6)) -> dict[str, torch.Tensor]:
    """What each activation module of ``model`` receives on input ``x`` (eval mode): ``name -> Tensor``.

    Captured with forward *pre*-hooks and cloned, so in-place activations (``ReLU(inplace=True)``) do
    not overwrite the record. Lesson 03 feeds these real pre-activations to ReLU and ReLU6.

    Args:
        model: an ``nn.Module`` with at least one submodule of ``kinds``; run once in eval mode (its
            training flag is restored afterwards).
        x: the model's input, a floating-dtype ``Tensor`` (e.g. ``Tensor[N, C, H, W]``).
        kinds: an ``nn.Module`` class or a non-empty tuple of them (default ``(nn.ReLU, nn.ReLU6)``).

    Returns:
        ``dict[str, Tensor]``: qualified module name -> a detached copy of the first input it received.
    """
    V.module("model", model)
    _check(x)
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not all(isinstance(k, type) and issubclass(k, nn.Module) for k in kinds):
        raise TypeError(f"kinds={V.show(kinds)} must be an nn.Module class or a tuple of them")
    if not kinds:
        raise ValueError("kinds=() must name at least one nn.Module class")
    mods = {n: m for n, m in model.named_modules() if isinstance(m, kinds)}
    if not mods:
        raise ValueError(f"model={type(model).__name__} has no activation module of "
                         f"kinds={tuple(k.__name__ for k in kinds)}")
    out: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, n=n: out.__setitem__(n, args[0].detach().clone()))
             for n, m in mods.items()]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out
