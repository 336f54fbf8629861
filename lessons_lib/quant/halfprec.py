"""Half precision in practice: what a cast to fp16 / bf16 flushes to zero, loss scaling, and fp16
inference simulated in float32 where the hardware has no fast fp16 kernels.

Document 003 says bfloat16 keeps float32's dynamic range, so small gradients do not underflow, while
fp16 (5 exponent bits) loses them; mixed-precision training (Micikevicius et al. 2018) multiplies the
loss by a scale ``s`` before the backward pass so that gradients ``s * g`` land in fp16's range, and
divides by ``s`` in float32 afterwards::

    flushed(g, dtype, s) = #{ g != 0 and fl_dtype(s * g) == 0 } / #{ g != 0 }
    overflow(g, dtype, s) = #{ |fl_dtype(s * g)| == inf } / #{ g != 0 }

fp16: smallest subnormal 2^-24 ~ 5.96e-8, smallest normal 2^-14 ~ 6.10e-5, max 65504.
bf16: smallest subnormal 2^-133, smallest normal 2^-126 (the float32 limits), max ~3.39e38.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .. import validate as V
from .affine import check_finite

HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _dtype(fmt: object) -> torch.dtype:
    V.choice("fmt", fmt, sorted(HALF_DTYPES))
    return HALF_DTYPES[fmt]  # type: ignore[index]


def cast_stats(x: torch.Tensor, fmt: str = "fp16", scale: float = 1.0) -> dict[str, float]:
    """What casting ``scale * x`` (float32) to ``fmt`` does to the non-zero entries of ``x``.

    Args:
        x: ``Tensor[...]`` (e.g. gradients) float, finite, with at least one non-zero entry; converted to float32.
        fmt: ``"fp16"`` or ``"bf16"``.
        scale: the loss scale ``s``, a finite number > 0.

    Returns:
        ``dict`` of Python floats, fractions of the non-zero entries: ``"flushed"`` (became 0), ``"subnormal"``
        (non-zero but below the format's smallest normal: fewer significant bits), ``"overflow"`` (became +-inf),
        and ``"median_rel_err"`` of the values that survived (after dividing by ``scale`` again in float32;
        NaN when none survived).
    """
    x = check_finite(x).detach().float().flatten()
    V.real("scale", scale, 0, low_open=True)
    dt = _dtype(fmt)
    nz = x[x != 0]
    if nz.numel() == 0:
        raise ValueError("x has no non-zero entries: nothing can underflow")
    y = (nz * float(scale)).to(dt)
    yf = y.float()
    tiny = torch.finfo(dt).tiny
    flushed = yf == 0
    inf = torch.isinf(yf)
    sub = (~flushed) & (yf.abs() < tiny)
    ok = ~(flushed | inf)
    rel = ((yf[ok] / float(scale)) - nz[ok]).abs() / nz[ok].abs()
    n = nz.numel()
    return {"flushed": float(flushed.sum()) / n, "subnormal": float(sub.sum()) / n,
            "overflow": float(inf.sum()) / n,
            "median_rel_err": float(rel.median()) if rel.numel() else float("nan")}


def truncation_bias(x: torch.Tensor) -> dict[str, float]:
    """Mean *signed* relative error ``mean((fl(x) - x) / |x|)`` of bf16 by truncation and by round-to-nearest-even.

    Truncation rounds toward zero, so its error has the opposite sign of ``x`` and its mean relative
    error is about ``-ulp/2 / |x|`` on average (a bias); round-to-nearest's errors cancel (mean ~ 0).

    Args:
        x: ``Tensor[...]`` float, finite, with at least one non-zero entry (zeros are left out); converted to float32.

    Returns:
        ``dict`` of Python floats: ``"truncate"``, ``"round"`` (signed means, over the non-zero entries, after
        multiplying by ``sign(x)`` so that "toward zero" is negative for either sign) and ``"truncate_abs"``,
        ``"round_abs"`` (the means of the absolute relative errors).
    """
    from .floats import bf16_round, bf16_truncate

    x = check_finite(x).detach().float().flatten()
    x = x[x != 0]
    if x.numel() == 0:
        raise ValueError("x has no non-zero entries")
    out = {}
    for name, fn in (("truncate", bf16_truncate), ("round", bf16_round)):
        rel = (fn(x).float() - x) / x  # = signed error relative to |x|, toward zero -> negative
        out[name] = float(rel.double().mean())
        out[f"{name}_abs"] = float(rel.abs().double().mean())
    return out


def _round_to(t: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
    return t.to(dt).to(t.dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def simulate_half(model: nn.Module, fmt: str = "fp16") -> nn.Module:
    """A deep copy of ``model`` whose parameters, buffers, input and every leaf module's output are
    rounded to ``fmt`` (and kept as float32): fp16 *storage* between layers with float32 arithmetic
    inside each layer (what fp16 kernels with fp32 accumulation do).

    Use it where real fp16 kernels are missing or slow (fp16 convolution on most x86 CPUs); hooks
    stay on the copy (``model`` is unchanged).

    Args:
        model: any ``nn.Module`` (float32).
        fmt: ``"fp16"`` or ``"bf16"``.

    Returns:
        The copy, an ``nn.Module`` in eval mode: floating parameters and buffers already rounded; the positional
        tensor inputs and the tensor outputs of leaf modules rounded by forward hooks.
    """
    V.module("model", model)
    dt = _dtype(fmt)
    sim = copy.deepcopy(model).eval()
    with torch.no_grad():
        for t in list(sim.parameters()) + list(sim.buffers()):
            if t.is_floating_point():
                t.copy_(_round_to(t, dt))
    sim.register_forward_pre_hook(lambda m, args: tuple(_round_to(a, dt) for a in args))
    for m in sim.modules():
        if not list(m.children()):
            m.register_forward_hook(lambda m, args, out: _round_to(out, dt))
    return sim
