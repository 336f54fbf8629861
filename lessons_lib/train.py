"""Training and evaluation helpers shared by every lesson.

Progress bars come from ``tqdm.auto``: a widget bar in JupyterLab, text in a terminal, and nothing
at all in headless runs (``LESSONS_QUIET=1``, which ``make test`` / ``make run`` set).
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import validate as V

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch ``Generator`` seeded the same.

    Args:
        seed: an int >= 0 (NumPy gets ``seed % 2**32``).
        deterministic: if True, also ask torch for deterministic kernels where that is cheap
            (cuDNN: ``deterministic=True``, ``benchmark=False``), so the same seed gives the same numbers on the
            same machine. False leaves those flags as they are.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``.
    """
    seed = V.integer("seed", seed, 0)
    V.boolean("deterministic", deterministic)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def quiet() -> bool:
    """True in headless runs (``LESSONS_QUIET=1``): progress bars stay silent.

    Returns:
        ``bool``: False when ``LESSONS_QUIET`` is unset, empty, ``"0"``, ``"false"`` or ``"False"``, else True.
    """
    return os.environ.get("LESSONS_QUIET", "") not in ("", "0", "false", "False")


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """``tqdm.auto`` over ``iterable`` unless running headless.

    Args:
        iterable: what to iterate over (not a string).
        total: the number of items for the bar, an int >= 0, or ``None`` (tqdm uses ``len(iterable)`` if it can).
        desc: the bar's label (a str).
        enabled: True / False to force the bar on / off; ``None``: on unless :func:`quiet`.

    Returns:
        A ``tqdm`` wrapper of ``iterable``, or ``iterable`` itself when the bar is off.
    """
    V.iterable("iterable", iterable)
    V.integer("total", total, 0, none_ok=True)
    V.string("desc", desc)
    V.boolean("enabled", enabled, none_ok=True)
    if enabled is None:
        enabled = not quiet()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def as_dataset(data) -> Dataset:
    """A Dataset, or a tuple ``(X, y)`` of tensors, as a Dataset.

    Args:
        data: a ``torch.utils.data.Dataset``, or a tuple / list ``(X, y)`` of two tensors (at least 1-d) with
            the same number of rows.

    Returns:
        ``Dataset``: ``data`` itself, or ``TensorDataset(X, y)``.
    """
    return _dataset("data", data)


def _dataset(name: str, data) -> Dataset:
    if isinstance(data, Dataset):
        if hasattr(data, "__len__") and len(data) == 0:
            raise ValueError(f"{name}={type(data).__name__} is empty; need at least one example")
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if data[0].ndim == 0 or data[1].ndim == 0 or data[0].shape[0] != data[1].shape[0]:
            raise ValueError(f"{name}=(X, y) must have as many rows: X has {tuple(data[0].shape)[:1]}, "
                             f"y has {tuple(data[1].shape)[:1]}")
        if data[0].shape[0] == 0:
            raise ValueError(f"{name}=(X, y) is empty; need at least one example")
        return TensorDataset(*data)
    raise TypeError(f"{name}={type(data).__name__} must be a torch Dataset or a tuple (X, y) of tensors")


def tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` of a TensorDataset or tuple, for fast full-batch work.

    Args:
        data: as in :func:`as_dataset`; another ``Dataset`` is read item by item.

    Returns:
        ``(X, y)``: the first two tensors of a ``TensorDataset`` (or the tuple's), else the items stacked
        (``torch.stack`` of the inputs, ``torch.as_tensor`` of the targets).
    """
    ds = as_dataset(data)
    if isinstance(ds, TensorDataset):
        return ds.tensors[0], ds.tensors[1]
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs), torch.as_tensor(ys)


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(model(x), y)``: the default ``loss_fn`` of :func:`fit`.

    Args:
        model: an ``nn.Module`` returning logits ``Tensor[N, classes]``.
        x: the input batch, e.g. ``Tensor[N, C, H, W]``.
        y: class indices, integer ``Tensor[N]`` (or class probabilities, floating ``Tensor[N, classes]``).

    Returns:
        Scalar ``Tensor``: the cross-entropy averaged over the batch.
    """
    V.module("model", model)
    V.tensor("x", x)
    V.tensor("y", y, dtype="number")
    return F.cross_entropy(model(x), y)


@dataclass
class History:
    """Per-epoch training loss and (when a validation set is given) validation accuracy."""

    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    @property
    def best_val_acc(self) -> float:
        return max(self.val_acc) if self.val_acc else float("nan")


def fit(model: nn.Module, train, *, val=None, epochs: int = 5, lr: float = 3e-3, batch_size: int = 128,
        weight_decay: float = 5e-4, loss_fn: LossFn | None = None, device: str | torch.device = "cpu",
        seed: int = 0, progress_bar: bool | None = None,
        after_step: Callable[[nn.Module], None] | None = None) -> History:
    """Train ``model`` with AdamW and a cosine learning-rate schedule; returns a :class:`History`.

    Batches are shuffled by a generator seeded with ``seed``, so a run is repeatable.

    Args:
        model: the ``nn.Module`` to train, in place (moved to ``device``; left in eval mode). Only parameters with
            ``requires_grad`` are optimised.
        train: training data, a ``Dataset`` or ``(X, y)`` tensors (:func:`as_dataset`).
        val: validation data of the same kinds, or ``None``; evaluated (:func:`evaluate`) after each epoch.
        epochs: passes over ``train``, an int >= 0.
        lr: the initial learning rate, a number > 0, annealed by the cosine to 0 over all steps.
        batch_size: examples per step, an int >= 1 (an epoch's last batch may be smaller).
        weight_decay: AdamW's decoupled weight decay, a number >= 0.
        loss_fn: ``loss_fn(model, x, y) -> loss`` replaces cross-entropy (distillation, regularisers);
            ``None``: :func:`cross_entropy_loss`.
        device: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.
        seed: seed of the shuffling generator, an int >= 0.
        progress_bar: True / False to force the epoch bar on / off; ``None``: on unless :func:`quiet`.
        after_step: ``after_step(model)`` runs after each optimiser step (e.g. re-applying a pruning mask),
            or ``None``.

    Returns:
        :class:`History`: the mean training loss of each epoch and, with ``val``, its validation accuracy.
    """
    V.module("model", model)
    ds = _dataset("train", train)
    if val is not None:
        _dataset("val", val)
    V.integer("epochs", epochs, 0)
    V.real("lr", lr, 0, low_open=True)
    V.integer("batch_size", batch_size, 1)
    V.real("weight_decay", weight_decay, 0)
    V.function("loss_fn", loss_fn, none_ok=True)
    V.integer("seed", seed, 0)
    V.boolean("progress_bar", progress_bar, none_ok=True)
    V.function("after_step", after_step, none_ok=True)
    dev = V.device("device", device)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * len(loader)))
    loss_fn = loss_fn or cross_entropy_loss
    hist = History()
    for _ in progress(range(epochs), desc="epochs", enabled=progress_bar):
        model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = loss_fn(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if after_step is not None:
                after_step(model)
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        hist.train_loss.append(total / max(count, 1))
        if val is not None:
            hist.val_acc.append(evaluate(model, val, device=dev)["acc"])
    model.eval()
    return hist


@torch.no_grad()
def predict(model: nn.Module, data, *, device: str | torch.device = "cpu", batch_size: int = 512) -> torch.Tensor:
    """Logits ``Tensor[N, classes]`` for every example of ``data`` (eval mode, no grad), on the CPU.

    Args:
        model: an ``nn.Module`` returning logits; put in eval mode and moved to ``device``.
        data: a ``Dataset`` or ``(X, y)`` tensors (:func:`as_dataset`).
        device: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda[:i]"`` or a ``torch.device``.
        batch_size: examples per forward pass, an int >= 1.

    Returns:
        float32 ``Tensor[N, classes]`` on the CPU.
    """
    V.module("model", model)
    _dataset("data", data)
    batch_size = V.integer("batch_size", batch_size, 1)
    dev = V.device("device", device)
    X, _ = tensors(data)
    model.eval().to(dev)
    outs = [model(X[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(outs)


def evaluate(model: nn.Module, data, *, device: str | torch.device = "cpu", batch_size: int = 512) -> dict:
    """``{"acc": top-1 accuracy in [0, 1], "loss": mean cross-entropy}`` over ``data``.

    Args:
        model, data, device, batch_size: as in :func:`predict`; the targets of ``data`` are class indices.

    Returns:
        ``{"acc": float, "loss": float}``.
    """
    logits = predict(model, data, device=device, batch_size=batch_size)
    _, y = tensors(data)
    return {"acc": float((logits.argmax(1) == y).float().mean()), "loss": float(F.cross_entropy(logits, y))}
