"""lessons_lib.blocks.shuffle against torch.nn.ChannelShuffle and torchvision's ShuffleNetV2 unit."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.shufflenetv2 import InvertedResidual

from lessons_lib.blocks import ShuffleV1Unit, ShuffleV2Block, channel_dependency, channel_shuffle
from lessons_lib.conv import conv2d_params


def _randomise_bn(m: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.weight.data = torch.randn(n, generator=g)
            bn.bias.data = torch.randn(n, generator=g)
            bn.running_mean = torch.randn(n, generator=g)
            bn.running_var = torch.rand(n, generator=g) + 0.5


@pytest.mark.parametrize("c,g", [(4, 2), (12, 3), (24, 4), (30, 5), (8, 8), (6, 1)])
def test_channel_shuffle_matches_torch(c, g):
    x = torch.randn(2, c, 3, 5)
    assert torch.equal(channel_shuffle(x, g), nn.ChannelShuffle(g)(x))
    assert torch.equal(channel_shuffle(channel_shuffle(x, g), c // g), x)  # inverse


def test_channel_shuffle_closed_form():
    c, g = 12, 3
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1)
    out = channel_shuffle(x, g).flatten().long().tolist()
    assert out == [(o % g) * (c // g) + o // g for o in range(c)]


def test_channel_shuffle_bad_input():
    with pytest.raises(ValueError, match="groups=4 must divide the channels C=30"):
        channel_shuffle(torch.randn(1, 30, 2, 2), 4)
    with pytest.raises(ValueError, match="groups=0"):
        channel_shuffle(torch.randn(1, 4, 2, 2), 0)
    with pytest.raises(TypeError, match="groups=2.0"):
        channel_shuffle(torch.randn(1, 4, 2, 2), 2.0)
    with pytest.raises(ValueError, match="Tensor\\[N, C, H, W\\]"):
        channel_shuffle(torch.randn(4, 2, 2), 2)


def test_channel_dependency_blocks_without_shuffle_and_mixes_with_it():
    torch.manual_seed(0)
    c1, c2 = nn.Conv2d(12, 12, 1, groups=3), nn.Conv2d(12, 12, 1, groups=3)
    d_plain = channel_dependency(lambda x: c2(c1(x)), 12)
    block = torch.block_diag(*[torch.ones(4, 4, dtype=torch.bool)] * 3)
    assert torch.equal(d_plain, block)
    d_shuf = channel_dependency(lambda x: c2(channel_shuffle(c1(x), 3)), 12)
    assert bool(d_shuf.all())
    with pytest.raises(TypeError, match="callable"):
        channel_dependency(3, 4)


@pytest.mark.parametrize("inp,oup,stride", [(116, 116, 1), (24, 116, 2), (58, 58, 1), (232, 464, 2)])
def test_shufflev2_equals_torchvision(inp, oup, stride):
    tv = InvertedResidual(inp, oup, stride)
    _randomise_bn(tv)
    ours = ShuffleV2Block(inp, oup, stride)
    ours.load_state_dict(tv.state_dict())  # same layer names: strict load must succeed
    tv.eval(), ours.eval()
    x = torch.randn(2, inp, 14, 14)
    assert torch.allclose(ours(x), tv(x), atol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


def test_shufflev2_bad_input():
    with pytest.raises(ValueError, match="out_ch=115 must be even"):
        ShuffleV2Block(115, 115)
    with pytest.raises(ValueError, match="in_ch=24 must equal out_ch=116"):
        ShuffleV2Block(24, 116, 1)
    with pytest.raises(ValueError, match="stride=3"):
        ShuffleV2Block(24, 116, 3)


def _v1_reference(u: ShuffleV1Unit, x: torch.Tensor) -> torch.Tensor:
    """The unit written out with F.conv2d / F.batch_norm and nn.ChannelShuffle (eval mode)."""
    def cb(seq, t, stride=1, relu=True):
        conv, bn = seq[0], seq[1]
        t = F.conv2d(t, conv.weight, stride=stride, padding=conv.padding, groups=conv.groups)
        t = F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return F.relu(t) if relu else t
    y = cb(u.gconv1, x)
    y = nn.ChannelShuffle(u.groups)(y)
    y = cb(u.dwconv, y, stride=u.stride, relu=False)
    y = cb(u.gconv2, y, relu=False)
    if u.stride == 1:
        return F.relu(x + y)
    return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))


@pytest.mark.parametrize("inp,oup,g,stride,first", [(240, 240, 3, 1, True), (24, 240, 3, 2, False),
                                                    (200, 400, 2, 2, True), (384, 384, 8, 1, True)])
def test_shufflev1_matches_reference_and_param_formula(inp, oup, g, stride, first):
    u = ShuffleV1Unit(inp, oup, g, stride, group_first=first)
    _randomise_bn(u)
    u.eval()
    x = torch.randn(2, inp, 8, 8)
    y = u(x)
    assert y.shape == (2, oup, 8 // stride, 8 // stride)
    assert torch.allclose(y, _v1_reference(u, x), atol=1e-5)
    mid, bout = oup // 4, (oup - inp if stride == 2 else oup)
    convs = (conv2d_params(inp, mid, 1, groups=g if first else 1) + conv2d_params(mid, mid, 3, groups=mid)
             + conv2d_params(mid, bout, 1, groups=g))
    bns = 2 * (mid + mid + bout)
    assert sum(p.numel() for p in u.parameters()) == convs + bns


def test_shufflev1_bad_input():
    with pytest.raises(ValueError, match="groups=3 must divide in_ch=64"):
        ShuffleV1Unit(64, 64, 3)
    with pytest.raises(ValueError, match="out_ch=240 must equal in_ch=24"):
        ShuffleV1Unit(24, 240, 3, 1)
    with pytest.raises(ValueError, match="out_ch=24 must exceed in_ch=24"):
        ShuffleV1Unit(24, 24, 3, 2)
    with pytest.raises(TypeError, match="groups=None"):
        ShuffleV1Unit(24, 24, None)
