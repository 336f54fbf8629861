"""Distillation losses vs direct formulas and torch."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lessons_lib import distill

torch.manual_seed(0)


def test_softmax_t_matches_definition():
    z = torch.randn(4, 7) * 3
    for T in (0.5, 1.0, 4.0):
        want = torch.exp(z / T) / torch.exp(z / T).sum(1, keepdim=True)
        torch.testing.assert_close(distill.softmax_t(z, T), want)
    # higher T -> flatter distribution (higher entropy)
    ent = lambda p: -(p * p.log()).sum(1).mean()  # noqa: E731
    assert ent(distill.softmax_t(z, 1)) < ent(distill.softmax_t(z, 4)) < ent(distill.softmax_t(z, 20))


def test_kd_loss_worked_example_from_the_notes():
    s, t = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])
    assert distill.kd_loss(s, t, 2.0).item() == pytest.approx(1.280627, abs=1e-5)


def test_kd_loss_equals_torch_kl_div_batchmean():
    s, t = torch.randn(16, 10), torch.randn(16, 10) * 2
    for T in (1.0, 3.0, 8.0):
        want = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
        torch.testing.assert_close(distill.kd_loss(s, t, T), want)


def test_kd_loss_gradient_only_to_student_and_zero_at_match():
    s = torch.randn(8, 5, requires_grad=True)
    t = torch.randn(8, 5, requires_grad=True)
    distill.kd_loss(s, t, 3.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None
    assert distill.kd_loss(t.detach(), t.detach(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("call,word", [
    (lambda: distill.softmax_t(torch.randn(2, 3), 0), "T=0"),
    (lambda: distill.kd_loss(torch.randn(2, 3), torch.randn(2, 3), -1.0), "T=-1.0"),
    (lambda: distill.kd_loss(torch.randn(2, 3), torch.randn(2, 4), 1.0), "shape"),
    (lambda: distill.rkd_distance_loss(torch.randn(1, 3), torch.randn(1, 3)), "N >= 2"),
])
def test_bad_input(call, word):
    with pytest.raises((ValueError, TypeError), match=word.replace("(", r"\(")):
        call()


def test_fitnet_loss_is_mse_after_adapter():
    a = distill.HintAdapter(8, 16)
    s, t = torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(distill.fitnet_loss(s, t, a), ((a(s) - t) ** 2).mean())
    with pytest.raises(ValueError, match="shape"):
        distill.fitnet_loss(s, torch.randn(2, 8, 4, 4), a)


def _rkd_distance_reference(s, t):
    """Loop version of Park et al.'s distance term."""
    n = s.shape[0]
    def norm_d(e):
        d = torch.zeros(n, n)
        for i, j in itertools.product(range(n), range(n)):
            if i != j:
                d[i, j] = (e[i] - e[j]).norm()
        return d / d[d > 0].mean()
    ds, dt = norm_d(s), norm_d(t)
    x = (ds - dt).abs()
    return torch.where(x < 1, 0.5 * x * x, x - 0.5).mean()


def _rkd_angle_reference(s, t):
    n = s.shape[0]
    def ang(e):
        out = torch.zeros(n, n, n)
        for a, b, c in itertools.product(range(n), repeat=3):
            u, v = e[b] - e[a], e[c] - e[a]
            if u.norm() > 0 and v.norm() > 0:
                out[a, b, c] = (u / u.norm()) @ (v / v.norm())
        return out.reshape(-1)
    x = (ang(s) - ang(t)).abs()
    return torch.where(x < 1, 0.5 * x * x, x - 0.5).mean()


