"""Float formats for compression: bfloat16 by truncation vs round-to-nearest-even, and bit fields.

Document 003 says bfloat16 is the top 16 bits of a float32 (truncation). Frameworks round to nearest,
ties to even instead (PyTorch ``c10::detail::round_to_nearest_even``)::

    u = bits(x) (uint32);  bias = ((u >> 16) & 1) + 0x7FFF;  bf16 = (u + bias) >> 16

Layouts (sign-exponent-mantissa): fp32 1-8-23 (bias 127), fp16 1-5-10 (bias 15), bf16 1-8-7 (bias 127).
"""
from __future__ import annotations

import torch

from .. import validate as V

FORMATS = {  # name: (dtype, exponent bits, mantissa bits)
    "fp32": (torch.float32, 8, 23),
    "fp16": (torch.float16, 5, 10),
    "bf16": (torch.bfloat16, 8, 7),
}
_INT_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def _f32_bits(x: torch.Tensor) -> torch.Tensor:
    V.tensor("x", x, dtype="floating")
    return x.detach().to(torch.float32).contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF


def _bits_to_bf16(b16: torch.Tensor) -> torch.Tensor:
    # int64 in [0, 0xFFFF] -> the int16 with the same bits -> reinterpret as bfloat16
    return torch.where(b16 >= 0x8000, b16 - 0x10000, b16).to(torch.int16).view(torch.bfloat16)


def bf16_truncate(x: torch.Tensor) -> torch.Tensor:
    """``Tensor[...] -> Tensor[...] bfloat16``: keep the top 16 bits of each float32 (round toward zero).

    NaN inputs give the canonical NaN ``0x7FC0`` (plain truncation would turn a NaN whose payload sits
    in the low 16 bits into inf).

    Args:
        x: ``Tensor[...]`` (any shape) of any floating dtype, first converted to float32; NaN / inf allowed.

    Returns:
        ``Tensor[x.shape]`` bfloat16.
    """
    u = _f32_bits(x)
    b = torch.where(torch.isnan(x.to(torch.float32)), torch.full_like(u, 0x7FC0), u >> 16)
    return _bits_to_bf16(b)


def bf16_round(x: torch.Tensor) -> torch.Tensor:
    """``Tensor[...] -> Tensor[...] bfloat16``: round to nearest, ties to even (equals ``x.to(torch.bfloat16)``).

    Args:
        x: ``Tensor[...]`` (any shape) of any floating dtype, first converted to float32; NaN (which gives the
            canonical NaN ``0x7FC0``) and inf allowed.

    Returns:
        ``Tensor[x.shape]`` bfloat16.
    """
    u = _f32_bits(x)
    bias = ((u >> 16) & 1) + 0x7FFF
    b = torch.where(torch.isnan(x.to(torch.float32)), torch.full_like(u, 0x7FC0), ((u + bias) >> 16) & 0xFFFF)
    return _bits_to_bf16(b)


def float_bits(x: torch.Tensor, fmt: str = "fp32") -> dict[str, torch.Tensor]:
    """Bit fields of ``x`` converted to ``fmt`` ("fp32", "fp16", "bf16"; conversion rounds to nearest even).

    For normal numbers ``value = (-1)^sign * 2^(exponent - bias) * (1 + mantissa / 2^m)``
    (``m`` mantissa bits: 23, 10 or 7).

    Args:
        x: ``Tensor[...]`` (any shape) of any floating dtype; NaN / inf allowed.
        fmt: the format, ``"fp32"``, ``"fp16"`` or ``"bf16"`` (layouts in :data:`FORMATS`).

    Returns:
        ``dict``: ``"sign"``, ``"exponent"``, ``"mantissa"``: ``Tensor[x.shape]`` int64 of the raw stored fields;
        ``"value"``: ``Tensor[x.shape]`` float32, x in that format; ``"bias"``: the exponent bias, a 0-d int64
        tensor (127, 15 or 127).
    """
    V.choice("fmt", fmt, sorted(FORMATS))
    V.tensor("x", x, dtype="floating")
    dtype, e_bits, m_bits = FORMATS[fmt]
    y = x.detach().to(dtype)
    width = 1 + e_bits + m_bits
    u = y.contiguous().view(_INT_VIEW[dtype]).to(torch.int64) & ((1 << width) - 1)
    return {
        "sign": u >> (width - 1),
        "exponent": (u >> m_bits) & ((1 << e_bits) - 1),
        "mantissa": u & ((1 << m_bits) - 1),
        "value": y.to(torch.float32),
        "bias": torch.tensor(2 ** (e_bits - 1) - 1),
    }
