"""Knowledge distillation losses: response-based (Hinton), feature-based (FitNet), relation-based (RKD).

Document 000 describes distillation with a softened softmax (temperature T); document 002 sorts
methods into response-, feature- and relation-based; document 004 uses a teacher to pseudo-label
unlabelled data (data distillation).

* softmax with temperature: ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``
* Hinton et al. 2015: ``L_KD = T^2 * KL(p_teacher^T || p_student^T)`` (batch mean); the T^2 keeps the
  soft-target gradients, which shrink as 1/T^2, comparable across temperatures.
* FitNets (Romero et al. 2015): ``L_hint = MSE(r(v_student), u_teacher)``, ``r`` a learned adapter.
* RKD (Park et al. 2019): smooth-L1 between pairwise distances (each normalised by its mean over
  distinct pairs) and between angles (cosines of normalised difference vectors); teacher side without gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import validate as V


def _check_T(T: float) -> float:
    return V.real("T", T, 0, low_open=True)


def _check_logits(name: str, x: torch.Tensor) -> None:
    V.tensor(name, x, dtype="floating", layout="Tensor[N, classes]")


def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over dim 1. ``Tensor[N, C] -> Tensor[N, C]``.

    Args:
        logits: floating-point ``Tensor[N, C]``.
        T: the temperature, a number > 0.

    Returns:
        ``Tensor[N, C]``: probabilities, each row summing to 1.
    """
    _check_logits("logits", logits)
    return F.softmax(logits / _check_T(T), dim=1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))`` averaged over the batch (Hinton et al.).

    Args:
        student_logits: floating-point ``Tensor[N, C]``.
        teacher_logits: floating-point ``Tensor[N, C]`` of the same shape; detached (no gradient to the teacher).
        T: the temperature, a number > 0.

    Returns:
        Scalar ``Tensor``: the loss, already multiplied by ``T^2``.
    """
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"teacher_logits={V.show(teacher_logits)} must have the shape of "
                         f"student_logits={V.show(student_logits)}")
    T = _check_T(T)
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()
    return kl * T * T


class HintAdapter(nn.Module):
    """FitNet regressor ``r``: a 1x1 conv (feature maps) or a linear map (vectors) from student to teacher width.

    Args:
        student_ch: student channels (or features), an int >= 1.
        teacher_ch: teacher channels (or features), an int >= 1.
        spatial: True: a bias-free ``Conv2d(student_ch, teacher_ch, 1)`` on ``Tensor[N, student_ch, H, W]``;
            False: a bias-free ``Linear(student_ch, teacher_ch)`` on ``Tensor[N, student_ch]``.
    """

    def __init__(self, student_ch: int, teacher_ch: int, spatial: bool = True):
        super().__init__()
        V.integer("student_ch", student_ch, 1), V.integer("teacher_ch", teacher_ch, 1)
        V.boolean("spatial", spatial)
        self.proj = nn.Conv2d(student_ch, teacher_ch, 1, bias=False) if spatial else nn.Linear(student_ch, teacher_ch, bias=False)

    def forward(self, x):
        return self.proj(x)


def fitnet_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, adapter: nn.Module) -> torch.Tensor:
    """``MSE(adapter(student_feat), teacher_feat)`` (mean over elements), teacher without gradient.

    Args:
        student_feat: floating-point student features, e.g. ``Tensor[N, C_s, H, W]``.
        teacher_feat: floating-point teacher features with the shape of ``adapter(student_feat)``.
        adapter: the regressor ``r``, an ``nn.Module`` such as a :class:`HintAdapter`.

    Returns:
        Scalar ``Tensor``: the mean squared error.
    """
    V.tensor("student_feat", student_feat, dtype="floating")
    V.tensor("teacher_feat", teacher_feat, dtype="floating")
    V.module("adapter", adapter)
    out = adapter(student_feat)
    if out.shape != teacher_feat.shape:
        raise ValueError(f"teacher_feat={V.show(teacher_feat)} must have the shape of adapter(student_feat), "
                         f"{tuple(out.shape)}")
    return F.mse_loss(out, teacher_feat.detach())


def _check_emb(name: str, e: torch.Tensor) -> None:
    V.tensor(name, e, dtype="floating")
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"{name}={V.show(e)} must be a Tensor[N, D] with N >= 2")


def _check_rows(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> None:
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ValueError(f"teacher_emb={V.show(teacher_emb)} must have as many rows as "
                         f"student_emb={V.show(student_emb)}")


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances ``Tensor[N, N]`` with a zero diagonal (as RKD's ``pdist``).

    Args:
        e: floating-point embeddings ``Tensor[N, D]``.
        eps: lower clamp of the squared distances before the square root, a number >= 0.

    Returns:
        ``Tensor[N, N]``: ``||e_a - e_b||`` for every pair, 0 on the diagonal.
    """
    V.tensor("e", e, dtype="floating", layout="Tensor[N, D]")
    V.real("eps", eps, 0)
    sq = (e * e).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp(min=eps)
    d = d2.sqrt().clone()
    d.fill_diagonal_(0)
    return d


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    d = pairwise_distances(e)
    return d / d[d > 0].mean()


