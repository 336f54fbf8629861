"""Integer-only inference of one conv / linear layer (Jacob et al. 2018; gemmlowp / TFLite).

Real arithmetic ``r = S (q - Z)`` for input x, weights w (per output channel c) and output y gives

    q_y = Z_y + M_c * sum_k (q_w - 0)(q_x - Z_x)  +  bias_q,       M_c = S_x S_w[c] / S_y

with int8 operands, an int32 accumulator, ``bias_q = round(bias / (S_x S_w[c]))`` (int32) and the real
multiplier ``M_c`` stored as a fixed-point int32 ``M0`` and a shift: ``M = M0 * 2^(shift - 31)``,
``M0`` in ``[2^30, 2^31)`` (gemmlowp's ``QuantizeMultiplier``). Requantisation is then two integer ops:
``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT``. No float touches the data path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import validate as V
from ..conv import conv2d_out_size
from .affine import _check_scale, check_finite, qparams_per_channel, qrange, quantize_per_channel

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """``(M0, shift)`` with ``real_multiplier ~ M0 * 2^(shift - 31)`` and ``M0`` in ``[2^30, 2^31)``.

    Args:
        real_multiplier: ``M = S_x S_w / S_y``, one finite number > 0 and below ``2^30`` (larger ones raise
            ``ValueError``).

    Returns:
        ``(M0, shift)``: Python ints, ``M0`` in ``[2^30, 2^31)`` and ``shift`` in ``[-31, 30]``; ``(0, 0)`` for
        a multiplier too small for the format (below ``2^-32``), as gemmlowp does.
    """
    m = _check_scale(real_multiplier, "real_multiplier")
    if m.numel() != 1:
        raise ValueError(f"real_multiplier={V.show(real_multiplier)} must be one number > 0")
    m = m.item()
    q, shift = math.frexp(m)  # m = q * 2^shift, q in [0.5, 1)
    q_fixed = round(q * 2**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"real_multiplier={m} is too large for int32 fixed point (needs shift <= 30)")
    return int(q_fixed), int(shift)


def _srdhm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31) with int32 saturation (int64 carrier)."""
    ab = a * b
    nudge = torch.where(ab >= 0, torch.full_like(ab, 1 << 30), torch.full_like(ab, 1 - (1 << 30)))
    out = torch.div(ab + nudge, 2**31, rounding_mode="trunc")
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return torch.where(overflow, torch.full_like(out, INT32_MAX), out)


