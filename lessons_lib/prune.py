"""Pruning: unstructured magnitude masks and structured channel pruning (documents 000, 002, 004).

* **Magnitude masks** zero the smallest |w| -- per layer (each layer loses the same fraction) or
  globally (one threshold over all layers). :func:`apply_masks` keeps them applied during training
  (a ``torch.nn.utils.parametrize`` parametrization, the mechanism ``torch.nn.utils.prune`` also
  builds on); :func:`remove_masks` bakes the zeros into the weights.
* **Channel pruning** (Li et al. 2017, L1 norm of filters) and **network slimming** (Liu et al.
  2017, |gamma| of BatchNorm after L1-regularised training) remove whole output channels of a
  conv -> BatchNorm -> ReLU chain and return a *physically smaller* dense model: the next conv's
  input channels (or the classifier's inputs) are cut to match. Works on models whose ``features``
  is a sequence of ``conv_bn_relu`` blocks and pools, followed by global pooling and a Linear
  ``classifier`` (:class:`lessons_lib.models.TeacherCNN` / ``StudentCNN``).
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import validate as V

PRUNABLE = (nn.Conv2d, nn.Linear)
SCOPES = ("layer", "global")
CRITERIA = ("l1", "bn")


def _check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    return V.real(name, sparsity, 0.0, 1.0, high_open=True)


def _check_types(name: str, types: object) -> tuple:
    kinds = types if isinstance(types, tuple) else (types,)
    if not all(isinstance(t, type) and issubclass(t, nn.Module) for t in kinds):
        raise TypeError(f"{name}={V.show(types)} must be an nn.Module class or a tuple of them")
    if not kinds:
        raise ValueError(f"{name}=() must name at least one nn.Module class")
    return kinds


def prunable_layers(model: nn.Module, types: tuple = PRUNABLE) -> dict[str, nn.Module]:
    """``{name: module}`` of the layers of ``model`` that are instances of ``types`` (Conv2d / Linear).

    Args:
        model: an ``nn.Module``.
        types: an ``nn.Module`` class or a non-empty tuple of them (default :data:`PRUNABLE`).

    Returns:
        ``{name: module}`` in ``model.named_modules()`` order.
    """
    V.module("model", model)
    types = _check_types("types", types)
    return {n: m for n, m in model.named_modules() if isinstance(m, types)}


def magnitude_masks(model: nn.Module, sparsity: float, scope: str = "layer",
                    layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """``{layer name: 0/1 mask}`` zeroing the ``sparsity`` fraction of smallest-|w| weights.

    Ties at the threshold are broken by index so the pruned count is exact. A layer already masked by
    :func:`apply_masks` is ranked by its original (unmasked) weights.

    Args:
        model: an ``nn.Module``.
        sparsity: the fraction of weights to zero, a number in [0, 1).
        scope: ``"layer"``: each layer separately (``round(sparsity * numel)`` zeros per layer); ``"global"``: one
            threshold over all chosen layers (``round(sparsity * total)`` zeros in all).
        layers: names of Conv2d / Linear layers of ``model`` (a non-empty iterable of strings), or ``None``:
            all of them.

    Returns:
        ``{layer name: mask}``: float tensors of 0 and 1 with the shape of the layer's weight.
    """
    V.module("model", model)
    sparsity = _check_sparsity(sparsity)
    V.choice("scope", scope, SCOPES)
    mods = prunable_layers(model)
    if layers is None:
        names = list(mods)
    else:
        names = [V.string(f"layers[{i}]", n) for i, n in enumerate(V.iterable("layers", layers))]
        if not names:
            raise ValueError(f"layers={V.show(layers)} must name at least one layer (or be None: all of them)")
    for n in names:
        if n not in mods:
            raise ValueError(f"layers={V.show(layers)}: layer {n!r} is not a Conv2d/Linear of the model; "
                             f"choose from {list(mods)}")

    def mask_for(w: torch.Tensor, k: int) -> torch.Tensor:
        m = torch.ones(w.numel())
        if k > 0:
            m[w.detach().abs().flatten().argsort(stable=True)[:k]] = 0
        return m.reshape(w.shape)

    if scope == "layer":
        return {n: mask_for(_weight(mods[n]), int(round(sparsity * _weight(mods[n]).numel()))) for n in names}
    flat = torch.cat([_weight(mods[n]).detach().abs().flatten() for n in names])
    k = int(round(sparsity * flat.numel()))
    order = flat.argsort(stable=True)[:k]
    keep = torch.ones_like(flat)
    keep[order] = 0
    out, start = {}, 0
    for n in names:
        w = _weight(mods[n])
        out[n] = keep[start:start + w.numel()].reshape(w.shape).clone()
        start += w.numel()
    return out


def _weight(m: nn.Module) -> torch.Tensor:
    return m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight


class _Mask(nn.Module):
    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w):
        return w * self.mask


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Keep ``masks`` applied (also during training) via a weight parametrization; returns ``model``.

    Args:
        model: the ``nn.Module`` to mask, changed in place.
        masks: ``{layer name: mask}`` (e.g. :func:`magnitude_masks`): each name a Conv2d / Linear of ``model``, each
            mask a real-valued tensor of that weight's shape. On an already masked layer the old mask is baked
            into the weight first, so its zeros stay.

    Returns:
        ``model`` itself.
    """
    V.module("model", model)
    V.mapping("masks", masks)
    mods = dict(model.named_modules())
    for name, mask in masks.items():
        V.tensor(f"masks[{name!r}]", mask, dtype="number")
        if name not in mods or not isinstance(mods[name], PRUNABLE):
            raise ValueError(f"masks[{name!r}]={V.show(mask)} names a layer the model does not have "
                             f"(its Conv2d / Linear layers: {list(prunable_layers(model))})")
        m = mods[name]
        if mask.shape != _weight(m).shape:
            raise ValueError(f"masks[{name!r}]={V.show(mask)} has shape {tuple(mask.shape)}, "
                             f"weight {tuple(_weight(m).shape)}")
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        parametrize.register_parametrization(m, "weight", _Mask(mask.to(_weight(m).dtype)))
    return model


