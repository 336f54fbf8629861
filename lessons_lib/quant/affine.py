"""Affine (scale / zero-point) integer quantisation: per tensor, per channel, and fake-quant for QAT.

Document 001 (section 2.2.1) writes the mapping as ``Q = round(x / scale + zero_point)`` and
``x = (Q - zero_point) * scale``; document 003 ("INT quantisation", "UINT quantisation") adds the
power-of-two scale ("fractional length") and per-channel ranges.

Conventions (names from the glossary: ``S`` scale, ``Z`` zero point, ``b`` bits)::

    asymmetric (UINT):  q in [0, 2^b - 1],            S = (max' - min') / (2^b - 1),  Z = round(-min' / S)
    symmetric  (INT):   q in [-(2^(b-1)-1), 2^(b-1)-1], S = max(|min'|, |max'|) / (2^(b-1) - 1),  Z = 0
    with min' = min(xmin, 0) and max' = max(xmax, 0)   (the range always contains 0, so 0 is exact)

    quantize:    q = clamp(round_half_even(x * (1/S)) + Z, qmin, qmax)      (torch's quantize_val)
    dequantize:  x_hat = (q - Z) * S

The symmetric range is the "narrow" one of TensorRT / ONNX Runtime (scale = absmax/127 for 8 bits);
``torch.ao`` observers use absmax/127.5 over [-128, 127] instead (reference-algorithms.md §11).
"""
from __future__ import annotations

import math
import numbers

import torch

# ----------------------------------------------------------------------------------- validation
def check_bits(num_bits: object, name: str = "num_bits") -> int:
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral):
        raise TypeError(f"{name}={num_bits!r} must be an int in 1..16")
    if not 1 <= int(num_bits) <= 16:
        raise ValueError(f"{name}={num_bits!r} must be in 1..16")
    return int(num_bits)


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); need at least one value")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        v = x[bad].flatten()[0].item()
        raise ValueError(f"{name} contains {int(bad.sum())} non-finite value(s) (e.g. {v}); NaN/inf cannot be quantised")
    return x


def _check_scale(scale, name: str = "scale") -> torch.Tensor:
    s = torch.as_tensor(scale, dtype=torch.float64)
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        bad = s[~(torch.isfinite(s) & (s > 0))].flatten()[0].item()
        raise ValueError(f"{name}={bad!r} must be a finite number > 0")
    return s


def qrange(num_bits: int = 8, symmetric: bool = False) -> tuple[int, int]:
    """``(qmin, qmax)``: ``(0, 2^b - 1)`` asymmetric, ``(-(2^(b-1) - 1), 2^(b-1) - 1)`` symmetric.

    Symmetric 1-bit has the single level 0, so it needs ``num_bits >= 2``.
    """
    b = check_bits(num_bits)
    if symmetric:
        if b < 2:
            raise ValueError(f"num_bits={b} with symmetric=True leaves only the level 0; need num_bits >= 2")
        return -(2 ** (b - 1) - 1), 2 ** (b - 1) - 1
    return 0, 2**b - 1


# ------------------------------------------------------------------------------------ qparams
def qparams(xmin: float, xmax: float, num_bits: int = 8, symmetric: bool = False) -> tuple[float, int]:
    """``(S, Z)`` mapping the float range ``[xmin, xmax]`` (widened to contain 0) onto the integer range.

    ``xmin == xmax == 0`` gives ``S = 1.0`` (any positive scale represents all-zero data exactly).
    """
    for name, v in (("xmin", xmin), ("xmax", xmax)):
        if isinstance(v, torch.Tensor):
            v = v.item()
        if not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise ValueError(f"{name}={v!r} must be a finite number")
    xmin, xmax = float(xmin), float(xmax)
    if xmin > xmax:
        raise ValueError(f"xmin={xmin} must be <= xmax={xmax}")
    qmin, qmax = qrange(num_bits, symmetric)
    lo, hi = min(xmin, 0.0), max(xmax, 0.0)
    if symmetric:
        amax = max(-lo, hi)
        return (amax / qmax if amax > 0 else 1.0), 0
    if hi - lo == 0:
        return 1.0, 0
    scale = (hi - lo) / (qmax - qmin)
    zero_point = int(min(max(qmin - round(lo / scale), qmin), qmax))
    return scale, zero_point


def qparams_per_channel(x: torch.Tensor, axis: int = 0, num_bits: int = 8,
                        symmetric: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(S[C], Z[C])`` from each slice's min / max along ``axis`` (weights: axis 0 = out channels)."""
    check_finite(x)
    axis = _check_axis(x, axis)
    flat = x.detach().movedim(axis, 0).reshape(x.shape[axis], -1)
    pairs = [qparams(a.item(), b.item(), num_bits, symmetric) for a, b in zip(flat.min(1).values, flat.max(1).values)]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.float64),
            torch.tensor([p[1] for p in pairs], dtype=torch.int64))


def pow2_scale(scale: float) -> tuple[float, int]:
    """Round a scale *up* to a power of two: ``(2^-fl, fl)`` with fractional length ``fl`` (document 003).

    Rounding up keeps the whole range representable; integer hardware then rescales with a shift.
    """
    s = _check_scale(scale).item()
    fl = -math.ceil(math.log2(s))
    return 2.0 ** (-fl), fl


def _check_axis(x: torch.Tensor, axis: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis!r} must be an int in [{-x.ndim}, {x.ndim - 1}] for a {x.ndim}-d tensor")
    return int(axis) % x.ndim


