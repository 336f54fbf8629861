"""Integer-only requantisation (gemmlowp / TFLite fixed point) and one int8 conv layer vs float conv."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessons_lib import quant as Q


def test_quantize_multiplier_represents_the_real_value():
    rng = np.random.default_rng(0)
    for m in list(rng.uniform(1e-6, 0.999, 200)) + [0.5, 0.25, 1.0, 3.7]:
        M0, shift = Q.quantize_multiplier(float(m))
        assert 2**30 <= M0 < 2**31
        assert abs(M0 * 2.0 ** (shift - 31) - m) <= m * 2**-31


def tflite_reference(x: int, M0: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier in plain Python ints (C semantics written out)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = max(min(x * (1 << left), 2**31 - 1), -2**31)
    if a == M0 == -2**31:
        hi = 2**31 - 1
    else:
        ab = a * M0
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        hi = int((ab + nudge) / 2**31) if abs(ab + nudge) < 2**52 else (abs(ab + nudge) >> 31) * (1 if ab + nudge >= 0 else -1)
    mask = (1 << right) - 1
    rem, thr = hi & mask, (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> right) + (1 if rem > thr else 0)


def test_multiply_by_quantized_multiplier_matches_tflite_and_rounds():
    g = torch.Generator().manual_seed(1)
    acc = torch.randint(-2**24, 2**24, (3000,), generator=g)
    for m in (0.0123, 0.37, 0.9, 1.8):
        M0, shift = Q.quantize_multiplier(m)
        out = Q.multiply_by_quantized_multiplier(acc, M0, shift)
        assert out.tolist() == [tflite_reference(int(a), M0, shift) for a in acc]
        exact = acc.double() * (M0 * 2.0 ** (shift - 31))
        assert (out.double() - exact).abs().max() <= 1.0  # two roundings (high-mul, then shift): at most 1 off


def test_double_rounding_is_gemmlowps():
    M0, shift = 2**30, -1  # 0.25 = x / 4 in two roundings: high-mul x/2 (ties up), then /2 (ties away from 0)
    out = Q.multiply_by_quantized_multiplier(torch.tensor([2, -2, 6, -6, 5, -5, 4]), M0, shift)
    assert out.tolist() == [1, -1, 2, -2, 2, -1, 1]  # 5/4 -> 2.5 -> 3 -> 2 ; -5/4 -> -2.5 -> -2 -> -1


def test_integer_conv_reproduces_float_conv():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 10, 10, generator=g)
    w = torch.randn(6, 8, 3, 3, generator=g) * 0.2
    b = torch.randn(6, generator=g) * 0.1
    y = F.relu(F.conv2d(x, w, b, padding=1))
    x_s, x_z = Q.qparams(x.min().item(), x.max().item())             # uint8 input with a zero point
    y_s, y_z = Q.qparams(0.0, y.max().item())
    layer = Q.IntegerConv2d.from_float(w, b, x_scale=x_s, x_zp=x_z, out_scale=y_s, out_zp=y_z, padding=1, relu=True)
    xq = Q.quantize(x, x_s, x_z)
    yq = layer(xq)
    # the same arithmetic in float (dequantised operands) must agree to within one output step
    wq_f = Q.dequantize_per_channel(layer.wq, layer.w_scale, torch.zeros(6), 0)
    acc_f = F.conv2d(Q.dequantize(xq, x_s, x_z), wq_f, torch.round(b.double() / (x_s * layer.w_scale)).float() * (x_s * layer.w_scale).float(), padding=1)
    sim = Q.quantize(F.relu(acc_f), y_s, y_z)
    assert (yq - sim).abs().max() <= 1
    # and the integer accumulators equal an exact int64 conv
    acc = layer.accumulate(xq)
    ref = F.conv2d((xq - x_z).double(), layer.wq.double(), padding=1).round().long() + layer.bias_q[None, :, None, None]
    assert torch.equal(acc, ref)
    # vs the float layer: within a few output steps (input + weight + output rounding)
    err = (Q.dequantize(yq, y_s, y_z) - y).abs().max().item()
    assert err < 4 * y_s


def test_bad_input():
    with pytest.raises(ValueError, match="real_multiplier=0"):
        Q.quantize_multiplier(0.0)
    with pytest.raises(ValueError, match="real_multiplier"):
        Q.quantize_multiplier(2.0**40)
    with pytest.raises(TypeError, match="integer"):
        Q.multiply_by_quantized_multiplier(torch.ones(2), 2**30, 0)
    with pytest.raises(ValueError, match=r"weight=.* must be a Tensor\[C_out"):
        Q.IntegerConv2d.from_float(torch.randn(3, 3), None, x_scale=0.1, x_zp=0, out_scale=0.1, out_zp=0)
