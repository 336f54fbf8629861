"""lessons_lib.conv against torch (nn.Conv2d shapes and parameter counts), fvcore and ptflops (MACs)."""
from __future__ import annotations

import random

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info
from torch import nn

from lessons_lib import conv, profile
from lessons_lib.profile import profile_model


def _random_configs(n: int, seed: int = 0):
    """Random (c1, c2, k, g, stride, dilation, H) with g dividing both channel counts."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        g = rng.choice([1, 2, 3, 4, 8])
        c1, c2 = g * rng.randint(1, 6), g * rng.randint(1, 6)
        k = (rng.randint(1, 5), rng.randint(1, 5))
        out.append((c1, c2, k, g, rng.randint(1, 3), rng.randint(1, 2), rng.randint(11, 20)))
    return out


def _fvcore_macs(module: nn.Module, x: torch.Tensor) -> int:
    fca = FlopCountAnalysis(module.eval(), x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(fca.by_operator()["conv"])


@pytest.mark.parametrize("c1, c2, k, g, s, d, H", _random_configs(25))
def test_params_macs_and_shape_match_torch_and_fvcore(c1, c2, k, g, s, d, H):
    layer = nn.Conv2d(c1, c2, k, stride=s, padding=1, dilation=d, groups=g, bias=False)
    x = torch.randn(1, c1, H, H + 3)
    y = layer(x)
    out_hw = conv.conv2d_out_size((H, H + 3), k, s, 1, d)
    assert out_hw == tuple(y.shape[2:])
    assert conv.conv2d_params(c1, c2, k, g) == sum(p.numel() for p in layer.parameters())
    assert conv.conv2d_macs(c1, c2, k, out_hw, g) == _fvcore_macs(layer, x)
    biased = nn.Conv2d(c1, c2, k, groups=g, bias=True)
    assert conv.conv2d_params(c1, c2, k, g, bias=True) == sum(p.numel() for p in biased.parameters())


def test_grouped_conv_has_one_gth_of_the_weights():
    for g in (1, 2, 4, 8, 16, 32):
        assert conv.conv2d_params(32, 64, 3, g) * g == conv.conv2d_params(32, 64, 3, 1)


@pytest.mark.parametrize("c1, c2, k", [(32, 64, 3), (16, 16, 5), (24, 144, 3), (7, 11, (3, 5))])
def test_separable_ratio_and_doc001_slip(c1, c2, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    std = nn.Conv2d(c1, c2, k, bias=False)
    sep = conv.conv_layer("separable", c1, c2, kh) if kh == kw else nn.Sequential(
        nn.Conv2d(c1, c1, k, groups=c1, bias=False), nn.Conv2d(c1, c2, 1, bias=False))
    n_std, n_sep = (sum(p.numel() for p in m.parameters()) for m in (std, sep))
    assert conv.separable_params(c1, c2, k) == n_sep == kh * kw * c1 + c1 * c2
    assert conv.separable_ratio(c2, k) == pytest.approx(n_sep / n_std, rel=1e-12)
    out_hw = (9, 13)
    macs = (conv.conv2d_macs(c1, c1, k, out_hw, c1) + conv.conv2d_macs(c1, c2, 1, out_hw)) / conv.conv2d_macs(c1, c2, k, out_hw)
    assert conv.separable_ratio(c2, k) == pytest.approx(macs, rel=1e-12)
    # document 001's total h1*w1*c2 + c1*c2 is right only when c1 == c2
    assert (conv.separable_params_doc001(c1, c2, k) == n_sep) == (c1 == c2)


def test_macs_against_ptflops_aten_backend_and_profile():
    torch.manual_seed(0)
    net = nn.Sequential(conv.conv_layer("separable", 8, 24, 5), conv.conv_layer("grouped", 24, 12, 3, groups=4),
                        conv.conv_layer("factorized", 12, 6, 5), conv.conv_layer("dilated", 6, 6, 3, dilation=2))
    hw = (17, 23)
    ours = sum(conv.layer_cost(m, hw).macs for m in net)  # every layer keeps H x W
    macs, params = get_model_complexity_info(net, (8, *hw), as_strings=False, print_per_layer_stat=False,
                                             backend="aten")
    assert ours == macs == profile_model(net, (1, 8, *hw)).total_macs
    assert sum(conv.layer_cost(m, hw).params for m in net) == params


@pytest.mark.parametrize("kind", conv.CONV_KINDS)
def test_conv_layer_kinds_keep_size_and_match_their_cost(kind):
    c_in, c_out = (16, 16) if kind == "depthwise" else (16, 32)
    layer = conv.conv_layer(kind, c_in, c_out, 5, groups=4, dilation=2)
    x = torch.randn(2, c_in, 15, 12)
    y = layer(x)
    assert tuple(y.shape) == (2, c_out, 15, 12)
    cost = conv.layer_cost(layer, (15, 12))
    assert cost.params == sum(p.numel() for p in layer.parameters())
    assert cost.macs * 2 == _fvcore_macs(layer, x)
    rows = profile_model(layer, (1, c_in, 15, 12)).rows
    assert cost.mem_bytes == sum(r.mem_bytes for r in rows)
    assert cost.intensity == pytest.approx(2 * cost.macs / cost.mem_bytes)


def test_memory_bytes_counts_weights_input_and_output_once():
    assert conv.memory_bytes(10, 20, 30) == 4 * 60 and conv.memory_bytes(10, 20, 30, bytes_per_elem=1) == 60
    assert conv.memory_bytes(0, 0, 0) == 0


def test_memory_bytes_and_intensity_by_hand():
    # 3x3 conv 64 -> 64 on 28x28, fp32: weights 36864, input = output = 50176 elements
    c = conv.conv2d_cost(64, 64, 3, 28)
    assert (c.params, c.macs, c.mem_bytes) == (36864, 36864 * 784, (36864 + 2 * 50176) * 4)
    dw = conv.conv2d_cost(64, 64, 3, 28, groups=64)
    assert dw.mem_bytes == (576 + 2 * 50176) * 4 and dw.intensity == pytest.approx(2 * 576 * 784 / dw.mem_bytes)
    assert dw.intensity < conv.conv2d_cost(64, 64, 1, 28).intensity < c.intensity
    assert conv.conv2d_cost(64, 64, 3, 28, bytes_per_elem=2).mem_bytes * 2 == c.mem_bytes
    s2 = conv.conv2d_cost(8, 8, 3, 10, stride=2, padding=0)
    assert s2.out_hw == (4, 4) and s2.macs == 576 * 16


@pytest.mark.parametrize("layers, stack", [
    ([(3, 1, 2)], [nn.Conv2d(2, 3, 3, dilation=2)]),
    ([(3, 1, 1), (3, 1, 1)], [nn.Conv2d(2, 3, 3), nn.Conv2d(3, 3, 3)]),
    ([((5, 1), 1, 1), ((1, 5), 1, 1)], [nn.Conv2d(2, 3, (5, 1)), nn.Conv2d(3, 3, (1, 5))]),
    ([(3, 2, 1), (3, 1, 1), (3, 1, 2)], [nn.Conv2d(2, 3, 3, stride=2), nn.Conv2d(3, 3, 3), nn.Conv2d(3, 3, 3, dilation=2)]),
    ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], [nn.Conv2d(2, 3, 3, dilation=1), nn.Conv2d(3, 3, 3, dilation=2), nn.Conv2d(3, 3, 3, dilation=4)]),
    ([((3, 5), 1, (2, 1))], [nn.Conv2d(2, 3, (3, 5), dilation=(2, 1))]),
])
def test_receptive_field_matches_gradient_experiment(layers, stack):
    torch.manual_seed(0)
    mask = conv.impulse_receptive_field(nn.Sequential(*stack), 2, 41)
    assert conv.receptive_field(layers) == conv.mask_extent(mask)


def test_dilated_3x3_sees_a_5x5_box_but_only_9_pixels():
    torch.manual_seed(1)
    mask = conv.impulse_receptive_field(conv.conv_layer("dilated", 4, 4, 3, dilation=2), 4, 11)
    assert conv.mask_extent(mask) == (5, 5) and int(mask.sum()) == 9
    assert conv.effective_kernel(3, 2) == (5, 5) and conv.same_padding(3, 2) == (2, 2)
    full = conv.impulse_receptive_field(conv.conv_layer("factorized", 4, 4, 5), 4, 11)
    assert conv.mask_extent(full) == (5, 5) and int(full.sum()) == 25


def test_separable_sweep_rows():
    rows = profile.separable_sweep([4, 8], hw=6, repeats=2, warmup=0)
    assert [r.channels for r in rows] == [4, 8]
    r = rows[1]
    assert r.macs == {"standard": 9 * 64 * 36, "depthwise": 9 * 8 * 36, "pointwise": 64 * 36,
                      "separable": 9 * 8 * 36 + 64 * 36}
    assert r.predicted_ratio == pytest.approx(conv.separable_ratio(8, 3))
    assert r.measured_ratio == pytest.approx(r.ms["separable"] / r.ms["standard"]) and all(v > 0 for v in r.ms.values())
    assert r.gflops("standard") == pytest.approx(2 * r.macs["standard"] / r.ms["standard"] / 1e6)
    assert "CPU" in r.machine or "GPU" in r.machine


@pytest.mark.parametrize("call, err, words", [
    (lambda: conv.conv2d_params(30, 64, 3, groups=4), ValueError, "groups=4 must divide in_ch=30"),
    (lambda: conv.conv2d_params(32, 30, 3, groups=4), ValueError, "groups=4 must divide out_ch=30"),
    (lambda: conv.conv2d_params(0, 8, 3), ValueError, "in_ch=0"),
    (lambda: conv.conv2d_params(8, -1, 3), ValueError, "out_ch=-1"),
    (lambda: conv.conv2d_params(8, 8, 0), ValueError, "kernel_size=0"),
    (lambda: conv.conv2d_params(8, 8, (3, 3, 3)), ValueError, "kernel_size=(3, 3, 3)"),
    (lambda: conv.conv2d_params(8, 8, 3.0), TypeError, "kernel_size=3.0"),
    (lambda: conv.conv2d_params(8, 8, 3, groups=0), ValueError, "groups=0"),
    (lambda: conv.conv2d_params(True, 8, 3), TypeError, "in_ch=True"),
    (lambda: conv.conv2d_macs(8, 8, 3, (0, 4)), ValueError, "out_hw=0"),
    (lambda: conv.separable_ratio(0, 3), ValueError, "out_ch=0"),
    (lambda: conv.separable_ratio(8, -3), ValueError, "kernel_size=-3"),
    (lambda: conv.conv2d_out_size(4, 7), ValueError, "in_hw=4"),
    (lambda: conv.conv2d_out_size(8, 3, stride=0), ValueError, "stride=0"),
    (lambda: conv.conv2d_out_size(8, 3, padding=-1), ValueError, "padding=-1"),
    (lambda: conv.same_padding(4), ValueError, "kernel_size=4"),
    (lambda: conv.receptive_field([]), ValueError, "layers=[]"),
    (lambda: conv.receptive_field([(3, 1)]), ValueError, "layers[0]=(3, 1)"),
    (lambda: conv.receptive_field([(3, 1, 0)]), ValueError, "dilation=0"),
    (lambda: conv.conv_layer("octave", 8, 8), ValueError, "kind='octave'"),
    (lambda: conv.conv_layer("depthwise", 8, 16), ValueError, "out_ch=16 must equal in_ch=8"),
    (lambda: conv.conv_layer("grouped", 8, 12, groups=8), ValueError, "groups=8 must divide out_ch=12"),
    (lambda: conv.conv_layer("standard", 8, 8, 4), ValueError, "kernel_size=4"),
    (lambda: conv.conv2d_cost(8, 8, 3, 8, bytes_per_elem=0), ValueError, "bytes_per_elem=0"),
    (lambda: conv.memory_bytes(-1, 4, 4), ValueError, "weights=-1"),
    (lambda: conv.memory_bytes(1, 4.0, 4), TypeError, "in_elems=4.0"),
    (lambda: conv.memory_bytes(1, 4, 4, bytes_per_elem=0), ValueError, "bytes_per_elem=0"),
    (lambda: conv.layer_cost(nn.ReLU(), 8), TypeError, "layer=ReLU"),
    (lambda: conv.impulse_receptive_field("conv", 2, 8), TypeError, "module=str"),
    (lambda: conv.impulse_receptive_field(nn.Flatten(), 4, 4), ValueError, "expected Tensor[N, C, H, W]"),
    (lambda: conv.mask_extent(torch.ones(3)), ValueError, "mask="),
    (lambda: profile.separable_sweep([], hw=4), ValueError, "channels=[]"),
    (lambda: profile.separable_sweep([8], hw=0), ValueError, "hw=0"),
])
def test_bad_inputs_name_parameter_and_value(call, err, words):
    with pytest.raises(err) as info:
        call()
    assert words in str(info.value)