def _broadcast(v: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[axis] = -1
    return v.reshape(shape)


# ------------------------------------------------------------------------- quantize / dequantize
def quantize(x: torch.Tensor, scale: float, zero_point: int, num_bits: int = 8, symmetric: bool = False) -> torch.Tensor:
    """``Tensor[...] float -> Tensor[...] int32``: ``clamp(round(x / S) + Z, qmin, qmax)`` (ties to even)."""
    check_finite(x)
    s = _check_scale(scale)
    qmin, qmax = qrange(num_bits, symmetric)
    if symmetric and int(zero_point) != 0:
        raise ValueError(f"zero_point={zero_point} must be 0 when symmetric=True")
    inv = 1.0 / s.to(torch.float32)  # torch multiplies by the float32 reciprocal (quantize_val)
    q = torch.round(x.to(torch.float32) * inv) + int(zero_point)
    return q.clamp(qmin, qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``Tensor[...] int -> Tensor[...] float32``: ``(q - Z) * S``."""
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"q must be a torch.Tensor of integers, got {type(q).__name__}")
    s = _check_scale(scale).to(torch.float32)
    return (q.to(torch.float32) - float(zero_point)) * s


def quantize_per_channel(x: torch.Tensor, scales, zero_points, axis: int = 0, num_bits: int = 8,
                         symmetric: bool = False) -> torch.Tensor:
    """Per-channel :func:`quantize`: ``scales[c]``, ``zero_points[c]`` apply to slice ``c`` along ``axis``."""
    check_finite(x)
    axis = _check_axis(x, axis)
    s = _check_scale(scales, "scales").flatten()
    z = torch.as_tensor(zero_points, dtype=torch.int64).flatten()
    if s.numel() != x.shape[axis] or z.numel() != x.shape[axis]:
        raise ValueError(f"scales ({s.numel()}) and zero_points ({z.numel()}) must have x.shape[{axis}]={x.shape[axis]} entries")
    qmin, qmax = qrange(num_bits, symmetric)
    if symmetric and bool((z != 0).any()):
        raise ValueError(f"zero_points={z.tolist()} must all be 0 when symmetric=True")
    inv = _broadcast(1.0 / s.to(torch.float32), x, axis)
    q = torch.round(x.to(torch.float32) * inv) + _broadcast(z, x, axis)
    return q.clamp(qmin, qmax).to(torch.int32)


def dequantize_per_channel(q: torch.Tensor, scales, zero_points, axis: int = 0) -> torch.Tensor:
    """Per-channel :func:`dequantize`."""
    axis = _check_axis(q, axis)
    s = _broadcast(_check_scale(scales, "scales").flatten().to(torch.float32), q, axis)
    z = _broadcast(torch.as_tensor(zero_points, dtype=torch.float32).flatten(), q, axis)
    return (q.to(torch.float32) - z) * s


# ----------------------------------------------------------------------------------- fake quant
class _FakeQuant(torch.autograd.Function):
    """Forward: dequantize(quantize(x)). Backward: straight-through inside the clamp range, 0 outside."""

    @staticmethod
    def forward(ctx, x, inv, z, s, qmin, qmax):
        q = torch.round(x * inv) + z
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (q.clamp(qmin, qmax) - z) * s

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None, None


def fake_quantize(x: torch.Tensor, scale, zero_point, num_bits: int = 8, symmetric: bool = False,
                  axis: int | None = None) -> torch.Tensor:
    """Quantise-dequantise in float (simulated int), with a straight-through gradient for QAT.

    Matches ``torch.fake_quantize_per_tensor_affine`` (``axis=None``) or
    ``torch.fake_quantize_per_channel_affine`` (``scale``/``zero_point`` of length ``x.shape[axis]``),
    forward and backward: d out / d x = 1 where ``qmin <= round(x/S) + Z <= qmax``, else 0.
    """
    check_finite(x)
    qmin, qmax = qrange(num_bits, symmetric)
    if axis is None:
        s = _check_scale(scale).to(torch.float32).reshape(())
        z = torch.as_tensor(zero_point, dtype=torch.float32).reshape(())
    else:
        axis = _check_axis(x, axis)
        s = _check_scale(scale, "scale").flatten().to(torch.float32)
        z = torch.as_tensor(zero_point, dtype=torch.float32).flatten()
        if s.numel() != x.shape[axis] or z.numel() != x.shape[axis]:
            raise ValueError(f"scale ({s.numel()}) and zero_point ({z.numel()}) need x.shape[{axis}]={x.shape[axis]} entries")
        s, z = _broadcast(s, x, axis), _broadcast(z, x, axis)
    if symmetric and bool((z != 0).any()):
        raise ValueError(f"zero_point={z.flatten().tolist()} must be 0 when symmetric=True")
    s, z = s.to(x.device), z.to(x.device)
    return _FakeQuant.apply(x, 1.0 / s, z, s, qmin, qmax)


def quant_error(x: torch.Tensor, num_bits: int = 8, symmetric: bool = False, axis: int | None = None) -> float:
    """Mean squared error of min/max quantisation of ``x`` (per tensor, or per channel along ``axis``)."""
    check_finite(x)
    x = x.detach().float()
    if axis is None:
        s, z = qparams(x.min().item(), x.max().item(), num_bits, symmetric)
        xh = dequantize(quantize(x, s, z, num_bits, symmetric), s, z)
    else:
        s, z = qparams_per_channel(x, axis, num_bits, symmetric)
        xh = dequantize_per_channel(quantize_per_channel(x, s, z, axis, num_bits, symmetric), s, z, axis)
    return float(((xh - x) ** 2).mean())
