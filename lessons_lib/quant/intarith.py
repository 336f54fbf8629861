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

from .affine import _check_scale, check_finite, qparams_per_channel, qrange, quantize_per_channel

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """``(M0, shift)`` with ``real_multiplier ~ M0 * 2^(shift - 31)`` and ``M0`` in ``[2^30, 2^31)``."""
    m = _check_scale(real_multiplier, "real_multiplier").item()
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

    ``acc`` is an integer tensor (int32 values); ``M0``, ``shift`` scalars or tensors broadcastable to it.
    """
    if acc.is_floating_point():
        raise TypeError(f"acc must be an integer tensor, got dtype {acc.dtype}")
    acc = acc.to(torch.int64)
    M0 = torch.as_tensor(M0, dtype=torch.int64)
    shift = torch.as_tensor(shift, dtype=torch.int64)
    left = shift.clamp(min=0)
    right = (-shift).clamp(min=0)
    x = (acc << left).clamp(INT32_MIN, INT32_MAX)
    return _rounding_divide_by_pot(_srdhm(x, M0), right)


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
        8-bit inputs with ``(x_scale, x_zp)`` and 8-bit outputs with ``(out_scale, out_zp)``."""
        check_finite(weight, "weight")
        if weight.ndim != 4:
            raise ValueError(f"weight must be Tensor[C_out, C_in, k, k], got shape {tuple(weight.shape)}")
        _check_scale(x_scale, "x_scale"), _check_scale(out_scale, "out_scale")
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
        """int32 accumulators Tensor[N, C_out, H', W'] (int64 carrier): ``sum q_w (q_x - Z_x) + bias_q``."""
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
        ho = (h + 2 * self.padding - k) // self.stride + 1
        wo = (w + 2 * self.padding - k) // self.stride + 1
        return acc.reshape(n, -1, ho, wo)

    def __call__(self, xq: torch.Tensor) -> torch.Tensor:
        """8-bit output codes Tensor[N, C_out, H', W'] int32 from 8-bit input codes, integers only."""
        acc = self.accumulate(xq)
        y = self.out_zp + multiply_by_quantized_multiplier(acc, self.M0[None, :, None, None], self.shift[None, :, None, None])
        lo, hi = self.out_range
        if self.relu:
            lo = max(lo, self.out_zp)
        return y.clamp(lo, hi).to(torch.int32)