def rkd_distance_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 between the students' and teacher's mean-normalised pairwise distances (Park et al. 2019).

    Args:
        student_emb: floating-point ``Tensor[N, D_s]`` with ``N >= 2``.
        teacher_emb: floating-point ``Tensor[N, D_t]`` with the same ``N`` (``D_t`` may differ); no gradient.

    Returns:
        Scalar ``Tensor``: the mean smooth-L1 over the ``N x N`` distance matrix.
    """
    _check_emb("student_emb", student_emb)
    _check_emb("teacher_emb", teacher_emb)
    _check_rows(student_emb, teacher_emb)
    with torch.no_grad():
        t = _normalised_distances(teacher_emb)
    return F.smooth_l1_loss(_normalised_distances(student_emb), t)


def _angles(e: torch.Tensor) -> torch.Tensor:
    diff = e.unsqueeze(0) - e.unsqueeze(1)          # diff[a, b] = e_b - e_a
    n = F.normalize(diff, p=2, dim=2)
    return torch.bmm(n, n.transpose(1, 2)).reshape(-1)  # cos of the angle at vertex a, for every (a, b, c)


def rkd_angle_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 between the cosines of all triplet angles of student and teacher embeddings.

    Args:
        student_emb: floating-point ``Tensor[N, D_s]`` with ``N >= 2``.
        teacher_emb: floating-point ``Tensor[N, D_t]`` with the same ``N`` (``D_t`` may differ); no gradient.

    Returns:
        Scalar ``Tensor``: the mean smooth-L1 over the ``N^3`` cosines (memory grows as ``N^3``).
    """
    _check_emb("student_emb", student_emb)
    _check_emb("teacher_emb", teacher_emb)
    _check_rows(student_emb, teacher_emb)
    with torch.no_grad():
        t = _angles(teacher_emb)
    return F.smooth_l1_loss(_angles(student_emb), t)


