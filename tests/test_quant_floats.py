"""bfloat16 by truncation / round-to-nearest-even and float bit fields, against torch's own conversions."""
import struct

import pytest
import torch

from lessons_lib import quant as Q


def _bits16(t):
    return int(t.view(torch.int16).item()) & 0xFFFF


def test_bf16_round_equals_torch_on_random_and_edge_values():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(100000, generator=g) * 10.0 ** torch.randint(-30, 30, (100000,), generator=g),
                   torch.tensor([0.0, -0.0, 1e-40, -1e-41, 3.4028235e38, float("inf"), -float("inf"),
                                 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 65504.0])])
    ours = Q.bf16_round(x)
    assert ours.dtype == torch.bfloat16
    assert torch.equal(ours.view(torch.int16), x.to(torch.bfloat16).view(torch.int16))
    assert bool(torch.isnan(Q.bf16_round(torch.tensor([float("nan")]))).all())


@pytest.mark.parametrize("value, trunc, rne", [
    (3.14, 0x4048, 0x4049), (0.1, 0x3DCC, 0x3DCD), (65504.0, 0x477F, 0x4780),
    (1 + 2**-8, 0x3F80, 0x3F80), (1 + 3 * 2**-8, 0x3F81, 0x3F82), (3.4028235e38, 0x7F7F, 0x7F80),
])
def test_truncation_vs_rne_table(value, trunc, rne):  # reference-algorithms.md §3.2
    x = torch.tensor([value])
    assert _bits16(Q.bf16_truncate(x)) == trunc and _bits16(Q.bf16_round(x)) == rne


def test_truncate_keeps_top_16_bits_and_rounds_toward_zero():
    x = torch.randn(10000, generator=torch.Generator().manual_seed(1))
    t = Q.bf16_truncate(x)
    assert torch.equal(t.view(torch.int16), (x.view(torch.int32) >> 16).to(torch.int16))
    assert bool((t.float().abs() <= x.abs()).all())
    nan_low_payload = torch.tensor([struct.unpack("<f", struct.pack("<I", 0x7F800001))[0]])
    assert bool(torch.isnan(Q.bf16_truncate(nan_low_payload)).all())  # not inf


@pytest.mark.parametrize("fmt", ["fp32", "fp16", "bf16"])
def test_float_bits_reassemble_the_value(fmt):
    x = torch.randn(1000, generator=torch.Generator().manual_seed(2)) * 100
    f = Q.float_bits(x, fmt)
    _, e_bits, m_bits = Q.FORMATS[fmt]
    normal = (f["exponent"] > 0) & (f["exponent"] < 2**e_bits - 1)
    val = (-1.0) ** f["sign"].double() * 2.0 ** (f["exponent"].double() - int(f["bias"])) * (1 + f["mantissa"].double() / 2**m_bits)
    assert torch.equal(val[normal].float(), f["value"][normal])
    assert bool(normal.all())


def test_float_bits_known_patterns():
    f = Q.float_bits(torch.tensor([-2.0]), "fp16")  # 0xC000: sign 1, exponent 16, mantissa 0
    assert (int(f["sign"]), int(f["exponent"]), int(f["mantissa"])) == (1, 16, 0)
    f = Q.float_bits(torch.tensor([0.725]), "fp32")
    assert int(f["sign"]) << 31 | int(f["exponent"]) << 23 | int(f["mantissa"]) == struct.unpack("<I", struct.pack("<f", 0.725))[0]


def test_bad_input():
    with pytest.raises(ValueError, match="fmt='fp8'"):
        Q.float_bits(torch.ones(2), "fp8")
    with pytest.raises(TypeError, match="floating-point"):
        Q.bf16_round(torch.arange(3))
