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

:data:`ACTIVATIONS` is the registry lesson 03 plots and times: name -> :class:`Activation`
(function, analytic derivative, torch reference, output range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from torch import nn

from .profile import measure_latency

__all__ = [
    "relu", "relu6", "leaky_relu", "prelu", "selu", "sigmoid", "hard_sigmoid", "swish", "hard_swish",
    "mish", "relu6_as_printed_in_doc001", "Activation", "ACTIVATIONS", "get", "derivative",
    "max_error_on_grid", "time_per_element", "quantize_max_calibrated", "quantization_rmse", "activation_inputs",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}={type(x).__name__} must be a torch.Tensor")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype={x.dtype}; activations need a floating dtype (e.g. torch.float32)")
    return x


# ------------------------------------------------------------------------------------- functions
def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x)."""
    return _check(x).clamp_min(0)


def relu6(x: torch.Tensor) -> torch.Tensor:
    """min(max(0, x), 6): ReLU with an upper bound (MobileNet v1/v2)."""
    return _check(x).clamp(0.0, 6.0)


def relu6_as_printed_in_doc001(x: torch.Tensor) -> torch.Tensor:
    """Document 001's formula ``max(max(0, x), 6)`` taken literally -- it is >= 6 everywhere (a slip)."""
    return torch.maximum(_check(x).clamp_min(0), torch.tensor(6.0, dtype=x.dtype, device=x.device))


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
        raise TypeError(f"negative_slope={negative_slope!r} must be a number")
    x = _check(x)
    return torch.where(x > 0, x, x * negative_slope)


def prelu(x: torch.Tensor, weight: torch.Tensor | float = 0.25) -> torch.Tensor:
    """Leaky ReLU whose slope ``weight`` is learned: a scalar or one per channel (dim 1 of ``x``)."""
    x = _check(x)
    w = torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    if w.ndim > 1 or (w.ndim == 1 and w.numel() not in (1, x.shape[1] if x.ndim > 1 else 1)):
        raise ValueError(f"weight has shape {tuple(w.shape)}; need a scalar or one slope per channel "
                         f"(x.shape[1]={x.shape[1] if x.ndim > 1 else 1})")
    if w.ndim == 1 and w.numel() > 1:
        w = w.view(1, -1, *([1] * (x.ndim - 2)))
    return torch.where(x > 0, x, x * w)


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled ELU (self-normalising): ``scale * (x if x > 0 else alpha * (e^x - 1))``."""
    x = _check(x)
    return SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x.clamp_max(0)))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function 1 / (1 + e^-x)."""
    return torch.sigmoid(_check(x))


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (0 below -3, 1 above 3) -- MobileNet v3's SE gate."""
    return relu6(_check(x) + 3.0) / 6.0


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x) (= SiLU, swish with beta = 1)."""
    x = _check(x)
    return x * torch.sigmoid(x)


def hard_swish(x: torch.Tensor) -> torch.Tensor:
    """x * relu6(x + 3) / 6 = x * hard_sigmoid(x): approximates *swish* (not sigmoid) with no exp."""
    x = _check(x)
    return x * (relu6(x + 3.0) / 6.0)


def mish(x: torch.Tensor) -> torch.Tensor:
    """x * tanh(softplus(x))."""
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
    """One registry entry: ``fn`` (ours), ``grad`` (analytic derivative), ``ref`` (torch), output range."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    ref: Callable[[torch.Tensor], torch.Tensor]
    lo: float
    hi: float
    formula: str

    @property
    def bounded_above(self) -> bool:
        return math.isfinite(self.hi)


_INF = math.inf
#: name -> :class:`Activation`; PReLU uses its default initial slope 0.25 (as ``nn.PReLU()``).
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", relu, _d_relu, F.relu, 0.0, _INF, r"\max(0, x)"),
    Activation("relu6", relu6, _d_relu6, F.relu6, 0.0, 6.0, r"\min(\max(0, x), 6)"),
    Activation("leaky_relu", leaky_relu, _d_leaky, F.leaky_relu, -_INF, _INF, r"x \text{ if } x>0 \text{ else } 0.01x"),
    Activation("prelu", prelu, _d_prelu, lambda x: F.prelu(x, torch.tensor([0.25], dtype=x.dtype)), -_INF, _INF,
               r"x \text{ if } x>0 \text{ else } a x"),
    Activation("selu", selu, _d_selu, F.selu, -SELU_SCALE * SELU_ALPHA, _INF, r"\lambda(x \text{ if } x>0 \text{ else } \alpha(e^x-1))"),
    Activation("sigmoid", sigmoid, _d_sigmoid, torch.sigmoid, 0.0, 1.0, r"1/(1+e^{-x})"),
    Activation("hard_sigmoid", hard_sigmoid, _d_hard_sigmoid, F.hardsigmoid, 0.0, 1.0, r"\mathrm{ReLU6}(x+3)/6"),
    Activation("swish", swish, _d_swish, F.silu, -0.2784645427610738, _INF, r"x\,\sigma(x)"),
    Activation("hard_swish", hard_swish, _d_hard_swish, F.hardswish, -0.375, _INF, r"x\,\mathrm{ReLU6}(x+3)/6"),
    Activation("mish", mish, _d_mish, F.mish, -0.3088434130172504, _INF, r"x \tanh(\ln(1+e^x))"),
)}


