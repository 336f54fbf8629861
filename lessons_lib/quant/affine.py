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

from .. import validate as V


# ----------------------------------------------------------------------------------- validation
def check_bits(num_bits: object, name: str = "num_bits") -> int:
    """``num_bits`` as an int in 1..16 (``TypeError`` for a non-int, ``ValueError`` outside).

    Args:
        num_bits: the bit width to check: an int (bools excluded, NumPy integers accepted) in ``[1, 16]``.
        name: the parameter name the error messages use, a non-empty string.

    Returns:
        ``num_bits`` as a Python int in ``[1, 16]``.
    """
    V.string("name", name, non_empty=True)
    return V.integer(name, num_bits, 1, 16)


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` if it is a non-empty floating-point tensor of finite values.

    Args:
        x: ``Tensor[...]`` (any shape, at least one element) of a floating dtype. A non-tensor or a non-floating
            dtype raises ``TypeError``; an empty tensor or a NaN / inf ``ValueError``.
        name: the parameter name the error messages use, a non-empty string.

    Returns:
        ``x`` itself (not copied, not detached).
    """
    V.string("name", name, non_empty=True)
    V.tensor(name, x, dtype="floating", non_empty=True)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        v = x[bad].flatten()[0].item()
        raise ValueError(f"{name}={V.show(x)} contains {int(bad.sum())} non-finite value(s) (e.g. {v}); "
                         "NaN/inf cannot be quantised")
    return x


def _as_values(value, name: str, what: str, dtype: torch.dtype) -> torch.Tensor:
    """A number, a tensor, a NumPy array or a list / tuple of numbers as a ``dtype`` tensor."""
    import numpy as np

    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name}={V.show(value)} has dtype={value.dtype}; it must hold {what}")
        return value.detach().to(dtype)
    if isinstance(value, (numbers.Real, np.ndarray, list, tuple)) and not isinstance(value, bool):
        arr = V.array(name, value) if not isinstance(value, numbers.Real) else np.asarray(float(value))
        return torch.as_tensor(arr, dtype=dtype)
    raise TypeError(f"{name}={V.show(value)} must be {what} (a number, or a tensor / list of numbers)")


def _check_scale(scale, name: str = "scale") -> torch.Tensor:
    """``scale`` (a number or per-channel values) as a float64 tensor, every value finite and > 0."""
    s = _as_values(scale, name, "finite numbers > 0", torch.float64)
    if s.numel() == 0:
        raise ValueError(f"{name}={V.show(scale)} is empty; need at least one finite number > 0")
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        bad = s[~(torch.isfinite(s) & (s > 0))].flatten()[0].item()
        raise ValueError(f"{name}={bad!r} must be a finite number > 0")
    return s


def _check_zero_point(zero_point, name: str = "zero_point", lo: int = -(2**31), hi: int = 2**31 - 1) -> torch.Tensor:
    """``zero_point`` (an int, or integer values in a tensor / list) as an int64 tensor, each in ``[lo, hi]``."""
    if isinstance(zero_point, numbers.Real) and not isinstance(zero_point, numbers.Integral) \
            and not isinstance(zero_point, bool):
        raise TypeError(f"{name}={V.show(zero_point)} must be an int (or integer values) in [{lo}, {hi}]")
    if isinstance(zero_point, numbers.Integral):
        return torch.tensor(V.integer(name, zero_point, lo, hi), dtype=torch.int64)
    z = _as_values(zero_point, name, f"integers in [{lo}, {hi}]", torch.float64)
    if not bool(torch.isfinite(z).all()) or not torch.equal(z, z.round()):
        raise ValueError(f"{name}={V.show(zero_point)} must hold integers in [{lo}, {hi}]")
    if z.numel() and (float(z.min()) < lo or float(z.max()) > hi):
        raise ValueError(f"{name}={V.show(zero_point)} must hold integers in [{lo}, {hi}]")
    return z.to(torch.int64)


def qrange(num_bits: int = 8, symmetric: bool = False) -> tuple[int, int]:
    """``(qmin, qmax)``: ``(0, 2^b - 1)`` asymmetric, ``(-(2^(b-1) - 1), 2^(b-1) - 1)`` symmetric.

    Symmetric 1-bit has the single level 0, so it needs ``num_bits >= 2``.

    Args:
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: ``False``: the unsigned (UINT) range; ``True``: the narrow signed (INT) range.

    Returns:
        ``(qmin, qmax)``: two Python ints.
    """
    b = check_bits(num_bits)
    if V.boolean("symmetric", symmetric):
        if b < 2:
            raise ValueError(f"num_bits={b} with symmetric=True leaves only the level 0; need num_bits >= 2")
        return -(2 ** (b - 1) - 1), 2 ** (b - 1) - 1
    return 0, 2**b - 1


# ------------------------------------------------------------------------------------ qparams
def qparams(xmin: float, xmax: float, num_bits: int = 8, symmetric: bool = False) -> tuple[float, int]:
    """``(S, Z)`` mapping the float range ``[xmin, xmax]`` (widened to contain 0) onto the integer range.

    ``xmin == xmax == 0`` gives ``S = 1.0`` (any positive scale represents all-zero data exactly).

    Args:
        xmin, xmax: the observed float range: finite numbers (or one-element tensors) with ``xmin <= xmax``.
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: ``False``: asymmetric, ``q`` in ``[0, 2^b - 1]``; ``True``: narrow signed range with ``Z = 0``.

    Returns:
        ``(S, Z)``: the scale, a Python float > 0, and the zero point, a Python int in ``[qmin, qmax]``
        of :func:`qrange` (0 when ``symmetric``).
    """
    for name, v in (("xmin", xmin), ("xmax", xmax)):
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(f"{name}={V.show(v)} must be a finite number (or a one-element tensor)")
            v = v.item()
        V.real(name, v)
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
    """Per-channel ``(S[C], Z[C])`` from each slice's min / max along ``axis`` (weights: axis 0 = out channels).

    Args:
        x: ``Tensor[...]`` float, finite, non-empty, e.g. conv weights ``Tensor[C_out, C_in, kh, kw]``.
        axis: the channel axis, an int in ``[-x.ndim, x.ndim - 1]``.
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: as in :func:`qparams`.

    Returns:
        ``(scales, zero_points)``: ``Tensor[C]`` float64 (> 0) and ``Tensor[C]`` int64, ``C = x.shape[axis]``;
        entry ``c`` is :func:`qparams` of slice ``c``'s min and max.
    """
    check_finite(x)
    axis = _check_axis(x, axis)
    flat = x.detach().movedim(axis, 0).reshape(x.shape[axis], -1)
    pairs = [qparams(a.item(), b.item(), num_bits, symmetric) for a, b in zip(flat.min(1).values, flat.max(1).values)]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.float64),
            torch.tensor([p[1] for p in pairs], dtype=torch.int64))


def pow2_scale(scale: float) -> tuple[float, int]:
    """Round a scale *up* to a power of two: ``(2^-fl, fl)`` with fractional length ``fl`` (document 003).

    Rounding up keeps the whole range representable; integer hardware then rescales with a shift.

    Args:
        scale: one finite number > 0 (or a one-element tensor / list).

    Returns:
        ``(2^-fl, fl)``: the power-of-two scale, a Python float ``>= scale``, and the fractional length
        ``fl = -ceil(log2(scale))``, a Python int (negative for scales above 1).
    """
    s = _check_scale(scale)
    if s.numel() != 1:
        raise ValueError(f"scale={V.show(scale)} must be one number > 0")
    s = s.item()
    fl = -math.ceil(math.log2(s))
    return 2.0 ** (-fl), fl


def _check_axis(x: torch.Tensor, axis: int) -> int:
    rule = f"an int in [{-x.ndim}, {x.ndim - 1}] for a {x.ndim}-d tensor"
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis={V.show(axis)} must be {rule}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis!r} must be {rule}")
    return int(axis) % x.ndim


def _single(name: str, checked: torch.Tensor, given) -> torch.Tensor:
    if checked.numel() != 1:
        raise ValueError(f"{name}={V.show(given)} must be one value (per tensor; use the per-channel functions)")
    return checked


def _check_count(x: torch.Tensor, axis: int, *, s: torch.Tensor, z: torch.Tensor, x_name: str = "x",
                 s_name: str = "scales", z_name: str = "zero_points") -> None:
    """Per-channel parameters need one entry per slice of ``x`` along ``axis``."""
    for name, v in ((s_name, s), (z_name, z)):
        if v.numel() != x.shape[axis]:
            raise ValueError(f"{name}={V.show(v)} has {v.numel()} entries; {x_name}.shape[{axis}]={x.shape[axis]} "
                             "needs one per channel")


def _broadcast(v: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[axis] = -1
    return v.reshape(shape)


# ------------------------------------------------------------------------- quantize / dequantize
def quantize(x: torch.Tensor, scale: float, zero_point: int, num_bits: int = 8, symmetric: bool = False) -> torch.Tensor:
    """``Tensor[...] float -> Tensor[...] int32``: ``clamp(round(x / S) + Z, qmin, qmax)`` (ties to even).

    Args:
        x: ``Tensor[...]`` (any shape) float, finite, non-empty; scaled in float32 as ``x * (1 / S)``.
        scale: ``S``, one finite number > 0 (a number or a one-element tensor / list).
        zero_point: ``Z``, one int (or one integer-valued element) in ``[qmin, qmax]``; 0 when ``symmetric``.
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: use the narrow signed range of :func:`qrange` instead of the unsigned one.

    Returns:
        ``Tensor[...]`` int32 of ``x``'s shape, values in ``[qmin, qmax]``.
    """
    check_finite(x)
    s = _check_scale(scale)
    qmin, qmax = qrange(num_bits, symmetric)
    _single("scale", s, scale)
    _single("zero_point", _check_zero_point(zero_point, "zero_point", qmin, qmax), zero_point)
    if symmetric and int(zero_point) != 0:
        raise ValueError(f"zero_point={zero_point} must be 0 when symmetric=True")
    inv = 1.0 / s.to(torch.float32)  # torch multiplies by the float32 reciprocal (quantize_val)
    q = torch.round(x.to(torch.float32) * inv) + int(zero_point)
    return q.clamp(qmin, qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``Tensor[...] int -> Tensor[...] float32``: ``(q - Z) * S``.

    Args:
        q: ``Tensor[...]`` of integer codes (any shape, any real dtype; not bool / complex).
        scale: ``S``, one finite number > 0.
        zero_point: ``Z``, one int (or one integer-valued element) in the int32 range.

    Returns:
        ``Tensor[...]`` float32 of ``q``'s shape.
    """
    V.tensor("q", q, dtype="number")
    s = _single("scale", _check_scale(scale), scale).to(torch.float32)
    _single("zero_point", _check_zero_point(zero_point), zero_point)
    return (q.to(torch.float32) - float(zero_point)) * s


def quantize_per_channel(x: torch.Tensor, scales, zero_points, axis: int = 0, num_bits: int = 8,
                         symmetric: bool = False) -> torch.Tensor:
    """Per-channel :func:`quantize`: ``scales[c]``, ``zero_points[c]`` apply to slice ``c`` along ``axis``.

    Args:
        x: ``Tensor[...]`` float, finite, non-empty.
        scales: ``C = x.shape[axis]`` finite values > 0 (tensor, array or list), e.g. from :func:`qparams_per_channel`.
        zero_points: ``C`` integer values in ``[qmin, qmax]`` (all 0 when ``symmetric``).
        axis: the channel axis, an int in ``[-x.ndim, x.ndim - 1]``.
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: use the narrow signed range of :func:`qrange`.

    Returns:
        ``Tensor[...]`` int32 of ``x``'s shape, values in ``[qmin, qmax]``.
    """
    check_finite(x)
    axis = _check_axis(x, axis)
    qmin, qmax = qrange(num_bits, symmetric)
    s = _check_scale(scales, "scales").flatten()
    z = _check_zero_point(zero_points, "zero_points", qmin, qmax).flatten()
    _check_count(x, axis, s=s, z=z)
    if symmetric and bool((z != 0).any()):
        raise ValueError(f"zero_points={z.tolist()} must all be 0 when symmetric=True")
    inv = _broadcast(1.0 / s.to(torch.float32), x, axis)
    q = torch.round(x.to(torch.float32) * inv) + _broadcast(z, x, axis)
    return q.clamp(qmin, qmax).to(torch.int32)


def dequantize_per_channel(q: torch.Tensor, scales, zero_points, axis: int = 0) -> torch.Tensor:
    """Per-channel :func:`dequantize`.

    Args:
        q: ``Tensor[...]`` (at least 1-d) of integer codes, any real dtype (not bool / complex).
        scales: ``C = q.shape[axis]`` finite values > 0 (tensor, array or list).
        zero_points: ``C`` integer values in the int32 range.
        axis: the channel axis, an int in ``[-q.ndim, q.ndim - 1]``.

    Returns:
        ``Tensor[...]`` float32 of ``q``'s shape: ``(q - zero_points[c]) * scales[c]`` on slice ``c`` along ``axis``.
    """
    V.tensor("q", q, dtype="number")
    axis = _check_axis(q, axis)
    s = _check_scale(scales, "scales").flatten()
    _check_count(q, axis, s=s, z=_check_zero_point(zero_points, "zero_points").flatten(), x_name="q")
    s = _broadcast(s.to(torch.float32), q, axis)
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

    Args:
        x: ``Tensor[...]`` float, finite, non-empty; may require grad.
        scale: finite value(s) > 0: one for ``axis=None``, else ``x.shape[axis]`` of them (tensor, array or list).
        zero_point: integer value(s) in ``[qmin, qmax]``, as many as ``scale`` (all 0 when ``symmetric``).
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: use the narrow signed range of :func:`qrange`.
        axis: ``None`` (per tensor) or the channel axis, an int in ``[-x.ndim, x.ndim - 1]``.

    Returns:
        Float ``Tensor[...]`` of ``x``'s shape on ``x``'s device: ``(clamp(round(x/S) + Z, qmin, qmax) - Z) * S``.
        Only ``x`` receives a gradient (``scale`` and ``zero_point`` are constants).
    """
    check_finite(x)
    qmin, qmax = qrange(num_bits, symmetric)
    V.integer("axis", axis, none_ok=True)
    s_checked = _check_scale(scale)
    z_checked = _check_zero_point(zero_point, "zero_point", qmin, qmax)
    if axis is None:
        for name, v, given in (("scale", s_checked, scale), ("zero_point", z_checked, zero_point)):
            if v.numel() != 1:
                raise ValueError(f"{name}={V.show(given)} must be one value when axis=None (per tensor)")
        s = s_checked.to(torch.float32).reshape(())
        z = torch.as_tensor(zero_point, dtype=torch.float32).reshape(())
    else:
        axis = _check_axis(x, axis)
        _check_count(x, axis, s=s_checked.flatten(), z=z_checked.flatten(), s_name="scale", z_name="zero_point")
        s = s_checked.flatten().to(torch.float32)
        z = torch.as_tensor(zero_point, dtype=torch.float32).flatten()
        s, z = _broadcast(s, x, axis), _broadcast(z, x, axis)
    if symmetric and bool((z != 0).any()):
        raise ValueError(f"zero_point={z.flatten().tolist()} must be 0 when symmetric=True")
    s, z = s.to(x.device), z.to(x.device)
    return _FakeQuant.apply(x, 1.0 / s, z, s, qmin, qmax)


def quant_error(x: torch.Tensor, num_bits: int = 8, symmetric: bool = False, axis: int | None = None) -> float:
    """Mean squared error of min/max quantisation of ``x`` (per tensor, or per channel along ``axis``).

    Args:
        x: ``Tensor[...]`` float, finite, non-empty.
        num_bits: integer bits, 1..16 (2..16 when ``symmetric``).
        symmetric: use the narrow signed range of :func:`qrange`.
        axis: ``None``: one ``(S, Z)`` from the global min / max; an int in ``[-x.ndim, x.ndim - 1]``: one per
            slice along that axis (:func:`qparams_per_channel`).

    Returns:
        ``mean((dequantize(quantize(x)) - x)^2)``, a Python float >= 0.
    """
    check_finite(x)
    qrange(num_bits, symmetric)
    if axis is not None:
        _check_axis(x, axis)
    x = x.detach().float()
    if axis is None:
        s, z = qparams(x.min().item(), x.max().item(), num_bits, symmetric)
        xh = dequantize(quantize(x, s, z, num_bits, symmetric), s, z)
    else:
        s, z = qparams_per_channel(x, axis, num_bits, symmetric)
        xh = dequantize_per_channel(quantize_per_channel(x, s, z, axis, num_bits, symmetric), s, z, axis)
    return float(((xh - x) ** 2).mean())
