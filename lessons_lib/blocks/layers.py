"""Conv -> BatchNorm -> activation: the one builder behind every block and lesson model.

``conv_bn_act(in_ch, out_ch, k, stride, groups, activation)`` is ``nn.Sequential(Conv2d(bias=False),
BatchNorm2d, activation)`` with the activation taken from the registry
:data:`lessons_lib.activations.ACTIVATIONS` (``None``: no activation, a linear layer). The layer
indices ``0, 1, 2`` are part of every checkpoint's state-dict keys (``features.0.0.weight``,
``features.0.1.running_mean``), so the order never changes. Where a block needs one flat
``nn.Sequential`` (torchvision's ShuffleNet v2 layout), unpack the pieces: ``nn.Sequential(*conv_bn_act(...),
*conv_bn_act(...))``.
"""
from __future__ import annotations

from torch import nn

from .. import activations
from .. import validate as V

__all__ = ["conv_bn_act"]


def conv_bn_act(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1,
                activation: str | None = "relu6", *, padding: int | None = None,
                inplace: bool = False) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> activation (``None``: linear), ``Tensor[N, in_ch, H, W] ->
    Tensor[N, out_ch, H/stride, W/stride]``.

    Args:
        in_ch, out_ch: input / output channels (ints >= 1, both divisible by ``groups``).
        k: kernel size (int >= 1; default 3).
        stride: conv stride (int >= 1; default 1).
        groups: conv groups (int >= 1 dividing ``in_ch`` and ``out_ch``; default 1, ``in_ch``: depthwise).
        activation: a name from :data:`lessons_lib.activations.ACTIVATIONS` (default ``"relu6"``), or ``None``
            for no activation (a linear layer: two modules instead of three).
        padding: zero padding (``None`` or an int >= 0); defaults to ``(k - 1) // 2`` ('same' for odd ``k``,
            as torchvision's ``Conv2dNormActivation``).
        inplace: build the activation in place (``nn.ReLU(inplace=True)``; ``ValueError`` for sigmoid / prelu,
            which have no in-place form). Default ``False``.

    Returns:
        ``nn.Sequential``: ``Conv2d(bias=False)``, ``BatchNorm2d`` and the activation, at indices 0, 1, 2.
    """
    for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("k", k), ("stride", stride), ("groups", groups)):
        V.integer(name, v, 1)
    if in_ch % groups or out_ch % groups:
        raise ValueError(f"groups={groups} must divide in_ch={in_ch} and out_ch={out_ch}")
    V.integer("padding", padding, 0, none_ok=True)
    V.boolean("inplace", inplace)
    act = None if activation is None else activations.module(activation, inplace=inplace)
    pad = (k - 1) // 2 if padding is None else padding
    layers = [nn.Conv2d(in_ch, out_ch, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]
    return nn.Sequential(*layers, *([] if act is None else [act]))
