"""Quantisation-aware training (QAT): fake-quantised weights and activations with straight-through gradients.

Document 003 (UINT quantisation, Jacob et al. 2018): quantise in the forward pass, keep the backward
pass in float. Here that is :func:`lessons_lib.quant.fake_quantize` (forward ``(clamp(round(x/S)+Z) - Z) * S``,
backward 1 inside the clamp range, 0 outside) placed where an integer engine rounds:

* **weights** of every ``Conv2d`` / ``Linear``: symmetric, per output channel, ``S_c = max|W_c| / (2^(b-1) - 1)``
  recomputed from the current float weights at every forward (a ``torch.nn.utils.parametrize``
  parametrisation, so the module stays an ``nn.Conv2d`` and the float "shadow" weights keep training);
* **activations** at every ``ReLU`` output (asymmetric with ``xmin = 0``, i.e. unsigned ``[0, 2^b - 1]``)
  and at the model input (symmetric): ranges tracked by :class:`ActFakeQuant`, either as the running
  union of batch min/max (document 003's first choice) or as an exponential moving average of them
  (its second choice, "mean of the per-batch extremes"; TensorFlow's QAT default).

BatchNorm is folded into the convolutions first (:func:`lessons_lib.fold.fold_model`), so the
weights that get fake-quantised are the ones an engine would store.
"""
from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import validate as V
from .affine import check_bits, fake_quantize, qparams, qrange


class WeightFakeQuant(nn.Module):
    """Parametrisation ``W -> fake_quantize(W)``: symmetric, per output channel (axis 0), ``num_bits >= 2``.

    Args:
        num_bits: weight bits, 2..16; the scales ``max|W[c]| / (2^(num_bits-1) - 1)`` follow the current weights.
    """

    def __init__(self, num_bits: int = 8):
        super().__init__()
        self.num_bits = check_bits(num_bits)
        if self.num_bits < 2:
            raise ValueError(f"num_bits={num_bits} must be >= 2 for symmetric weight quantisation")
        self.enabled = True

    def scales(self, w: torch.Tensor) -> torch.Tensor:
        """``S[c] = max|W[c]| / qmax`` (1.0 for an all-zero channel), Tensor[C_out] float32.

        Args:
            w: the weight ``Tensor[C_out, ...]``, float.

        Returns:
            ``Tensor[C_out]`` of ``w``'s dtype (float32 for float32 weights), detached.
        """
        qmax = qrange(self.num_bits, symmetric=True)[1]
        amax = w.detach().abs().reshape(w.shape[0], -1).amax(1)
        return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return w
        s = self.scales(w)
        return fake_quantize(w, s, torch.zeros_like(s), self.num_bits, symmetric=True, axis=0)

    def extra_repr(self) -> str:
        return f"num_bits={self.num_bits}, per_channel=True, symmetric=True"


