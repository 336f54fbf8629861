"""Exercises of lesson 07 (quantisation fundamentals)."""
from __future__ import annotations

import numbers

from ..checks import exercise, numeric_checker
from ...quant import dequantize, qparams


def _negative_code() -> float:
    # 0b11100011 read as a two's-complement qint8 is -29; (q - Z) * S with S = 0.025, Z = 0
    import torch

    q = 0b11100011 - 256
    return float(dequantize(torch.tensor([q]), 0.025, 0))


negative_code = exercise(
    "07.negative_code",
    prompt="A qint8 weight is stored as the bits 11100011 with scale 0.025 and zero point 0. What real value is it?",
    solution=_negative_code,
    hint="qint8 is two's complement: the top bit is worth -128, not a plain sign bit. Then x = (q - Z) * S.",
)(numeric_checker(_negative_code, rtol=1e-4))


def _uint8_qparams() -> tuple[float, int]:
    return qparams(-1.0, 3.0, num_bits=8, symmetric=False)


def _check_qparams(answer) -> tuple[bool, str]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return False, "expected a pair (scale, zero_point)."
    s, z = answer
    if not isinstance(s, numbers.Real) or not isinstance(z, numbers.Integral) or isinstance(z, bool):
        return False, "scale must be a number and zero_point an int."
    ws, wz = _uint8_qparams()
    ok = abs(float(s) - ws) <= 1e-4 * ws and int(z) == wz
    return ok, f"scale {float(s):.6g}, zero point {int(z)}" + ("" if ok else " is not the 8-bit asymmetric mapping of [-1, 3].")


uint8_qparams = exercise(
    "07.uint8_qparams",
    prompt="8-bit asymmetric (0..255) quantisation of the range [-1, 3]: give (scale, zero_point).",
    solution=_uint8_qparams,
    hint="scale = (max - min) / 255; zero_point = round(-min / scale), the integer that stands for 0.0.",
)(_check_qparams)
