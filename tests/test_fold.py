"""lessons_lib.fold.fold_batchnorm against torch.nn.utils.fusion.fuse_conv_bn_eval on random conv + BN pairs."""
from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lessons_lib import fold


def _random_pair(seed: int, dtype: torch.dtype) -> tuple[nn.Conv2d, nn.BatchNorm2d, tuple]:
    """A random eval-mode Conv2d (groups, bias, stride, padding, dilation, padding mode) and a BN with random
    running statistics, affine parameters (or none) and eps; plus an input shape."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    g = rng.choice([1, 2, 3, 4])
    c_in, c_out = g * rng.randint(1, 4), g * rng.randint(1, 4)
    if rng.random() < 0.25:  # depthwise
        g = c_in = c_out = rng.randint(2, 8)
    k = (rng.choice([1, 3, 5]), rng.choice([1, 2, 3]))
    conv = nn.Conv2d(c_in, c_out, k, stride=rng.choice([1, 2]), padding=(rng.randint(0, 2), rng.randint(0, 2)),
                     dilation=rng.choice([1, 2]), groups=g, bias=rng.random() < 0.5,
                     padding_mode=rng.choice(["zeros", "zeros", "reflect", "circular"]))
    bn = nn.BatchNorm2d(c_out, eps=rng.choice([1e-5, 1e-3, 0.1]), affine=rng.random() < 0.8)
    with torch.no_grad():
        bn.running_mean.normal_(0, 2)
        bn.running_var.uniform_(0.05, 4.0)
        if bn.affine:
            bn.weight.normal_(0, 1.5)
            bn.bias.normal_(0, 1)
    shape = (2, c_in, rng.randint(9, 14), rng.randint(9, 14))
    return conv.to(dtype).eval(), bn.to(dtype).eval(), shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(40))
def test_fold_batchnorm_equals_torch_fuse_conv_bn_eval(seed, dtype):
    conv, bn, shape = _random_pair(seed, dtype)
    ours, ref = fold.fold_batchnorm(conv, bn), fuse_conv_bn_eval(conv, bn)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert ours.weight.dtype == ref.weight.dtype == dtype and ours.bias is not None
    torch.testing.assert_close(ours.weight, ref.weight, **tol)
    torch.testing.assert_close(ours.bias, ref.bias, **tol)
    for attr in ("stride", "padding", "dilation", "groups", "padding_mode", "kernel_size"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    x = torch.randn(*shape, dtype=dtype)
    with torch.no_grad():
        want = bn(conv(x))
        torch.testing.assert_close(ours(x), ref(x), **tol)
        torch.testing.assert_close(ours(x), want, rtol=1e-4 if dtype == torch.float32 else 1e-10,
                                   atol=1e-4 if dtype == torch.float32 else 1e-10)
    assert conv.training is False and bn.training is False  # the inputs are left as they were
