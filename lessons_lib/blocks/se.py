"""Squeeze-and-Excitation (Hu et al., SENet; document 001 section 2.1.9; MobileNet v3 uses it).

For a feature map ``U: Tensor[N, C, H, W]``:

* **squeeze**   ``z_c = mean_{i,j} U[:, c, i, j]``                 -> ``Tensor[N, C]``
* **excitation** ``s = gate(W2 @ ReLU(W1 @ z + b1) + b2)``          -> ``Tensor[N, C]`` in [0, 1]
  (``W1: [C/r, C]``, ``W2: [C, C/r]``; gate = sigmoid, or hard-sigmoid in MobileNet v3)
* **scale**     ``out[:, c] = s_c * U[:, c]``

Parameters: ``2*C*s + s + C`` with ``s`` squeeze channels (``s = C/r`` gives ``2C^2/r + C/r + C``).
Layer names (``avgpool, fc1, activation, fc2, scale_activation``) follow
``torchvision.ops.SqueezeExcitation``, so state dicts load into each other unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import activations
from .. import validate as V
from ..validate import int_at_least

__all__ = ["SqueezeExcite", "se_param_count", "collect_se_gates"]


def se_param_count(channels: int, squeeze_channels: int) -> int:
    """Hand formula: ``fc1`` (C*s weights + s biases) + ``fc2`` (s*C weights + C biases) = 2Cs + s + C.

    Args:
        channels: ``C``, channels of the feature map (int >= 1).
        squeeze_channels: ``s``, channels of the bottleneck (int >= 1).

    Returns:
        ``int``: the number of parameters of a :class:`SqueezeExcite` block, ``2*C*s + s + C``.
    """
    c, s = int_at_least("channels", channels), int_at_least("squeeze_channels", squeeze_channels)
    return 2 * c * s + s + c


class SqueezeExcite(nn.Module):
    """``SqueezeExcite(channels, reduction=4)``: ``Tensor[N, C, H, W] -> Tensor[N, C, H, W]``.

    ``squeeze_channels`` defaults to ``max(1, channels // reduction)``; pass it explicitly to match a
    network's rounding (MobileNet v3 rounds ``C/4`` to a multiple of 8, see ``make_divisible``).
    ``gate`` is ``"sigmoid"`` (SENet) or ``"hard_sigmoid"`` (MobileNet v3).

    Args:
        channels: ``C``, channels of the input (int >= 1).
        reduction: ``r``, channel reduction of the bottleneck (int >= 1; default 4).
        squeeze_channels: ``None`` (default: ``max(1, channels // reduction)``) or an int >= 1.
        gate: ``"sigmoid"`` (default) or ``"hard_sigmoid"`` (:data:`lessons_lib.activations.GATES`).
    """

    def __init__(self, channels: int, reduction: int = 4, *, squeeze_channels: int | None = None,
                 gate: str = "sigmoid"):
        super().__init__()
        int_at_least("channels", channels)
        int_at_least("reduction", reduction)
        if squeeze_channels is None:
            squeeze_channels = max(1, channels // reduction)
        int_at_least("squeeze_channels", squeeze_channels)
        scale_activation = activations.module(gate, choices=activations.GATES, param="gate")
        self.channels, self.squeeze_channels, self.gate_name = channels, squeeze_channels, gate
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)  # a 1x1 conv on a 1x1 map is an FC layer
        self.activation = activations.module("relu")
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.scale_activation = scale_activation

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights ``s``: ``Tensor[N, C, 1, 1]`` in [0, 1]."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x={type(x).__name__} must be a torch.Tensor")
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x={V.show(x)} must be a Tensor[N, {self.channels}, H, W]")
        z = self.avgpool(x)                                      # squeeze
        return self.scale_activation(self.fc2(self.activation(self.fc1(z))))  # excitation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)                                  # scale

    def extra_repr(self) -> str:
        return f"channels={self.channels}, squeeze={self.squeeze_channels}, gate={self.gate_name}"


@torch.no_grad()
def collect_se_gates(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` (eval mode) and return each SE block's gate, ``name -> Tensor[N, C]``.

    Args:
        model: an ``nn.Module`` holding at least one :class:`SqueezeExcite` block (its training flag is restored).
        x: input ``Tensor[N, C, H, W]`` of the model, run in chunks of ``batch_size``.
        batch_size: images per forward pass (int >= 1; default 512).

    Returns:
        ``dict[str, Tensor]``: qualified block name -> its gates ``Tensor[N, C]`` in [0, 1], on the CPU.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be an nn.Module")
    V.tensor("x", x, layout="Tensor[N, C, H, W]")
    batch_size = V.integer("batch_size", batch_size, 1)
    ses = {n: m for n, m in model.named_modules() if isinstance(m, SqueezeExcite)}
    if not ses:
        raise ValueError(f"model={type(model).__name__} has no SqueezeExcite block")
    out: dict[str, list[torch.Tensor]] = {n: [] for n in ses}
    hooks = [m.scale_activation.register_forward_hook(lambda mod, a, o, n=n: out[n].append(o.flatten(1).cpu()))
             for n, m in ses.items()]
    was = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return {n: torch.cat(v) for n, v in out.items()}
