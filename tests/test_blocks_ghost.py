"""lessons_lib.blocks.ghost against a functional reference (timm/GhostNet math) and the paper's ratio."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.blocks import GhostModule, ghost_speedup
from lessons_lib.conv import conv2d_params
from lessons_lib.profile import profile_model


@pytest.mark.parametrize("out,s,init,new", [(16, 2, 8, 8), (15, 2, 8, 8), (16, 3, 6, 12), (7, 4, 2, 6)])
def test_channel_split_as_reference(out, s, init, new):
    m = GhostModule(8, out, ratio=s)
    assert m.primary_conv[0].out_channels == init and m.cheap_operation[0].out_channels == new
    assert m(torch.randn(2, 8, 6, 6)).shape == (2, out, 6, 6)


def _reference(m: GhostModule, x):
    """Eq. 2-3 of GhostNet written with F.conv2d / F.batch_norm (eval mode), as timm's GhostModule does."""
    def cbr(seq, t, groups=1):
        conv, bn = seq[0], seq[1]
        t = F.conv2d(t, conv.weight, stride=conv.stride, padding=conv.padding, groups=groups)
        return F.relu(F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))
    y1 = cbr(m.primary_conv, x)
    y2 = cbr(m.cheap_operation, y1, groups=y1.shape[1])
    return torch.cat([y1, y2], 1)[:, :m.out_ch]


@pytest.mark.parametrize("k,s,stride", [(1, 2, 1), (3, 3, 2), (1, 4, 1)])
def test_matches_functional_reference(k, s, stride):
    torch.manual_seed(0)
    m = GhostModule(12, 20, kernel_size=k, ratio=s, stride=stride)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2), bn.weight.data.normal_(), bn.bias.data.normal_()
    m.eval()
    x = torch.randn(2, 12, 10, 10)
    assert torch.allclose(m(x), _reference(m, x), atol=1e-5)


def test_params_and_macs_against_formula():
    c, n, s, k, d, hw = 64, 128, 2, 1, 3, 16
    g = GhostModule(c, n, kernel_size=k, ratio=s, dw_size=d, relu=False)
    m = n // s
    conv_w = sum(p.numel() for mod in g.modules() if isinstance(mod, nn.Conv2d) for p in mod.parameters())
    assert conv_w == conv2d_params(c, m, k) + conv2d_params(m, m * (s - 1), d, groups=m)
    ghost_macs = profile_model(g, (1, c, hw, hw)).total_macs
    plain_macs = profile_model(nn.Conv2d(c, n, k, bias=False), (1, c, hw, hw)).total_macs
    assert plain_macs / ghost_macs == pytest.approx(ghost_speedup(c, s, k, d), rel=1e-9)
    assert conv2d_params(c, n, k) / conv_w == pytest.approx(ghost_speedup(c, s, k, d), rel=1e-9)


def test_speedup_limits():
    assert ghost_speedup(16, 2, 3, 3) == pytest.approx(2 * 16 / (16 + 2 - 1))  # the paper's form when d = k
    assert ghost_speedup(10**6, 4, 3, 3) == pytest.approx(4, rel=1e-5)
    assert ghost_speedup(64, 2, 1, 3) < 2


def test_bad_input():
    with pytest.raises(ValueError, match="ratio=1 must be >= 2"):
        GhostModule(8, 16, ratio=1)
    with pytest.raises(TypeError, match="out_ch=16.0"):
        GhostModule(8, 16.0)
    with pytest.raises(ValueError, match="s=0"):
        ghost_speedup(16, 0)