def test_rkd_losses_match_loop_references():
    s, t = torch.randn(6, 5), torch.randn(6, 9) * 3
    torch.testing.assert_close(distill.rkd_distance_loss(s, t), _rkd_distance_reference(s, t), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(distill.rkd_angle_loss(s, t), _rkd_angle_reference(s, t), rtol=1e-5, atol=1e-6)


def test_rkd_is_invariant_to_scale_rotation_and_translation_of_the_student():
    t = torch.randn(8, 4)
    q, _ = torch.linalg.qr(torch.randn(4, 4))
    s = 5.0 * t @ q + 2.0
    assert distill.rkd_distance_loss(s, t).item() == pytest.approx(0.0, abs=1e-6)
    assert distill.rkd_angle_loss(s, t).item() == pytest.approx(0.0, abs=1e-5)
    s_req = s.clone().requires_grad_(True)
    t_req = t.clone().requires_grad_(True)
    (distill.rkd_distance_loss(s_req + torch.randn_like(s), t_req)
     + distill.rkd_angle_loss(s_req, t_req + 0.1)).backward()
    assert t_req.grad is None and s_req.grad is not None and math.isfinite(s_req.grad.sum().item())


def _tiny():
    from lessons_lib import models
    torch.manual_seed(2)
    return models.StudentCNN(width=4).eval()


def test_teacher_outputs_match_forward_and_embed():
    t = _tiny()
    x = torch.randn(10, 3, 16, 16)
    logits, emb = distill.teacher_outputs(t, x, batch_size=3)
    torch.testing.assert_close(logits, t(x))
    torch.testing.assert_close(emb, t.embed(x))
    with pytest.raises(TypeError, match="needs .embed"):
        distill.teacher_outputs(torch.nn.Linear(3, 3), x)


def test_indexed_objective_equals_the_sum_of_its_terms():
    s = _tiny()
    s.hint = distill.HintAdapter(16, 6, spatial=False)
    n = 12
    x = torch.randn(n, 3, 16, 16)
    labels = torch.randint(0, 10, (n,))
    tl, te = torch.randn(n, 10) * 3, torch.randn(n, 6)
    labelled = torch.arange(n) % 3 == 0
    i = torch.tensor([0, 1, 3, 5, 6, 9])
    lf = distill.indexed_objective(labels, labelled=labelled, teacher_logits=tl, teacher_emb=te, T=3.0,
                                   alpha=0.4, hint=0.5, rkd_d=2.0, rkd_a=1.5, adapter=s.hint)
    emb = s.embed(x[i])
    z = s.classifier(emb)
    lab = labelled[i]
    want = (0.6 * F.cross_entropy(z[lab], labels[i][lab]) + 0.4 * distill.kd_loss(z, tl[i], 3.0)
            + 0.5 * distill.fitnet_loss(emb, te[i], s.hint) + 2.0 * distill.rkd_distance_loss(emb, te[i])
            + 1.5 * distill.rkd_angle_loss(emb, te[i]))
    torch.testing.assert_close(lf(s, x[i], i), want)
    # plain cross-entropy when no teacher term is asked for
    torch.testing.assert_close(distill.indexed_objective(labels)(s, x[i], i), F.cross_entropy(s(x[i]), labels[i]))


@pytest.mark.parametrize("kw,word", [
    (dict(alpha=0.5), "teacher_logits"),
    (dict(alpha=2.0, teacher_logits=torch.randn(4, 3)), "alpha=2.0"),
    (dict(hint=1.0, teacher_emb=torch.randn(4, 5)), "adapter"),
    (dict(rkd_d=-1.0), "rkd_d=-1.0"),
    (dict(rkd_a=1.0), "teacher_emb"),
    (dict(labelled=torch.ones(3, dtype=torch.bool)), "labelled=.* must be a bool"),
])
def test_indexed_objective_bad_input(kw, word):
    with pytest.raises(ValueError, match=word):
        distill.indexed_objective(torch.zeros(4, dtype=torch.long), **kw)


def test_indexed_objective_rejects_an_adapter_outside_the_student():
    s = _tiny()
    a = distill.HintAdapter(16, 6, spatial=False)
    lf = distill.indexed_objective(torch.zeros(4, dtype=torch.long), teacher_emb=torch.randn(4, 6), hint=1.0, adapter=a)
    with pytest.raises(ValueError, match="not a submodule"):
        lf(s, torch.randn(4, 3, 8, 8), torch.arange(4))