def remove_masks(model: nn.Module) -> nn.Module:
    """Make the masked weights permanent (plain ``weight`` tensors with zeros); returns ``model``.

    Args:
        model: an ``nn.Module``, changed in place; every ``weight`` parametrization (not only masks) is removed.

    Returns:
        ``model`` itself.
    """
    V.module("model", model)
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


def sparsity_of(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights per Conv2d/Linear layer, and ``"total"``.

    Args:
        model: an ``nn.Module``; masked layers count the zeros of their masked weight.

    Returns:
        ``{layer name: fraction in [0, 1], ..., "total": fraction over all those weights}``.
    """
    out, zeros, total = {}, 0, 0
    for n, m in prunable_layers(model).items():
        w = m.weight.detach()
        out[n] = float((w == 0).float().mean())
        zeros += int((w == 0).sum())
        total += w.numel()
    out["total"] = zeros / max(total, 1)
    return out


def sensitivity_scan(model: nn.Module, evaluate: Callable[[nn.Module], float],
                     sparsities: Iterable[float] = (0.3, 0.5, 0.7, 0.9)) -> dict[str, list[float]]:
    """Prune one layer at a time (magnitude, layer scope) and record ``evaluate(model)`` per sparsity.

    Args:
        model: an ``nn.Module``; not modified (each trial prunes a deep copy).
        evaluate: ``evaluate(pruned_model) -> float`` (e.g. validation accuracy), called under ``torch.no_grad``.
        sparsities: the sparsities to try, an iterable of numbers in [0, 1).

    Returns:
        ``{layer name: [score at each sparsity]}`` for every Conv2d / Linear layer.
    """
    V.module("model", model)
    V.function("evaluate", evaluate)
    sps = [_check_sparsity(s, f"sparsities[{i}]") for i, s in enumerate(V.iterable("sparsities", sparsities))]
    out: dict[str, list[float]] = {}
    for name in prunable_layers(model):
        scores = []
        for s in sps:
            m = copy.deepcopy(model)
            remove_masks(apply_masks(m, magnitude_masks(m, s, layers=[name])))
            with torch.no_grad():
                scores.append(float(evaluate(m)))
        out[name] = scores
    return out


# ------------------------------------------------------------------------------ channel pruning
def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """The (conv, bn) pairs of ``model.features`` in order (conv_bn_relu blocks).

    Args:
        model: an ``nn.Module`` with ``features`` (holding ``nn.Sequential`` blocks that start with an ungrouped
            ``Conv2d`` then a ``BatchNorm2d``, at least one) and an ``nn.Linear`` ``classifier``.

    Returns:
        ``[(conv, bn), ...]``: the model's own modules, not copies.
    """
    V.module("model", model)
    if not hasattr(model, "features") or not isinstance(getattr(model, "classifier", None), nn.Linear):
        raise TypeError(f"model={type(model).__name__} needs .features (conv_bn_relu blocks) and a Linear .classifier")
    pairs = []
    for block in model.features:
        if isinstance(block, nn.Sequential) and len(block) >= 2 and isinstance(block[0], nn.Conv2d) \
                and isinstance(block[1], nn.BatchNorm2d):
            if block[0].groups != 1:
                raise ValueError(f"model={type(model).__name__} has a grouped conv (groups={block[0].groups}): "
                                 "not supported by channel pruning")
            pairs.append((block[0], block[1]))
    if not pairs:
        raise TypeError(f"model={type(model).__name__}: model.features holds no conv_bn_relu blocks")
    return pairs


def channel_scores(model: nn.Module, criterion: str = "l1") -> list[torch.Tensor]:
    """Importance of each output channel of each conv: L1 norm of its filter (``"l1"``) or |gamma| (``"bn"``).

    Args:
        model: a model as in :func:`conv_bn_pairs`.
        criterion: ``"l1"`` or ``"bn"`` (:data:`CRITERIA`).

    Returns:
        One detached ``Tensor[C_out]`` of scores per conv, in order.
    """
    V.choice("criterion", criterion, CRITERIA)
    return [(c.weight.detach().abs().sum((1, 2, 3)) if criterion == "l1" else b.weight.detach().abs())
            for c, b in conv_bn_pairs(model)]


def keep_indices(model: nn.Module, amount: float, criterion: str = "l1", scope: str = "layer") -> list[torch.Tensor]:
    """Channels to keep per conv when pruning the ``amount`` fraction (layer-wise or one global ranking).

    Args:
        model: a model as in :func:`conv_bn_pairs`.
        amount: the fraction of channels to drop, a number in [0, 1).
        criterion: ``"l1"`` or ``"bn"``, as in :func:`channel_scores`.
        scope: ``"layer"``: each conv drops ``round(amount * C_out)`` channels; ``"global"``: every channel
            scoring at most the ``round(amount * total)``-th smallest score is dropped (ties included).
            Either way each conv keeps at least one channel.

    Returns:
        One sorted ``int64 Tensor`` of kept channel indices per conv.
    """
    amount = _check_sparsity(amount, "amount")
    V.choice("scope", scope, SCOPES)
    scores = channel_scores(model, criterion)
    if scope == "layer":
        keeps = [s.argsort(descending=True, stable=True)[:max(1, len(s) - int(round(amount * len(s))))] for s in scores]
    elif scope == "global":
        flat = torch.cat(scores)
        k = int(round(amount * flat.numel()))
        thresh = flat.sort().values[k - 1] if k > 0 else -1.0
        keeps = [torch.nonzero(s > thresh).flatten() if (s > thresh).any() else s.argmax().reshape(1) for s in scores]
    else:
        raise ValueError(f"scope={scope!r} must be 'layer' or 'global'")
    return [k.sort().values for k in keeps]


def prune_channels(model: nn.Module, keep: list[torch.Tensor]) -> nn.Module:
    """A physically smaller copy of ``model`` keeping channels ``keep[i]`` of the i-th conv.

    Args:
        model: a model as in :func:`conv_bn_pairs` (not modified) whose blocks form one chain: each conv reads
            the previous block's channels, the ``classifier`` the last one's (after global pooling).
        keep: one entry per conv: a non-empty 1-d integer tensor (or list of ints) of distinct channel indices
            in ``0..C_out - 1``, e.g. from :func:`keep_indices`.

    Returns:
        The pruned deep copy.
    """
    keep = _check_keep(model, keep)
    pruned = copy.deepcopy(model)
    pairs = conv_bn_pairs(pruned)
    prev = None
    for (conv, bn), idx in zip(pairs, keep):
        w = conv.weight.data[idx]
        if prev is not None:
            w = w[:, prev]
        conv.weight = nn.Parameter(w.clone())
        conv.out_channels, conv.in_channels = len(idx), w.shape[1]
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias.data[idx].clone())
        bn.weight = nn.Parameter(bn.weight.data[idx].clone())
        bn.bias = nn.Parameter(bn.bias.data[idx].clone())
        bn.running_mean = bn.running_mean[idx].clone()
        bn.running_var = bn.running_var[idx].clone()
        bn.num_features = len(idx)
        prev = idx
    fc = pruned.classifier
    fc.weight = nn.Parameter(fc.weight.data[:, prev].clone())
    fc.in_features = len(prev)
    return pruned


def _check_keep(model: nn.Module, keep: object) -> list[torch.Tensor]:
    """``keep``: one 1-d tensor (or list) of distinct channel indices per conv of the chain, none empty."""
    pairs = conv_bn_pairs(model)
    items = V.sequence("keep", keep, what="list of index tensors")
    if len(items) != len(pairs):
        raise ValueError(f"keep={V.show(keep)} has {len(items)} entries, the model has {len(pairs)} convs")
    out = []
    for i, ((conv, _), idx) in enumerate(zip(pairs, items)):
        name = f"keep[{i}]"
        if isinstance(idx, (list, tuple)):
            V.sequence(name, idx, lambda n, v: V.integer(n, v))
            idx = torch.tensor(list(idx), dtype=torch.int64)
        V.tensor(name, idx, dtype="integer", ndim=1, non_empty=True)
        c = conv.out_channels
        if int(idx.min()) < 0 or int(idx.max()) >= c or len(torch.unique(idx)) != len(idx):
            raise ValueError(f"{name}={V.show(idx)} must hold distinct channel indices in 0..{c - 1}")
        out.append(idx)
    return out


def l1_channel_prune(model: nn.Module, amount: float, scope: str = "layer") -> nn.Module:
    """Li et al. 2017: drop the ``amount`` fraction of filters with the smallest L1 norm.

    Args:
        model: a model as in :func:`prune_channels` (not modified).
        amount: the fraction of filters to drop, a number in [0, 1).
        scope: ``"layer"`` or ``"global"``, as in :func:`keep_indices`.

    Returns:
        The pruned copy (:func:`prune_channels`).
    """
    return prune_channels(model, keep_indices(model, amount, "l1", scope))


def slim_prune(model: nn.Module, amount: float) -> nn.Module:
    """Network slimming: drop the ``amount`` fraction of channels with the smallest |gamma|, globally.

    Args:
        model: a model as in :func:`prune_channels` (not modified), trained with :func:`bn_l1_penalty`.
        amount: the fraction of channels to drop, a number in [0, 1).

    Returns:
        The pruned copy (:func:`prune_channels`).
    """
    return prune_channels(model, keep_indices(model, amount, "bn", "global"))


def bn_l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum |gamma| over the BatchNorm layers of the conv chain (add ``lam *`` this to the loss).

    Args:
        model: a model as in :func:`conv_bn_pairs`.

    Returns:
        Scalar ``Tensor``, differentiable with respect to the BatchNorm weights.
    """
    return sum(b.weight.abs().sum() for _, b in conv_bn_pairs(model))


def channel_masked(model: nn.Module, keep: list[torch.Tensor]) -> nn.Module:
    """A copy of ``model`` whose dropped channels are zeroed after each conv_bn_relu block.

    Its outputs equal those of ``prune_channels(model, keep)`` (the test of channel pruning).

    Args:
        model, keep: as in :func:`prune_channels` (``model`` is not modified).

    Returns:
        The masked deep copy (forward hooks on its blocks do the zeroing).
    """
    keep = _check_keep(model, keep)
    masked = copy.deepcopy(model)
    blocks = [b for b in masked.features if isinstance(b, nn.Sequential) and isinstance(b[0], nn.Conv2d)]
    for block, idx in zip(blocks, keep):
        m = torch.zeros(block[0].out_channels)
        m[idx] = 1
        block.register_forward_hook(lambda mod, args, out, m=m: out * m.view(1, -1, 1, 1).to(out))
    return masked


def channel_counts(model: nn.Module) -> list[int]:
    """Output channels of each conv of the conv_bn_relu chain (the architecture after channel pruning).

    Args:
        model: a model as in :func:`conv_bn_pairs`.

    Returns:
        ``list[int]``: ``C_out`` of each conv, in order.
    """
    return [c.out_channels for c, _ in conv_bn_pairs(model)]


def keep_indices_for_counts(model: nn.Module, counts: list[int], criterion: str = "l1") -> list[torch.Tensor]:
    """Keep exactly ``counts[i]`` channels of the i-th conv, the highest-scoring by ``criterion``.

    Used to compare two criteria on the *same* pruned architecture (equal parameters and MACs).

    Args:
        model: a model as in :func:`conv_bn_pairs`.
        counts: one int in ``1..C_out`` per conv, e.g. :func:`channel_counts` of a pruned model.
        criterion: ``"l1"`` or ``"bn"``, as in :func:`channel_scores`.

    Returns:
        One sorted ``int64 Tensor`` of ``counts[i]`` channel indices per conv.
    """
    counts = V.sequence("counts", counts, lambda n, v: V.integer(n, v))
    scores = channel_scores(model, criterion)
    if len(counts) != len(scores):
        raise ValueError(f"counts={V.show(counts)} has {len(counts)} entries, the model has {len(scores)} convs")
    for i, (c, s) in enumerate(zip(counts, scores)):
        if not 1 <= c <= len(s):
            raise ValueError(f"counts[{i}]={c!r} must be an int in 1..{len(s)}")
    return [s.argsort(descending=True, stable=True)[:c].sort().values for c, s in zip(counts, scores)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, X: torch.Tensor, batch_size: int = 128) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance on the images ``X`` (no weight changes).

    Pruning shifts each conv's output statistics, so the running statistics stored at training time no
    longer match; one forward pass in train mode with ``momentum=None`` (a plain average over the batches)
    replaces them.

    Args:
        model: the ``nn.Module`` to recalibrate, changed in place (its BatchNorm momenta are restored).
        X: floating-point images ``Tensor[N, C, H, W]`` with ``N >= 2``, moved batch by batch to the model's device.
        batch_size: images per forward pass, an int >= 1.

    Returns:
        ``model`` itself, in eval mode.
    """
    V.module("model", model)
    V.tensor("X", X, dtype="floating")
    if X.ndim != 4 or len(X) < 2:
        raise ValueError(f"X={V.show(X)} must be a Tensor[N, C, H, W] with N >= 2")
    batch_size = V.integer("batch_size", batch_size, 1)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    p = next(model.parameters(), None)
    dev = p.device if p is not None else X.device
    for i in range(0, len(X), batch_size):
        model(X[i:i + batch_size].to(dev))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()