def _rounding_divide_by_pot(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    mask = (torch.ones_like(x) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).to(x.dtype)
    return (x >> exponent) + (remainder > threshold).to(x.dtype)


def multiply_by_quantized_multiplier(acc: torch.Tensor, M0, shift) -> torch.Tensor:
    """``round(acc * M0 * 2^(shift-31))`` in integer arithmetic (TFLite ``MultiplyByQuantizedMultiplier``).

    Args:
        acc: integer ``Tensor[...]`` of int32 accumulator values (the range is not checked).
        M0: the fixed-point multiplier: an int or an integer tensor broadcastable to ``acc``, values in
            ``[0, 2^31 - 1]`` (``[2^30, 2^31)`` from :func:`quantize_multiplier`).
        shift: the exponent: an int or an integer tensor broadcastable to ``acc``, values in ``[-31, 30]``.

    Returns:
        ``Tensor`` int64 (int32 values) of the broadcast shape: ``acc << max(shift, 0)`` saturated to int32,
        ``SaturatingRoundingDoublingHighMul`` by ``M0``, then ``RoundingDivideByPOT`` by ``2^max(-shift, 0)``
        (to nearest, ties away from zero).
    """
    V.tensor("acc", acc, dtype="integer")
    _check_int_values("M0", M0, 0, INT32_MAX)
    _check_int_values("shift", shift, -31, 30)
    acc = acc.to(torch.int64)
    M0 = torch.as_tensor(M0, dtype=torch.int64)
    shift = torch.as_tensor(shift, dtype=torch.int64)
    left = shift.clamp(min=0)
    right = (-shift).clamp(min=0)
    x = (acc << left).clamp(INT32_MIN, INT32_MAX)
    return _rounding_divide_by_pot(_srdhm(x, M0), right)


def _check_int_values(name: str, v: object, lo: int, hi: int) -> None:
    """An int or an integer tensor with every value in ``[lo, hi]``."""
    if isinstance(v, torch.Tensor):
        V.tensor(name, v, dtype="integer")
        if v.numel() and (int(v.min()) < lo or int(v.max()) > hi):
            raise ValueError(f"{name}={V.show(v)} must hold ints in [{lo}, {hi}]")
    else:
        V.integer(name, v, lo, hi)


@dataclass
class IntegerConv2d:
    """A conv (or linear: 1x1 on ``[N, C, 1, 1]``) layer stored for integer-only inference.

    ``wq`` Tensor[C_out, C_in, k, k] int8 values (symmetric per channel), ``bias_q`` Tensor[C_out] int32,
    ``M0``/``shift`` Tensor[C_out] (the requantisation multipliers); ``relu`` fuses a ReLU by clamping at ``Z_y``.
    """

    wq: torch.Tensor
    w_scale: torch.Tensor
    bias_q: torch.Tensor
    M0: torch.Tensor
    shift: torch.Tensor
    x_scale: float
    x_zp: int
    out_scale: float
    out_zp: int
    out_range: tuple[int, int]
    stride: int = 1
    padding: int = 0
    relu: bool = False

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: torch.Tensor | None, *, x_scale: float, x_zp: int,
                   out_scale: float, out_zp: int, out_symmetric: bool = False, stride: int = 1,
                   padding: int = 0, relu: bool = False) -> "IntegerConv2d":
        """Quantise a float conv's ``weight`` Tensor[C_out, C_in, k, k] / ``bias`` Tensor[C_out] for
        8-bit inputs with ``(x_scale, x_zp)`` and 8-bit outputs with ``(out_scale, out_zp)``.

        Weights: symmetric 8-bit per output channel (codes in ``[-127, 127]``);
        ``bias_q = round(bias / (x_scale * w_scale[c]))`` clamped to int32; ``(M0[c], shift[c])`` from
        :func:`quantize_multiplier` of ``x_scale * w_scale[c] / out_scale``.

        Args:
            weight: ``Tensor[C_out, C_in, k, k]`` float, finite (a square kernel; no groups, no dilation).
            bias: ``None`` (no bias) or ``Tensor[C_out]`` float.
            x_scale, x_zp: input quantisation: a finite scale > 0 and a zero point, an int in ``[-128, 255]``.
            out_scale, out_zp: output quantisation: a finite scale > 0 and a zero point, an int in ``[-128, 255]``.
            out_symmetric: output codes in ``[-127, 127]`` (``True``) or ``[0, 255]`` (``False``).
            stride: convolution stride, an int >= 1.
            padding: padding with real zeros (input code ``x_zp``) on each side, an int >= 0.
            relu: fuse a ReLU by clamping the output codes at ``out_zp``.

        Returns:
            The ``IntegerConv2d``.
        """
        check_finite(weight, "weight")
        if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
            raise ValueError(f"weight={V.show(weight)} must be a Tensor[C_out, C_in, k, k] (a square kernel)")
        V.tensor("bias", bias, dtype="floating", ndim=1, none_ok=True)
        if bias is not None and bias.numel() != weight.shape[0]:
            raise ValueError(f"bias={V.show(bias)} must have C_out={weight.shape[0]} entries")
        V.real("x_scale", x_scale, 0, low_open=True), V.real("out_scale", out_scale, 0, low_open=True)
        V.integer("x_zp", x_zp, -128, 255), V.integer("out_zp", out_zp, -128, 255)
        V.boolean("out_symmetric", out_symmetric), V.boolean("relu", relu)
        if out_symmetric and not -127 <= out_zp <= 127:
            raise ValueError(f"out_zp={out_zp} must be in [-127, 127] when out_symmetric=True (codes in [-127, 127])")
        V.integer("stride", stride, 1), V.integer("padding", padding, 0)
        w = weight.detach().float()
        w_scale, w_zp = qparams_per_channel(w, 0, 8, symmetric=True)
        wq = quantize_per_channel(w, w_scale, w_zp, 0, 8, symmetric=True)
        b = torch.zeros(w.shape[0]) if bias is None else bias.detach().double()
        bias_q = torch.round(b / (x_scale * w_scale)).clamp(INT32_MIN, INT32_MAX).to(torch.int64)
        pairs = [quantize_multiplier(x_scale * float(s) / out_scale) for s in w_scale]
        return cls(wq=wq, w_scale=w_scale, bias_q=bias_q,
                   M0=torch.tensor([p[0] for p in pairs], dtype=torch.int64),
                   shift=torch.tensor([p[1] for p in pairs], dtype=torch.int64),
                   x_scale=float(x_scale), x_zp=int(x_zp), out_scale=float(out_scale), out_zp=int(out_zp),
                   out_range=qrange(8, out_symmetric), stride=stride, padding=padding, relu=relu)

    def accumulate(self, xq: torch.Tensor) -> torch.Tensor:
        """int32 accumulators Tensor[N, C_out, H', W'] (int64 carrier): ``sum q_w (q_x - Z_x) + bias_q``.

        Args:
            xq: integer ``Tensor[N, C_in, H, W]`` of input codes (zero point ``x_zp``).

        Returns:
            ``Tensor[N, C_out, H', W']`` int64 holding int32 values (``OverflowError`` if one leaves that range).
        """
        if xq.is_floating_point() or xq.ndim != 4:
            raise TypeError(f"xq must be an integer Tensor[N, C, H, W], got {xq.dtype} shape {tuple(xq.shape)}")
        n, _, h, w = xq.shape
        k = self.wq.shape[-1]
        x = (xq.to(torch.int64) - self.x_zp).to(torch.float64)  # unfold only moves integers; exact in float64
        cols = F.unfold(x, k, padding=self.padding, stride=self.stride).round().to(torch.int64)
        acc = self.wq.reshape(self.wq.shape[0], -1).to(torch.int64) @ cols  # int64 matmul: exact
        acc = acc + self.bias_q[None, :, None]
        if bool((acc.abs() > INT32_MAX).any()):
            raise OverflowError("an accumulator left the int32 range")
        return acc.reshape(n, -1, *conv2d_out_size((h, w), k, self.stride, self.padding))

    def __call__(self, xq: torch.Tensor) -> torch.Tensor:
        """8-bit output codes Tensor[N, C_out, H', W'] int32 from 8-bit input codes, integers only.

        Args:
            xq: integer ``Tensor[N, C_in, H, W]`` of input codes (zero point ``x_zp``).

        Returns:
            ``Tensor[N, C_out, H', W']`` int32 codes in ``out_range`` (not below ``out_zp`` when ``relu``).
        """
        acc = self.accumulate(xq)
        y = self.out_zp + multiply_by_quantized_multiplier(acc, self.M0[None, :, None, None], self.shift[None, :, None, None])
        lo, hi = self.out_range
        if self.relu:
            lo = max(lo, self.out_zp)
        return y.clamp(lo, hi).to(torch.int32)
