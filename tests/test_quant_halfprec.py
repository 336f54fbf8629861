"""fp16 / bf16 cast statistics, truncation bias, and fp16 simulation against torch's real fp16 kernels."""
import pytest
import torch
from torch import nn

from lessons_lib import models
from lessons_lib.quant import halfprec


def test_cast_stats_counts_flushes_subnormals_and_overflow():
    x = torch.tensor([1e-9, 3e-8, 1e-6, 1e-3, 1.0, 7e4, -2e-9])  # 2^-24 = 5.96e-8, 2^-25 rounds to 0
    st = halfprec.cast_stats(x, "fp16")
    assert st["flushed"] == pytest.approx(2 / 7)  # 1e-9, -2e-9
    assert st["subnormal"] == pytest.approx(2 / 7)  # 3e-8 (rounds to 2^-24), 1e-6
    assert st["overflow"] == pytest.approx(1 / 7)  # 7e4 > 65504
    assert halfprec.cast_stats(x, "bf16")["flushed"] == 0.0


def test_cast_stats_matches_direct_torch_count_on_random_gradients():
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(100000, generator=g) * 10 ** torch.empty(100000).uniform_(-10, -2, generator=g)
    for scale in (1.0, 1024.0, 65536.0):
        ours = halfprec.cast_stats(grads, "fp16", scale)["flushed"]
        ref = int(((grads * scale).half() == 0).sum()) / grads.numel()  # all entries are non-zero
        assert ours == pytest.approx(ref, abs=1e-12)
    assert halfprec.cast_stats(grads, "fp16", 1024.0)["flushed"] < halfprec.cast_stats(grads, "fp16")["flushed"]


def test_truncation_is_biased_toward_zero_and_rounding_is_not():
    x = torch.randn(200000, generator=torch.Generator().manual_seed(1)) * 5
    b = halfprec.truncation_bias(x)
    assert b["truncate"] < -1e-3 and abs(b["round"]) < 1e-4
    assert b["truncate_abs"] > b["round_abs"]
    ulp_rel = 2.0**-8  # bf16 keeps 8 significant bits: relative ulp in (2^-8, 2^-7]
    assert -ulp_rel < b["truncate"] < -ulp_rel / 4


def test_simulated_fp16_agrees_with_real_fp16_model():
    torch.manual_seed(0)
    net = models.TeacherCNN(width=8).eval()
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        sim = halfprec.simulate_half(net, "fp16")(x)
        real = net.half()(x.half()).float()
        ref32 = net.float()(x)
    assert (sim - real).abs().max() < 5e-3
    assert (sim - ref32).abs().max() > 0  # the rounding is really applied
    assert torch.equal(halfprec.simulate_half(net, "bf16")(x).argmax(1), halfprec.simulate_half(net, "bf16")(x).argmax(1))


def test_simulate_leaves_original_model_unchanged():
    net = nn.Linear(4, 2)
    w = net.weight.detach().clone()
    halfprec.simulate_half(net, "bf16")
    assert torch.equal(net.weight, w) and not net._forward_hooks


def test_bad_inputs():
    with pytest.raises(ValueError, match="fmt='fp8'"):
        halfprec.cast_stats(torch.randn(3), "fp8")
    with pytest.raises(ValueError, match="scale=0"):
        halfprec.cast_stats(torch.randn(3), "fp16", 0)
    with pytest.raises(ValueError, match="no non-zero"):
        halfprec.cast_stats(torch.zeros(3), "fp16")
    with pytest.raises(TypeError, match="model=list"):
        halfprec.simulate_half([1, 2])
    with pytest.raises(TypeError):
        halfprec.truncation_bias([1.0])