class ActFakeQuant(nn.Module):
    """Observe an activation's range and fake-quantise it (per tensor).

    ``momentum=None``: the range is the union of all observed batches (running min / max);
    ``momentum=m``: ``r <- (1 - m) r + m * r_batch`` (EMA), the first batch initialising ``r``.
    Ranges update in training mode and while ``observing`` is True (calibration); otherwise they are
    frozen. Before any batch was observed the module passes values through unchanged.

    Args:
        num_bits: activation bits, 1..16 (2..16 when ``symmetric``).
        symmetric: ``True``: the narrow signed range with ``Z = 0``; ``False``: unsigned ``[0, 2^b - 1]``.
        momentum: ``None`` (the union of the observed ranges) or the EMA weight ``m``, a number in ``(0, 1]``.
    """

    def __init__(self, num_bits: int = 8, symmetric: bool = False, momentum: float | None = 0.1):
        super().__init__()
        self.num_bits = check_bits(num_bits)
        qrange(self.num_bits, symmetric)  # validates symmetric 1-bit
        _check_momentum(momentum)
        self.symmetric = bool(symmetric)
        self.momentum = None if momentum is None else float(momentum)
        self.observing = False
        self.enabled = True
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    @property
    def initialised(self) -> bool:
        return bool(torch.isfinite(self.min_val)) and bool(torch.isfinite(self.max_val))

    def qparams(self) -> tuple[float, int]:
        """``(S, Z)`` of the current range (:func:`lessons_lib.quant.qparams`).

        ``ValueError`` before any range was observed.

        Returns:
            ``(S, Z)``: a Python float > 0 and a Python int.
        """
        if not self.initialised:
            raise ValueError("no range observed yet: run observe_ranges() or train first")
        return qparams(self.min_val.item(), self.max_val.item(), self.num_bits, self.symmetric)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min().float(), x.detach().max().float()
        if not self.initialised:
            self.min_val.copy_(lo)
            self.max_val.copy_(hi)
        elif self.momentum is None:
            self.min_val.copy_(torch.minimum(self.min_val, lo))
            self.max_val.copy_(torch.maximum(self.max_val, hi))
        else:
            m = self.momentum
            self.min_val.mul_(1 - m).add_(m * lo)
            self.max_val.mul_(1 - m).add_(m * hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.observing:
            self._observe(x)
        if not self.enabled or not self.initialised:
            return x
        s, z = self.qparams()
        return fake_quantize(x, s, z, self.num_bits, self.symmetric)

    def extra_repr(self) -> str:
        rng = f"[{self.min_val.item():.4g}, {self.max_val.item():.4g}]" if self.initialised else "unobserved"
        mode = "union" if self.momentum is None else f"ema {self.momentum}"
        return f"num_bits={self.num_bits}, symmetric={self.symmetric}, range={rng} ({mode})"


def _check_momentum(momentum: object) -> None:
    V.real("momentum", momentum, 0, 1, low_open=True, none_ok=True)  # None: the union of ranges


def prepare_qat(model: nn.Module, w_bits: int | None = 8, a_bits: int | None = 8, *, input_bits: int | None = None,
                fold_bn: bool = True, momentum: float | None = 0.1) -> nn.Module:
    """A fake-quantised copy of ``model`` (``model`` itself is not changed).

    Ranges start unobserved: call :func:`observe_ranges` before evaluating post-training quantisation.
    At least one of ``w_bits``, ``a_bits``, ``input_bits`` must be an int.

    Args:
        model: any ``nn.Module``.
        w_bits: weight bits of every Conv2d / Linear, 2..16 (``None`` keeps float weights).
        a_bits: bits of every ``nn.ReLU`` output, 1..16 (an :class:`ActFakeQuant` after it; ``None``: float
            activations).
        input_bits: also quantise the model input (symmetric), 2..16; the result is then
            ``nn.Sequential(ActFakeQuant, model)``. ``None``: float input.
        fold_bn: fold Conv+BatchNorm pairs first (:func:`lessons_lib.fold.fold_model`).
        momentum: range tracking of the new :class:`ActFakeQuant` modules: ``None`` (union) or an EMA weight
            in ``(0, 1]``.

    Returns:
        The fake-quantised copy, an ``nn.Module`` (in eval mode when ``fold_bn``, else in ``model``'s mode).
    """
    V.module("model", model)
    for name, bits in (("w_bits", w_bits), ("a_bits", a_bits), ("input_bits", input_bits)):
        if bits is not None:
            check_bits(bits, name)
    V.boolean("fold_bn", fold_bn)
    _check_momentum(momentum)
    if w_bits is None and a_bits is None and input_bits is None:
        raise ValueError("w_bits, a_bits and input_bits are all None: nothing to quantise")
    if fold_bn:
        from ..fold import fold_model

        qm = fold_model(model)
    else:
        qm = copy.deepcopy(model)
    if w_bits is not None:
        check_bits(w_bits, "w_bits")
        for m in list(qm.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                parametrize.register_parametrization(m, "weight", WeightFakeQuant(w_bits))
    if a_bits is not None:
        check_bits(a_bits, "a_bits")
        for parent in list(qm.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.ReLU):
                    setattr(parent, name, nn.Sequential(child, ActFakeQuant(a_bits, False, momentum)))
    if input_bits is not None:
        qm = nn.Sequential(ActFakeQuant(check_bits(input_bits, "input_bits"), True, momentum), qm)
    return qm


def fake_quant_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]`` of every :class:`ActFakeQuant` and :class:`WeightFakeQuant` inside ``model``.

    Args:
        model: any ``nn.Module``.

    Returns:
        ``list`` of ``(qualified name, module)`` in ``model.named_modules()`` order (a weight parametrisation is
        named like ``"0.parametrizations.weight.0"``); empty when there are none.
    """
    V.module("model", model)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (ActFakeQuant, WeightFakeQuant))]


@torch.no_grad()
def observe_ranges(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Observe activation ranges on ``batches`` (eval mode, no gradients); returns ``model``.

    Post-training quantisation is exactly this followed by evaluation; QAT starts from it too.

    Args:
        model: an ``nn.Module`` holding at least one :class:`ActFakeQuant` (:func:`prepare_qat` with ``a_bits``
            or ``input_bits``).
        batches: an iterable of at least one batch, each passed as ``model(batch)`` (so inputs, not
            ``(x, y)`` pairs).

    Returns:
        ``model`` itself, its ranges updated, left in eval mode.
    """
    V.module("model", model)
    V.iterable("batches", batches)
    acts = [m for m in model.modules() if isinstance(m, ActFakeQuant)]
    if not acts:
        raise ValueError(f"model={type(model).__name__} has no ActFakeQuant modules: build it with "
                         "prepare_qat(..., a_bits=...)")
    model.eval()
    for m in acts:
        m.observing = True
    seen = 0
    try:
        for xb in batches:
            model(xb)
            seen += 1
    finally:
        for m in acts:
            m.observing = False
    if seen == 0:
        raise ValueError("batches is empty: need at least one batch to calibrate")
    return model


def weight_levels_used(model: nn.Module) -> dict[str, int]:
    """Distinct values per fake-quantised weight tensor (``<= 2^b - 1`` per output channel): a check
    that the parametrisation really restricts the weights to the integer grid.

    Args:
        model: any ``nn.Module``, typically from :func:`prepare_qat` with ``w_bits``.

    Returns:
        ``{module name: count}`` for each module with a parametrised ``weight``: the largest number of
        distinct values in one output channel ``weight[c]``; empty when nothing is parametrised.
    """
    V.module("model", model)
    out = {}
    for name, m in model.named_modules():
        if parametrize.is_parametrized(m, "weight"):
            w = m.weight.detach()
            out[name] = max(int(torch.unique(w[c]).numel()) for c in range(w.shape[0]))
    return out


def strip(model: nn.Module) -> nn.Module:
    """A copy with plain ``Conv2d`` / ``Linear`` modules holding the *quantised* weights (for export) and
    the activation fake-quant modules disabled; ``model`` keeps working.

    (``parametrize.remove_parametrizations`` on a deep copy would delete the weight property from the
    parametrised class that the copy shares with ``model``, so the copy is un-parametrised by hand.)

    Args:
        model: an ``nn.Module``, typically from :func:`prepare_qat`; not modified.

    Returns:
        The copy, an ``nn.Module``: each parametrised weight replaced by a plain ``nn.Parameter`` holding its
        fake-quantised values; every :class:`ActFakeQuant` kept, with ``enabled = False``.
    """
    V.module("model", model)
    out = copy.deepcopy(model)
    for m in list(out.modules()):
        if parametrize.is_parametrized(m, "weight"):
            w = m.weight.detach().clone()
            m.__class__ = type(m).__bases__[0]  # the original nn.Conv2d / nn.Linear, this instance only
            del m._modules["parametrizations"]
            m.weight = nn.Parameter(w)
        if isinstance(m, ActFakeQuant):
            m.enabled = False
    return out
