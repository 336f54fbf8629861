"""MobileNet blocks: parameter counts by hand formula, torchvision blocks with copied weights, tiny nets."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models._utils import _make_divisible
from torchvision.models.mobilenetv2 import InvertedResidual as TvIR2
from torchvision.models.mobilenetv3 import InvertedResidual as TvIR3, InvertedResidualConfig

from lessons_lib.blocks import (DepthwiseSeparableConv, InvertedResidual, make_divisible, relu_roundtrip, spiral,
                                tiny_mobilenet)
from lessons_lib.profile import profile_model


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _randomize_bn(m: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine params, so eval-mode outputs test every layer."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


def _copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    a, b = src.state_dict(), dst.state_dict()
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    dst.load_state_dict(dict(zip(b.keys(), a.values())))


@pytest.mark.parametrize("v", [0, 1, 3, 8, 10, 11, 12, 18, 20, 30, 33.6, 5.6, 11.2, 168, 72 // 4, 144 // 4])
def test_make_divisible_equals_torchvision(v):
    assert make_divisible(v, 8) == _make_divisible(v, 8)


@pytest.mark.parametrize("cin, cout, k, s", [(32, 64, 3, 1), (64, 128, 3, 2), (16, 16, 5, 1)])
def test_depthwise_separable_params_and_macs(cin, cout, k, s):
    m = DepthwiseSeparableConv(cin, cout, s, kernel_size=k)
    assert _params(m) == k * k * cin + cin * cout + 2 * (cin + cout)
    h = 16
    rep = profile_model(m, (1, cin, h, h))
    ho = h // s
    assert rep.total_macs == ho * ho * (k * k * cin + cin * cout)
    assert m(torch.randn(2, cin, h, h)).shape == (2, cout, ho, ho)


@pytest.mark.parametrize("cin, cout, s, t", [(24, 24, 1, 6), (16, 24, 2, 6), (32, 32, 1, 1), (32, 16, 1, 1), (64, 96, 1, 4)])
def test_inverted_residual_v2_params_and_torchvision(cin, cout, s, t):
    torch.manual_seed(0)
    ours = InvertedResidual(cin, cout, s, t).eval()
    e = int(round(cin * t))
    expand = (cin * e + 2 * e) if e != cin else 0
    assert _params(ours) == expand + 9 * e + 2 * e + e * cout + 2 * cout
    ref = TvIR2(cin, cout, s, t).eval()
    assert _params(ref) == _params(ours)
    _randomize_bn(ours)
    _copy_in_order(ours, ref)
    x = torch.randn(2, cin, 12, 12)
    torch.testing.assert_close(ours(x), ref(x))
    assert ours.use_residual == ref.use_res_connect == (s == 1 and cin == cout)


@pytest.mark.parametrize("cin, k, e, cout, se, act, s", [
    (16, 3, 16, 16, True, "RE", 2), (24, 3, 72, 24, False, "RE", 1), (40, 5, 240, 40, True, "HS", 1),
    (24, 5, 96, 40, True, "HS", 2), (80, 3, 184, 80, False, "HS", 1),
])
def test_inverted_residual_v3_equals_torchvision_with_copied_weights(cin, k, e, cout, se, act, s):
    torch.manual_seed(1)
    ours = InvertedResidual(cin, cout, s, expanded_ch=e, kernel_size=k, use_se=se,
                            activation="hard_swish" if act == "HS" else "relu").eval()
    cnf = InvertedResidualConfig(cin, k, e, cout, se, act, s, 1, 1.0)
    ref = TvIR3(cnf, norm_layer=nn.BatchNorm2d).eval()  # our BN keeps torch's default eps
    assert _params(ours) == _params(ref)
    sq = _make_divisible(e // 4, 8)
    se_params = (2 * e * sq + sq + e) if se else 0
    expand = (cin * e + 2 * e) if e != cin else 0
    assert _params(ours) == expand + k * k * e + 2 * e + se_params + e * cout + 2 * cout
    _randomize_bn(ours, 2)
    _copy_in_order(ours, ref)
    x = torch.randn(2, cin, 14, 14)
    torch.testing.assert_close(ours(x), ref(x))


def test_linear_bottleneck_has_no_activation_after_project():
    m = InvertedResidual(16, 24, 2, 6)
    assert [type(l) for l in m.project] == [nn.Conv2d, nn.BatchNorm2d]
    torch.manual_seed(0)
    with torch.no_grad():
        assert float(m.eval()(torch.randn(4, 16, 8, 8)).min()) < 0  # negative outputs survive


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("width", [0.5, 1.0])
def test_tiny_mobilenets_run_and_stage_costs_add_up(version, width):
    torch.manual_seed(0)
    net = tiny_mobilenet(version, width_mult=width)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    costs = net.stage_costs()
    rep = profile_model(net, (1, 3, 32, 32))
    assert sum(c["params"] for c in costs) == rep.total_params == _params(net)
    assert sum(c["macs"] for c in costs) == rep.total_macs
    assert costs[0]["stage"] == "stem" and costs[-1]["stage"] == "classifier"


def test_width_and_expansion_knobs_change_cost_and_v3_choices():
    p = lambda **kw: _params(tiny_mobilenet(2, **kw))  # noqa: E731
    assert p(width_mult=0.5) < p() < p(width_mult=1.5)
    assert p(expand_ratio=2) < p(expand_ratio=6)
    v3 = tiny_mobilenet(3)
    assert v3.features.stem[0].out_channels == 16 and tiny_mobilenet(2).features.stem[0].out_channels == 32
    assert isinstance(v3.tail[0], nn.Linear)  # the wide layer runs after global pooling
    no_se = tiny_mobilenet(3, use_se=False)
    assert _params(no_se) < _params(v3)
    assert not any(type(m).__name__ == "SqueezeExcite" for m in no_se.modules())


def test_relu_roundtrip_identity_is_lossless_and_relu_loss_shrinks_with_n():
    x = spiral(500)
    for n in (2, 3, 30):
        for dec in ("lstsq", "pinv"):
            back, err, rec = relu_roundtrip(x, n, activation=lambda v: v, decoder=dec)
            assert err < 1e-10
    mean = lambda n: sum(relu_roundtrip(x, n, seed=s)[1] for s in range(10)) / 10  # noqa: E731
    errs = [mean(n) for n in (2, 3, 5, 15, 30)]
    assert errs == sorted(errs, reverse=True) and errs[0] > 0.3 and errs[-1] < 0.01
    # pinv decoder equals the formula written out with torch.linalg.pinv
    T = torch.randn(4, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    back, _, rec = relu_roundtrip(x, 4, seed=7, decoder="pinv")
    torch.testing.assert_close(back, torch.relu(x @ T.T) @ torch.linalg.pinv(T).T)
    # recoverable: a point with >= 2 non-parallel active rows; check one point by brute force
    act = (x[0] @ T.T) > 0
    assert (torch.linalg.matrix_rank(T[act]) == 2) if act.sum() else True
    assert 0 <= rec <= 1 and relu_roundtrip(x, 30)[2] == 1.0


@pytest.mark.parametrize("call, exc, words", [
    (lambda: relu_roundtrip(torch.randn(5, 3), 4), ValueError, "Tensor[N, 2]"),
    (lambda: relu_roundtrip(spiral(10), 1), ValueError, "n=1"),
    (lambda: relu_roundtrip(spiral(10), 4, decoder="inv"), ValueError, "decoder='inv'"),
    (lambda: DepthwiseSeparableConv(0, 8), ValueError, "in_ch=0"),
    (lambda: DepthwiseSeparableConv(8, 8, stride=3), ValueError, "stride=3"),
    (lambda: DepthwiseSeparableConv(8, 8, activation="gelu"), ValueError, "activation='gelu'"),
    (lambda: InvertedResidual(8, 8, expand_ratio=0.5), ValueError, "expand_ratio=0.5"),
    (lambda: InvertedResidual(8, 8, use_se=1), TypeError, "use_se=1"),
    (lambda: InvertedResidual(8, 8.0), TypeError, "out_ch=8.0"),
    (lambda: tiny_mobilenet(4), ValueError, "version=4"),
    (lambda: tiny_mobilenet(2, width_mult=0), ValueError, "width_mult=0"),
    (lambda: tiny_mobilenet(2, use_se=True), ValueError, "use_se=True"),
    (lambda: make_divisible(-3), ValueError, "v=-3"),
])
def test_bad_inputs_name_the_parameter(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)
