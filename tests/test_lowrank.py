"""SVD factorisation: reconstruction error equals what the discarded singular values predict."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib import lowrank

torch.manual_seed(0)


def test_low_rank_error_matches_discarded_singular_values():
    W = torch.randn(40, 25)
    s = torch.linalg.svdvals(W.double())
    for r in (1, 5, 12, 25):
        A, B = lowrank.low_rank(W, r)
        err = torch.linalg.norm((W - A @ B).double())
        assert err.item() == pytest.approx(s[r:].pow(2).sum().sqrt().item(), rel=1e-4, abs=1e-5)
        assert lowrank.predicted_error(W, r) == pytest.approx(err.item(), rel=1e-4, abs=1e-5)


def test_factorized_linear_full_rank_is_exact_and_smaller_at_low_rank():
    lin = nn.Linear(30, 20)
    x = torch.randn(7, 30)
    full = lowrank.factorize_linear(lin, 20)
    torch.testing.assert_close(full(x), lin(x), rtol=1e-4, atol=1e-4)
    small = lowrank.factorize_linear(lin, 4)
    assert sum(p.numel() for p in small.parameters()) == 4 * (30 + 20) + 20
    # output error equals the rank-4 weight error applied to x
    A, B = lowrank.low_rank(lin.weight, 4)
    torch.testing.assert_close(small(x), x @ (A @ B).t() + lin.bias, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,stride,padding", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (1, 1, 0)])
def test_factorized_conv_channel_mode(k, stride, padding):
    conv = nn.Conv2d(6, 10, k, stride=stride, padding=padding, bias=True)
    x = torch.randn(2, 6, 11, 11)
    full_rank = min(10, 6 * k * k)
    torch.testing.assert_close(lowrank.factorize_conv(conv, full_rank)(x), conv(x), rtol=1e-4, atol=1e-4)
    r = 3
    A, B = lowrank.low_rank(conv.weight.reshape(10, -1), r)
    want = F.conv2d(x, (A @ B).reshape_as(conv.weight), conv.bias, stride, padding)
    torch.testing.assert_close(lowrank.factorize_conv(conv, r)(x), want, rtol=1e-4, atol=1e-4)


def test_factorized_conv_spatial_mode_exact_at_full_rank():
    conv = nn.Conv2d(4, 8, 5, padding=2, bias=False)
    x = torch.randn(1, 4, 12, 12)
    full = min(4 * 5, 8 * 5)
    seq = lowrank.factorize_conv(conv, full, mode="spatial")
    torch.testing.assert_close(seq(x), conv(x), rtol=1e-4, atol=1e-4)
    assert seq[0].kernel_size == (5, 1) and seq[1].kernel_size == (1, 5)
    # a separable (rank-1 per channel pair) kernel is reproduced with a small rank
    v, h = torch.randn(2, 4, 5, 1), torch.randn(8, 2, 1, 5)
    sep = nn.Conv2d(4, 8, 5, padding=2, bias=False)
    with torch.no_grad():
        sep.weight.copy_(torch.einsum("riy,orx->oiyx", v[..., 0], h[:, :, 0]))
    torch.testing.assert_close(lowrank.factorize_conv(sep, 2, mode="spatial")(x), sep(x), rtol=1e-4, atol=1e-4)


def test_rank_for_energy():
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])
    # energies 9, 4, 1 of 14
    assert lowrank.rank_for_energy(s, 9 / 14) == 1
    assert lowrank.rank_for_energy(s, 0.7) == 2
    assert lowrank.rank_for_energy(s, 1.0) == 3
    with pytest.raises(ValueError, match="fraction=0"):
        lowrank.rank_for_energy(s, 0)


@pytest.mark.parametrize("call,word", [
    (lambda: lowrank.low_rank(torch.randn(4, 3), 0), "rank=0"),
    (lambda: lowrank.low_rank(torch.randn(4, 3), 4), "rank=4"),
    (lambda: lowrank.factorize_conv(nn.Conv2d(4, 4, 3, groups=2), 2), "groups=2"),
    (lambda: lowrank.factorize_conv(nn.Conv2d(4, 4, 3), 2, mode="tucker"), "mode='tucker'"),
    (lambda: lowrank.factorize_linear(nn.Conv2d(4, 4, 3), 2), "must be an nn.Linear"),
    (lambda: lowrank.low_rank(torch.randn(4, 3), 2.0), "rank=2.0"),
])
def test_bad_input(call, word):
    with pytest.raises((ValueError, TypeError), match=word.replace("(", r"\(")):
        call()


def _random_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def test_factorize_convs_equals_model_with_low_rank_weights():
    from lessons_lib import models
    torch.manual_seed(3)
    m = _random_bn(models.TeacherCNN(width=8))
    x = torch.randn(2, 3, 16, 16)
    fm, ranks = lowrank.factorize_convs(m, 0.6, skip=("features.0.0",))
    assert "features.0.0" not in ranks and ranks  # skipped layer kept, others replaced
    ref = _random_bn(models.TeacherCNN(width=8))
    ref.load_state_dict(m.state_dict())
    for name, r in ranks.items():
        conv = ref.get_submodule(name)
        assert r == lowrank.rank_for_energy(lowrank.singular_values(conv.weight), 0.6)
        A, B = lowrank.low_rank(conv.weight.reshape(conv.out_channels, -1), r)
        with torch.no_grad():
            conv.weight.copy_((A @ B).reshape_as(conv.weight))
        # each replacement is smaller than the layer it replaces
        assert sum(p.numel() for p in fm.get_submodule(name).parameters()) < conv.weight.numel()
    torch.testing.assert_close(fm.eval()(x), ref(x), rtol=1e-4, atol=1e-4)
    # the original is untouched; at fraction 1 nothing is worth factorising
    assert isinstance(m.features[0][0], nn.Conv2d)
    assert lowrank.factorize_convs(m, 1.0)[1] == {}


def test_factorize_convs_spatial_and_bad_input():
    from lessons_lib import models
    m = _random_bn(models.TeacherCNN(width=8))
    fm, ranks = lowrank.factorize_convs(m, 0.7, mode="spatial")
    assert ranks and all(fm.get_submodule(n)[0].kernel_size == (3, 1) for n in ranks)
    with pytest.raises(ValueError, match="mode='cp'"):
        lowrank.factorize_convs(m, 0.7, mode="cp")
    with pytest.raises(ValueError, match="fraction=1.5"):
        lowrank.factorize_convs(m, 1.5)
    with pytest.raises(TypeError, match="model=int"):
        lowrank.factorize_convs(3, 0.5)
