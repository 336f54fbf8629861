"""lessons_lib.deploy.tactics: conv tactics agree with torch; concat-free branches equal torch.cat."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lessons_lib.deploy import tactics as T


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=0, bias=False), dict(groups=2, dilation=2, padding=2)])
def test_every_tactic_matches_conv2d(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, **kw).eval()
    x = torch.randn(2, 4, 11, 9)
    with torch.no_grad():
        ref = conv(x)
        for name, fn in T.conv_tactics(conv).items():
            torch.testing.assert_close(fn(x), ref, rtol=1e-4, atol=1e-5, msg=name)


def test_autotune_picks_the_fastest_correct_tactic():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1).eval()
    best, times = T.autotune(conv, torch.randn(2, 8, 12, 12), repeats=3)
    assert set(times) == set(T.conv_tactics(conv)) and all(math.isfinite(t) and t > 0 for t in times.values())
    assert times[best] == min(times.values())
    rows = T.autotune_model(nn.Sequential(conv, nn.ReLU(), nn.Conv2d(8, 4, 1)), torch.randn(2, 8, 12, 12),
                            threads=1, repeats=2)
    assert [r["layer"] for r in rows] == ["0", "2"] and rows[1]["in_shape"] == (2, 8, 12, 12)


def test_concat_free_branches_equal_torch_cat():
    torch.manual_seed(0)
    block = T.ConcatBlock(in_ch=5, branch_ch=3, branches=3).eval()
    x = torch.randn(2, 5, 4, 6)
    with torch.no_grad():
        ref = block(x)
        torch.testing.assert_close(T.branches_into_buffer(block, x), ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(T.branches_then_cat(block, x), ref, rtol=1e-5, atol=1e-6)
    assert T.concat_bytes(block, x) == 2 * 2 * 9 * 24 * 4


def test_tactics_bad_inputs():
    with pytest.raises(TypeError, match="conv=Linear"):
        T.conv_tactics(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="padding='same'"):
        T.conv_tactics(nn.Conv2d(2, 2, 3, padding="same"))
    with pytest.raises(ValueError, match=r"x has shape \(1, 3, 4, 4\); it must be Tensor\[N, 2, H, W\]"):
        T.autotune(nn.Conv2d(2, 2, 3), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="branches=0"):
        T.ConcatBlock(branches=0)
    with pytest.raises(TypeError, match="block=Conv2d"):
        T.branches_into_buffer(nn.Conv2d(2, 2, 1), torch.randn(1, 2, 3, 3))
    with pytest.raises(ValueError, match="threads=0"):
        T.autotune_model(nn.Conv2d(2, 2, 1), torch.randn(1, 2, 3, 3), threads=0)