# ------------------------------------------------------------------------- training objectives
@torch.no_grad()
def teacher_outputs(teacher: nn.Module, X: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits Tensor[N, C], embeddings Tensor[N, D])`` of a frozen teacher (eval mode) with an
    ``embed`` method, computed once so that training the student never runs the teacher again.

    Args:
        teacher: an ``nn.Module`` with an ``embed(x)`` method and an ``nn.Module`` ``classifier``; put in eval mode.
        X: floating-point, non-empty inputs, e.g. ``Tensor[N, C, H, W]``, on the teacher's device.
        batch_size: inputs per ``embed`` call, an int >= 1.

    Returns:
        ``(logits, embeddings)``: ``Tensor[N, C]`` and ``Tensor[N, D]``, computed without gradient.
    """
    V.module("teacher", teacher)
    if not hasattr(teacher, "embed") or not isinstance(getattr(teacher, "classifier", None), nn.Module):
        raise TypeError(f"teacher={type(teacher).__name__} needs .embed(x) and a .classifier")
    V.tensor("X", X, dtype="floating", non_empty=True)
    batch_size = V.integer("batch_size", batch_size, 1)
    teacher.eval()
    embs = torch.cat([teacher.embed(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    return teacher.classifier(embs), embs


def indexed_objective(labels: torch.Tensor, *, labelled: torch.Tensor | None = None,
                      teacher_logits: torch.Tensor | None = None, teacher_emb: torch.Tensor | None = None,
                      T: float = 4.0, alpha: float = 0.0, hint: float = 0.0, rkd_d: float = 0.0,
                      rkd_a: float = 0.0, adapter: nn.Module | None = None):
    """A ``loss_fn(model, x, i)`` for :func:`lessons_lib.train.fit` on a dataset ``(X, arange(N))``.

    The batch's row indices ``i`` look up precomputed tables (``labels``, and the teacher's outputs), so
    the teacher never runs during training. The loss is
    ``(1 - alpha) * CE(z[labelled], labels) + alpha * kd_loss(z, teacher_logits, T)
    + hint * fitnet_loss(emb, teacher_emb, adapter) + rkd_d * rkd_distance + rkd_a * rkd_angle``,
    where ``emb = model.embed(x)``, ``z = model.classifier(emb)`` and CE is averaged over the batch rows
    whose ``labelled`` flag is set (all rows when ``labelled`` is None). ``adapter`` must be a submodule
    of the student (e.g. ``student.hint = HintAdapter(...)``) so that the optimiser trains it.

    Args:
        labels: integer ``Tensor[N]``, the class of every row of the dataset.
        labelled: bool ``Tensor[N]``, the rows whose label the CE term may use, or ``None`` (all rows).
        teacher_logits: floating-point ``Tensor[N, classes]`` (:func:`teacher_outputs`); required if ``alpha > 0``.
        teacher_emb: floating-point ``Tensor[N, D]`` (:func:`teacher_outputs`); required if ``hint``, ``rkd_d``
            or ``rkd_a`` is > 0.
        T: temperature of the KD term, a number > 0.
        alpha: weight of the KD term, a number in [0, 1] (the CE term gets ``1 - alpha``).
        hint, rkd_d, rkd_a: weights of the FitNet, RKD distance and RKD angle terms, numbers >= 0 (the RKD terms
            need batches of at least 2 rows).
        adapter: the FitNet regressor (required if ``hint > 0``), or ``None``.

    Returns:
        ``loss_fn(model, x, i) -> scalar Tensor``, with ``i`` the batch's row indices into the tables; ``model``
        needs ``embed`` and ``classifier``.
    """
    V.tensor("labels", labels, dtype="integer", ndim=1)
    n = labels.shape[0]
    V.tensor("labelled", labelled, dtype="bool", none_ok=True)
    V.tensor("teacher_logits", teacher_logits, dtype="floating", layout="Tensor[N, classes]", none_ok=True)
    V.tensor("teacher_emb", teacher_emb, dtype="floating", layout="Tensor[N, D]", none_ok=True)
    _check_T(T)
    V.real("alpha", alpha, 0.0, 1.0)
    for name, w in (("hint", hint), ("rkd_d", rkd_d), ("rkd_a", rkd_a)):
        V.real(name, w, 0.0)
    V.module("adapter", adapter, none_ok=True)
    if alpha > 0:
        if teacher_logits is None or teacher_logits.shape[0] != n:
            raise ValueError("alpha > 0 needs teacher_logits with one row per label")
    if (hint > 0 or rkd_d > 0 or rkd_a > 0) and (teacher_emb is None or teacher_emb.shape[0] != n):
        raise ValueError("hint / rkd_d / rkd_a > 0 need teacher_emb with one row per label")
    if hint > 0 and adapter is None:
        raise ValueError("hint > 0 needs an adapter (a HintAdapter registered on the student)")
    if labelled is None:
        labelled = torch.ones(n, dtype=torch.bool)
    if labelled.shape != (n,) or labelled.dtype != torch.bool:
        raise ValueError(f"labelled={V.show(labelled)} must be a bool Tensor[{n}] (one flag per label)")

    def loss_fn(model: nn.Module, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        if hint > 0 and not any(p is q for p in adapter.parameters() for q in model.parameters()):
            raise ValueError("the adapter is not a submodule of the student: set student.hint = adapter")
        i = i.cpu()
        emb = model.embed(x)
        z = model.classifier(emb)
        lab = labelled[i]
        loss = z.new_zeros(())
        if alpha < 1 and lab.any():
            loss = loss + (1 - alpha) * F.cross_entropy(z[lab.to(z.device)], labels[i][lab].to(z.device))
        if alpha > 0:
            loss = loss + alpha * kd_loss(z, teacher_logits[i].to(z.device), T)
        if hint > 0:
            loss = loss + hint * fitnet_loss(emb, teacher_emb[i].to(z.device), adapter)
        if rkd_d > 0 and len(i) >= 2:  # relations need two rows: a last batch of one row adds no RKD term
            loss = loss + rkd_d * rkd_distance_loss(emb, teacher_emb[i].to(z.device))
        if rkd_a > 0 and len(i) >= 2:
            loss = loss + rkd_a * rkd_angle_loss(emb, teacher_emb[i].to(z.device))
        return loss

    return loss_fn
