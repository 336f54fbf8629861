"""Exercises of lesson 09 (bfloat16 and fp16)."""
from __future__ import annotations

import numbers

import torch

from ..checks import exercise


def _bits_3_14() -> int:
    return int(torch.tensor([3.14]).to(torch.bfloat16).view(torch.int16).item()) & 0xFFFF  # 0x4049


def _check_bits(answer) -> tuple[bool, str]:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Integral):
        return False, f"expected an int such as 0x3F80, got {type(answer).__name__}."
    want = _bits_3_14()
    if int(answer) == want:
        return True, f"0x{int(answer):04X}: the top 16 bits 0x4048 plus one, because the dropped bits 0xF5C3 exceed 0x8000."
    if int(answer) == 0x4048:
        return False, "0x4048 is the truncation of document 003; PyTorch rounds to nearest even."
    return False, f"0x{int(answer) & 0xFFFF:04X} is not the bfloat16 pattern of 3.14."


bf16_bits = exercise(
    "09.bf16_bits",
    prompt="The 16-bit pattern (an int, e.g. 0x3F80) of torch.tensor(3.14).to(torch.bfloat16).",
    solution=_bits_3_14,
    hint="float32 3.14 is 0x4048F5C3; bfloat16 keeps the top 16 bits and rounds on the dropped 16 (0xF5C3 > 0x8000).",
)(_check_bits)


def _min_shift() -> int:
    g = 1e-9
    return next(k for k in range(0, 64) if float(torch.tensor(g * 2.0**k, dtype=torch.float32).half()) != 0.0)


def _check_shift(answer) -> tuple[bool, str]:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Integral):
        return False, f"expected an int k (the loss scale is 2^k), got {type(answer).__name__}."
    want = _min_shift()
    if int(answer) == want:
        return True, f"1e-9 x 2^{want} = {1e-9 * 2.0**want:.3g} >= 2^-25, so fp16 keeps it (as a subnormal)."
    side = "small: it still rounds to 0 in fp16" if int(answer) < want else "large: a smaller scale already works"
    return False, f"2^{int(answer)} is too {side}."


loss_scale = exercise(
    "09.loss_scale",
    prompt="Smallest integer k such that a gradient of 1e-9, multiplied by the loss scale 2^k, is not flushed to 0 in fp16.",
    solution=_min_shift,
    hint="fp16's smallest subnormal is 2^-24 ~ 5.96e-8; values above half of it (2^-25) round up to it.",
)(_check_shift)
