"""Pruning: exact sparsities, agreement with torch.nn.utils.prune, smaller models equal masked originals."""
from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

from lessons_lib import models, prune

torch.manual_seed(0)


def _teacher():
    torch.manual_seed(1)
    m = models.TeacherCNN(width=8)
    for mod in m.modules():  # non-trivial BN statistics, so pruning must carry them correctly
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.2, 1.5)
            mod.bias.data.uniform_(-0.3, 0.3)
    return m.eval()


@pytest.mark.parametrize("s", [0.0, 0.3, 0.9])
def test_layer_masks_match_torch_l1_unstructured(s):
    m = _teacher()
    masks = prune.magnitude_masks(m, s, scope="layer")
    for name, mod in prune.prunable_layers(m).items():
        ref = nn.Conv2d(1, 1, 1) if isinstance(mod, nn.Conv2d) else nn.Linear(1, 1)
        ref.weight = nn.Parameter(mod.weight.detach().clone())
        tprune.l1_unstructured(ref, "weight", amount=s)
        assert int(masks[name].sum()) == int(ref.weight_mask.sum())
        torch.testing.assert_close(masks[name], ref.weight_mask)


def test_global_masks_match_torch_global_unstructured():
    a, b = _teacher(), _teacher()
    masks = prune.magnitude_masks(a, 0.6, scope="global")
    params = [(mod, "weight") for mod in prune.prunable_layers(b).values()]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=0.6)
    for (name, _), (mod, _) in zip(prune.prunable_layers(a).items(), params):
        torch.testing.assert_close(masks[name], mod.weight_mask)
    total = sum(m.numel() for m in masks.values())
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(0.6 * total)


def test_apply_survives_training_steps_and_remove_bakes_zeros():
    m = _teacher().train()
    masks = prune.magnitude_masks(m, 0.5)
    prune.apply_masks(m, masks)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):
        loss = m(torch.randn(4, 3, 16, 16)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    prune.remove_masks(m)
    sp = prune.sparsity_of(m)
    assert all(abs(v - 0.5) < 0.01 for k, v in sp.items())
    assert not any(hasattr(mod, "parametrizations") and "weight" in mod.parametrizations for mod in m.modules())


def test_channel_pruned_model_is_smaller_and_equals_masked_original():
    m = _teacher()
    x = torch.randn(3, 3, 32, 32)
    for scope in ("layer", "global"):
        keep = prune.keep_indices(m, 0.5, "l1", scope)
        small = prune.prune_channels(m, keep).eval()
        assert sum(p.numel() for p in small.parameters()) < 0.5 * sum(p.numel() for p in m.parameters())
        torch.testing.assert_close(small(x), prune.channel_masked(m, keep).eval()(x), rtol=1e-5, atol=1e-5)
    assert [c.out_channels for c, _ in prune.conv_bn_pairs(small)] == [len(k) for k in keep]


def test_l1_scores_and_slimming():
    m = _teacher()
    pairs = prune.conv_bn_pairs(m)
    scores = prune.channel_scores(m, "l1")
    torch.testing.assert_close(scores[0], pairs[0][0].weight.abs().sum((1, 2, 3)))
    keep = prune.keep_indices(m, 0.25, "l1", "layer")
    # the kept filters are the largest-L1 ones
    dropped = sorted(set(range(len(scores[0]))) - set(keep[0].tolist()))
    assert scores[0][dropped].max() <= scores[0][keep[0]].min()
    # slimming ranks by |gamma| globally
    with torch.no_grad():
        pairs[2][1].weight[:] = 1e-4  # one layer's gammas almost zero -> pruned first
    slim = prune.slim_prune(m, 0.2)
    assert prune.conv_bn_pairs(slim)[2][0].out_channels < pairs[2][0].out_channels
    pen = prune.bn_l1_penalty(m)
    assert pen.item() == pytest.approx(sum(b.weight.abs().sum().item() for _, b in pairs), rel=1e-6)


def test_sensitivity_scan_shapes():
    m = _teacher()
    x = torch.randn(2, 3, 16, 16)
    ref = m(x).detach()
    scan = prune.sensitivity_scan(m, lambda mm: float((mm(x) - ref).abs().mean()), sparsities=(0.0, 0.9))
    assert set(scan) == set(prune.prunable_layers(m))
    assert all(v[0] == pytest.approx(0.0, abs=1e-6) and v[1] > 0 for v in scan.values())


@pytest.mark.parametrize("call,word", [
    (lambda: prune.magnitude_masks(_teacher(), 1.0), "sparsity=1.0"),
    (lambda: prune.magnitude_masks(_teacher(), -0.1), "sparsity=-0.1"),
    (lambda: prune.magnitude_masks(_teacher(), 0.5, scope="net"), "scope='net'"),
    (lambda: prune.magnitude_masks(_teacher(), 0.5, layers=["nope"]), "'nope'"),
    (lambda: prune.apply_masks(_teacher(), {"classifier": torch.ones(3)}), "shape"),
    (lambda: prune.channel_scores(_teacher(), "taylor"), "criterion='taylor'"),
    (lambda: prune.l1_channel_prune(nn.Linear(3, 3), 0.5), "needs .features"),
])
def test_bad_input(call, word):
    with pytest.raises((ValueError, TypeError), match=word.replace("(", r"\(").replace(".", r"\.")):
        call()


def test_keep_indices_for_counts_gives_the_same_architecture_for_any_criterion():
    m = _teacher()
    counts = [3, 8, 5, 16, 9, 30]
    for crit in ("l1", "bn"):
        keep = prune.keep_indices_for_counts(m, counts, crit)
        assert [len(k) for k in keep] == counts
        scores = prune.channel_scores(m, crit)
        for k, s in zip(keep, scores):  # the kept channels are the top-scoring ones
            rest = sorted(set(range(len(s))) - set(k.tolist()))
            assert not rest or s[rest].max() <= s[k].min()
        assert prune.channel_counts(prune.prune_channels(m, keep)) == counts
    with pytest.raises(ValueError, match=r"counts\[1\]=0"):
        prune.keep_indices_for_counts(m, [3, 0, 5, 16, 9, 30])
    with pytest.raises(ValueError, match="has 2 entries, the model has"):
        prune.keep_indices_for_counts(m, [3, 4])


def test_recalibrate_bn_sets_running_stats_to_the_batch_statistics():
    torch.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 4, 1), nn.BatchNorm2d(4))
    X = torch.randn(40, 3, 8, 8) * 2 + 1
    prune.recalibrate_bn(m, X, batch_size=16)        # three batches: 16, 16, 8 -> cumulative average
    assert not m.training and m[1].momentum == 0.1
    h = m[0](X).detach()
    # momentum=None averages the per-batch statistics with equal weight
    chunks = [h[i:i + 16] for i in range(0, 40, 16)]
    mean = torch.stack([c.mean((0, 2, 3)) for c in chunks]).mean(0)
    var = torch.stack([c.var((0, 2, 3), unbiased=True) for c in chunks]).mean(0)
    torch.testing.assert_close(m[1].running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m[1].running_var, var, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="X=.* must be a Tensor"):
        prune.recalibrate_bn(m, torch.randn(3, 8, 8))
