"""lessons_lib.models and lessons_lib.train."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from lessons_lib import data, models, train


def test_models_shapes_and_sizes():
    x = torch.randn(4, 3, 32, 32)
    t, s = models.build("teacher"), models.build("student")
    assert t(x).shape == (4, 10) and s(x).shape == (4, 10)
    assert t.embed(x).shape == (4, 128) and s.embed(x).shape == (4, 32)
    n_t = sum(p.numel() for p in t.parameters())
    n_s = sum(p.numel() for p in s.parameters())
    assert n_t > 20 * n_s
    # any input size works (adaptive pooling): digits are 1x8x8
    assert models.TeacherCNN(in_ch=1, width=8)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_models_bad_input():
    with pytest.raises(ValueError, match="name='resnet'"):
        models.build("resnet")
    with pytest.raises(ValueError, match="num_classes=1"):
        models.TeacherCNN(num_classes=1)


def test_seed_everything_repeatable():
    train.seed_everything(7)
    a = torch.randn(5)
    train.seed_everything(7)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError, match="seed=-1"):
        train.seed_everything(-1)


def test_fit_learns_and_is_repeatable():
    s = data.digits_splits()
    accs, weights = [], []
    for _ in range(2):
        train.seed_everything(0)
        m = models.StudentCNN(in_ch=1, width=8)
        h = train.fit(m, s.train, val=s.val, epochs=4, lr=1e-2, batch_size=64, seed=0, progress_bar=False)
        accs.append(train.evaluate(m, s.test)["acc"])
        weights.append(m.classifier.weight.detach().clone())
        assert len(h.train_loss) == 4 and h.train_loss[-1] < h.train_loss[0]
    assert accs[0] > 0.8  # real learning on real digits
    assert accs[0] == accs[1] and torch.equal(weights[0], weights[1])


def test_evaluate_matches_direct_computation():
    torch.manual_seed(0)
    m = models.StudentCNN(in_ch=1, width=4).eval()
    X, y = torch.randn(70, 1, 8, 8), torch.randint(0, 10, (70,))
    res = train.evaluate(m, (X, y), batch_size=16)
    with torch.no_grad():
        logits = m(X)
    assert res["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert res["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


def test_custom_loss_and_after_step_hooks_are_used():
    X, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    calls = {"loss": 0, "step": 0}

    def loss_fn(model, xb, yb):
        calls["loss"] += 1
        return F.cross_entropy(model(xb), yb)

    def after(model):
        calls["step"] += 1

    train.fit(models.StudentCNN(in_ch=1, width=4), (X, y), epochs=2, batch_size=32, loss_fn=loss_fn,
              after_step=after, progress_bar=False)
    assert calls == {"loss": 4, "step": 4}


def test_data_argument_validation():
    with pytest.raises(TypeError, match="must be a torch Dataset"):
        train.fit(models.StudentCNN(), [1, 2, 3], epochs=1)
    with pytest.raises(ValueError, match="as many rows"):
        train.evaluate(models.StudentCNN(), (torch.randn(3, 3, 8, 8), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match="lr=0"):
        train.fit(models.StudentCNN(), (torch.randn(3, 3, 8, 8), torch.zeros(3, dtype=torch.long)), lr=0)


def test_progress_is_silent_when_quiet(monkeypatch):
    monkeypatch.setenv("LESSONS_QUIET", "1")
    it = [1, 2, 3]
    assert train.progress(it) is it
    monkeypatch.setenv("LESSONS_QUIET", "0")
    assert train.progress(it) is not it