def get(name: str) -> Activation:
    """The registry entry ``name`` (see :data:`ACTIVATIONS`)."""
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str")
    if name not in ACTIVATIONS:
        raise ValueError(f"name={name!r} is not an activation; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def derivative(name: str, x: torch.Tensor) -> torch.Tensor:
    """The analytic derivative f'(x) of activation ``name`` (at kinks: the right-open convention of torch)."""
    return get(name).grad(_check(x))


# --------------------------------------------------------------------------------- measurements
def max_error_on_grid(f: Callable, g: Callable, lo: float = -8.0, hi: float = 8.0,
                      n: int = 160_001) -> tuple[float, float]:
    """``(max |f(x) - g(x)|, the x where it occurs)`` over ``n`` evenly spaced points of [lo, hi] (float64)."""
    if not (callable(f) and callable(g)):
        raise TypeError(f"f={f!r} and g={g!r} must be callables Tensor -> Tensor")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo < hi):
        raise ValueError(f"lo={lo!r}, hi={hi!r} must be numbers with lo < hi")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n={n!r} must be an int >= 2")
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    err = (f(x) - g(x)).abs()
    i = int(err.argmax())
    return float(err[i]), float(x[i])


def time_per_element(names: list[str] | None = None, *, numel: int = 2**22, repeats: int = 15,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Median nanoseconds per element of each activation (ours) on a ``numel`` float32 tensor.

    All activations run on the same random input, interleaved in one process, so ratios are fair.
    """
    names = list(ACTIVATIONS) if names is None else names
    for n in names:
        get(n)
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 1:
        raise ValueError(f"numel={numel!r} must be a positive int")
    x = torch.randn(numel, device=device) * 4
    return {n: measure_latency(get(n).fn, x, warmup=2, repeats=repeats).median_ms * 1e6 / numel for n in names}


def quantize_max_calibrated(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, float]:
    """Unsigned uniform quantisation of a non-negative tensor with the scale set by its maximum.

    ``S = max(x) / (2^bits - 1)``, ``q = clamp(round(x / S), 0, 2^bits - 1)``; returns
    ``(q * S, S)`` (the dequantised tensor and the scale). Equals
    ``torch.fake_quantize_per_tensor_affine(x, S, 0, 0, 2^bits - 1)``.
    """
    x = _check(x)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits={bits!r} must be an int in [2, 16]")
    if x.numel() == 0 or float(x.min()) < 0:
        raise ValueError("x must be non-empty and non-negative (quantise activations after ReLU / ReLU6)")
    qmax = 2**bits - 1
    scale = float(x.max()) / qmax
    if scale == 0:
        return x.clone(), 0.0
    return torch.clamp(torch.round(x / scale), 0, qmax) * scale, scale


def quantization_rmse(x: torch.Tensor, bits: int = 8) -> float:
    """Root-mean-square error of :func:`quantize_max_calibrated` on ``x``."""
    xq, _ = quantize_max_calibrated(x, bits)
    return float(((xq - x).double() ** 2).mean().sqrt())


@torch.no_grad()
def activation_inputs(model: nn.Module, x: torch.Tensor, kinds: tuple = (nn.ReLU, nn.ReLU6)) -> dict[str, torch.Tensor]:
    """What each activation module of ``model`` receives on input ``x`` (eval mode): ``name -> Tensor``.

    Captured with forward *pre*-hooks and cloned, so in-place activations (``ReLU(inplace=True)``) do
    not overwrite the record. Lesson 03 feeds these real pre-activations to ReLU and ReLU6.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be an nn.Module")
    _check(x)
    mods = {n: m for n, m in model.named_modules() if isinstance(m, kinds)}
    if not mods:
        raise ValueError(f"model has no activation module of kinds={tuple(k.__name__ for k in kinds)}")
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
