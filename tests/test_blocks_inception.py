"""lessons_lib.blocks.inception: factorised kernels, extreme Inception, ResNeXt, IGC vs references."""
import pytest
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from lessons_lib.blocks import (ExtremeInception, IGCBlock, InceptionBlock, ResNeXtBranches, ResNeXtGrouped,
                                channel_shuffle, extreme_inception_towers, factorized_conv, grouped_from_branches)
from lessons_lib.conv import conv2d_params, impulse_receptive_field, mask_extent


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def _randomise_bn(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.weight.data, bn.bias.data = torch.randn(n, generator=g), torch.randn(n, generator=g)
            bn.running_mean, bn.running_var = torch.randn(n, generator=g), torch.rand(n, generator=g) + 0.5


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("kind", ["full", "two3x3", "asym"])
def test_factorized_receptive_field_and_params(kind, n):
    cin, cout = 6, 8
    m = factorized_conv(cin, cout, n, kind)
    assert mask_extent(impulse_receptive_field(m, cin, 15)) == (n, n)
    if kind == "full":
        want = conv2d_params(cin, cout, n)
    elif kind == "two3x3":
        depth = (n - 1) // 2
        want = conv2d_params(cin, cout, 3) + (depth - 1) * conv2d_params(cout, cout, 3)
    else:
        want = conv2d_params(cin, cout, (1, n)) + conv2d_params(cout, cout, (n, 1))
    assert _n_params(m) == want
    x = torch.randn(1, cin, 9, 11)
    assert m(x).shape == (1, cout, 9, 11)


def test_factorized_relu_between_and_bad_input():
    m = factorized_conv(4, 4, 5, "two3x3", relu=True)
    assert sum(isinstance(l, nn.ReLU) for l in m) == 1
    with pytest.raises(ValueError, match="n=4 must be odd"):
        factorized_conv(4, 4, 4)
    with pytest.raises(ValueError, match="kind='diag'"):
        factorized_conv(4, 4, 5, "diag")
    with pytest.raises(TypeError, match="in_ch='4'"):
        factorized_conv("4", 4, 5)


@pytest.mark.parametrize("fact", [False, True])
def test_inception_block_shapes_and_params(fact):
    args = (192, 64, 96, 128, 16, 32, 32)  # GoogLeNet inception (3a)
    m = InceptionBlock(*args, factorize5x5=fact).eval()
    assert m(torch.randn(2, 192, 7, 7)).shape == (2, 64 + 128 + 32 + 32, 7, 7)
    five = conv2d_params(16, 32, 3) + conv2d_params(32, 32, 3) if fact else conv2d_params(16, 32, 5)
    convs = (conv2d_params(192, 64, 1) + conv2d_params(192, 96, 1) + conv2d_params(96, 128, 3)
             + conv2d_params(192, 16, 1) + five + conv2d_params(192, 32, 1))
    bns = 2 * (64 + 96 + 128 + 16 + 32 + (32 if fact else 0) + 32)
    assert _n_params(m) == convs + bns
    with pytest.raises(ValueError, match="ch5=0"):
        InceptionBlock(192, 64, 96, 128, 16, 0, 32)


def test_extreme_inception_equals_towers():
    torch.manual_seed(0)
    b = ExtremeInception(8, 6, 3)
    x = torch.randn(2, 8, 9, 9)
    assert torch.allclose(b(x), extreme_inception_towers(b, x), atol=1e-5)
    assert _n_params(b) == conv2d_params(8, 6, 1) + conv2d_params(6, 6, 3, groups=6)
    with pytest.raises(TypeError, match="ExtremeInception"):
        extreme_inception_towers(nn.Conv2d(8, 6, 1), x)


@pytest.mark.parametrize("C,d", [(8, 4), (32, 4), (4, 16)])
def test_resnext_branches_equal_grouped(C, d):
    torch.manual_seed(C)
    b = ResNeXtBranches(64, 64, C, d)
    _randomise_bn(b)
    b.eval()
    g = grouped_from_branches(b).eval()
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(b(x), g(x), atol=1e-5)
    assert _n_params(b) == _n_params(g)  # the same weights, rearranged
    assert g.conv2.groups == C


def test_resnext_grouped_equals_torchvision_bottleneck():
    tv = Bottleneck(256, 64, groups=32, base_width=4)  # resnext50_32x4d, first stage
    _randomise_bn(tv)
    ours = ResNeXtGrouped(256, 256, 32, 4)
    ours.load_state_dict(tv.state_dict())
    tv.eval(), ours.eval()
    x = torch.randn(1, 256, 8, 8)
    assert torch.allclose(ours(x), tv(x), atol=1e-5)
    assert _n_params(ours) == _n_params(tv)


def test_resnext_bad_input():
    with pytest.raises(ValueError, match="in_ch=64 == out_ch=128"):
        ResNeXtGrouped(64, 128, 8, 4)
    with pytest.raises(ValueError, match="cardinality=0"):
        ResNeXtBranches(64, 64, 0, 4)
    with pytest.raises(TypeError, match="ResNeXtBranches"):
        grouped_from_branches(ResNeXtGrouped(64, 64, 8, 4))


def _dense(conv: nn.Conv2d) -> torch.Tensor:
    """A group conv's weight as the equivalent dense Tensor[out, in, k, k] (zeros off the diagonal blocks)."""
    w, g = conv.weight, conv.groups
    co, ci = conv.out_channels // g, conv.in_channels // g
    d = torch.zeros(conv.out_channels, conv.in_channels, *w.shape[2:])
    for i in range(g):
        d[i * co:(i + 1) * co, i * ci:(i + 1) * ci] = w[i * co:(i + 1) * co]
    return d


@pytest.mark.parametrize("L,M", [(4, 2), (2, 4), (3, 5), (1, 6), (6, 1)])
def test_igc_equals_composed_dense_conv_and_param_formula(L, M):
    torch.manual_seed(0)
    m = IGCBlock(L, M, 3)
    C = L * M
    perm = channel_shuffle(torch.eye(C).view(1, C, C, 1), L)[0, :, :, 0]   # P: y_perm = P y
    unperm = channel_shuffle(torch.eye(C).view(1, C, C, 1), M)[0, :, :, 0]
    w1, w2 = _dense(m.primary), _dense(m.secondary)[:, :, 0, 0]
    composed = torch.einsum("oj,jikl->oikl", unperm @ w2 @ perm, w1)
    x = torch.randn(2, C, 7, 7)
    with torch.no_grad():
        assert torch.allclose(m(x), nn.functional.conv2d(x, composed, padding=1), atol=1e-5)
    assert _n_params(m) == 9 * L * M * M + L * L * M == conv2d_params(C, C, 3, groups=L) + conv2d_params(C, C, 1, groups=M)


def test_igc_bad_input():
    with pytest.raises(ValueError, match="L=0"):
        IGCBlock(0, 2)
    with pytest.raises(TypeError, match="M=2.5"):
        IGCBlock(2, 2.5)
