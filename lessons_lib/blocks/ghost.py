"""GhostNet's Ghost module: a few "intrinsic" feature maps from an ordinary conv, the rest from cheap
depthwise convs of them.

Sources: document 001 (§2.1.8 GhostNet); Han et al. 2020 "GhostNet: More Features from Cheap Operations"
(§3.1, Eq. 2-5); reference code ``timm/models/ghostnet.py`` ``GhostModule`` (same math as the authors'
``huawei-noah/Efficient-AI-Backbones``): ``init = ceil(out / s)``, ``new = init·(s - 1)``, surplus channels cut
from the end.

Shapes: ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H/stride, W/stride]``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import conv_bn_act
from .. import validate as V
from ..validate import int_at_least

__all__ = ["GhostModule", "ghost_speedup"]


class GhostModule(nn.Module):
    """Ghost module with ratio ``s`` (``ratio``):

    1. primary conv ``k x k`` (``kernel_size``): ``in_ch -> m = ceil(out_ch / s)`` intrinsic maps (+BN, ReLU);
    2. cheap op: depthwise ``d x d`` (``dw_size``) conv with channel multiplier ``s - 1``: ``m -> m·(s-1)``
       ghost maps (+BN, ReLU) -- each intrinsic map ``y'_i`` makes ``s - 1`` ghosts ``Φ_{i,j}(y'_i)``;
    3. ``cat([intrinsic, ghosts])[:, :out_ch]`` (the identity is the ``s``-th "cheap" op).

    Args:
        in_ch, out_ch: input / output channels (ints >= 1).
        kernel_size: primary conv kernel ``k`` (int >= 1; padding ``k // 2``, so an even ``k`` adds a row and a
            column; default 1).
        ratio: ``s``, output channels per intrinsic map (int >= 2; default 2).
        dw_size: cheap depthwise conv kernel ``d`` (int >= 1; padding ``d // 2``; default 3). Must be odd (``ValueError`` otherwise): an
            even one is accepted but ``forward`` then fails (the ghosts are one pixel larger than the maps).
        stride: stride of the primary conv (int >= 1; default 1).
        relu: ReLU after each BN (default ``True``); ``False`` puts an ``nn.Identity`` in its place.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, ratio: int = 2, dw_size: int = 3,
                 stride: int = 1, relu: bool = True):
        super().__init__()
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("kernel_size", kernel_size), ("dw_size", dw_size),
                        ("stride", stride)):
            int_at_least(name, v)
        int_at_least("ratio", ratio)
        V.boolean("relu", relu)
        if ratio < 2:
            raise ValueError(f"ratio={ratio} must be >= 2 (ratio 1 would be an ordinary conv with no ghosts)")
        for name, k in (("kernel_size", kernel_size), ("dw_size", dw_size)):
            if k % 2 == 0:
                raise ValueError(f"{name}={k} must be odd: padding k // 2 keeps H x W only for odd kernels, and the "
                                 "ghost maps are concatenated with the intrinsic ones")
        self.out_ch = out_ch
        init = math.ceil(out_ch / ratio)
        new = init * (ratio - 1)
        act = "relu" if relu else None
        self.primary_conv = conv_bn_act(in_ch, init, kernel_size, stride, activation=act, padding=kernel_size // 2,
                                        inplace=True)
        self.cheap_operation = conv_bn_act(init, new, dw_size, 1, groups=init, activation=act, padding=dw_size // 2,
                                           inplace=True)
        if not relu:  # an Identity in the activation's place: three layers either way, as timm's GhostModule
            self.primary_conv.append(nn.Identity())
            self.cheap_operation.append(nn.Identity())

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        return torch.cat([x1, x2], dim=1)[:, :self.out_ch]


def ghost_speedup(c: int, s: int, k: int = 1, d: int = 3) -> float:
    """GhostNet Eq. 4: multiply-adds of an ordinary ``k x k`` conv (``c -> n`` channels) over those of a
    Ghost module with ratio ``s`` and ``d x d`` cheap ops (``n`` divisible by ``s``; ``n``, ``h'w'`` cancel):

    ``r = c·k²·s / (c·k² + (s - 1)·d²)``  ->  ``s·c / (c + s - 1)`` when ``d = k`` (the paper's form) -> ``s``.
    The parameter ratio (Eq. 5) is the same expression.

    Args:
        c: input channels of the conv (int >= 1).
        s: Ghost ratio (int >= 1; 1 gives 1.0).
        k: kernel size of the ordinary / primary conv (int >= 1; default 1).
        d: kernel size of the cheap depthwise ops (int >= 1; default 3).

    Returns:
        ``float``: the speed-up ratio ``r`` (MACs of the ordinary conv / MACs of the Ghost module), ``< s``.
    """
    for name, v in (("c", c), ("s", s), ("k", k), ("d", d)):
        int_at_least(name, v)
    return c * k * k * s / (c * k * k + (s - 1) * d * d)
