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

from .machine import resolve_device

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch ``Generator`` seeded the same.

    ``deterministic=True`` also asks torch for deterministic kernels where that is cheap
    (cuDNN), so the same seed gives the same numbers on the same machine.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
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
    """True in headless runs (``LESSONS_QUIET=1``): progress bars stay silent."""
    return os.environ.get("LESSONS_QUIET", "") not in ("", "0", "false", "False")


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """``tqdm.auto`` over ``iterable`` unless running headless."""
    if enabled is None:
        enabled = not quiet()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def as_dataset(data) -> Dataset:
    """A Dataset, or a tuple ``(X, y)`` of tensors, as a Dataset."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if data[0].shape[0] != data[1].shape[0]:
            raise ValueError(f"data=(X, y) must have as many rows: X has {data[0].shape[0]}, y has {data[1].shape[0]}")
        return TensorDataset(*data)
    raise TypeError(f"data={type(data).__name__} must be a torch Dataset or a tuple (X, y) of tensors")


def tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` of a TensorDataset or tuple, for fast full-batch work."""
    ds = as_dataset(data)
    if isinstance(ds, TensorDataset):
        return ds.tensors[0], ds.tensors[1]
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs), torch.as_tensor(ys)


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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

    ``loss_fn(model, x, y) -> loss`` replaces cross-entropy (distillation, regularisers);
    ``after_step(model)`` runs after each optimiser step (e.g. re-applying a pruning mask).
    Batches are shuffled by a generator seeded with ``seed``, so a run is repeatable.
    """
    if epochs < 0 or not isinstance(epochs, int):
        raise ValueError(f"epochs={epochs!r} must be an int >= 0")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be > 0")
    dev = resolve_device(device)
    ds = as_dataset(train)
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
    """Logits ``Tensor[N, classes]`` for every example of ``data`` (eval mode, no grad), on the CPU."""
    dev = resolve_device(device)
    X, _ = tensors(data)
    model.eval().to(dev)
    outs = [model(X[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(outs)


def evaluate(model: nn.Module, data, *, device: str | torch.device = "cpu", batch_size: int = 512) -> dict:
    """``{"acc": top-1 accuracy in [0, 1], "loss": mean cross-entropy}`` over ``data``."""
    logits = predict(model, data, device=device, batch_size=batch_size)
    _, y = tensors(data)
    return {"acc": float((logits.argmax(1) == y).float().mean()), "loss": float(F.cross_entropy(logits, y))}
