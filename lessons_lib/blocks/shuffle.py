"""ShuffleNet v1 and v2 blocks: channel shuffle, group pointwise convs, channel split.

Sources: document 001 (§2.1.7 ShuffleNet v1/v2), Zhang et al. 2018 "ShuffleNet" (v1 unit, Fig. 2),
Ma et al. 2018 "ShuffleNet V2" (v2 unit, Fig. 3); reference code ``torchvision/models/shufflenetv2.py``
(``channel_shuffle``, ``InvertedResidual``) and ``torch.nn.ChannelShuffle``.

Shapes: every tensor is ``Tensor[N, C, H, W]``.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bn_act
from .. import validate as V
from ..validate import int_at_least

__all__ = ["channel_shuffle", "channel_dependency", "ShuffleV1Unit", "ShuffleV2Block"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``g = groups`` groups: ``out[o] = x[(o mod g)·(C/g) + ⌊o/g⌋]``.

    Reshape ``[N, C, H, W] -> [N, g, C/g, H, W]``, swap the two channel axes, flatten back
    (ShuffleNet v1, Fig. 1c). Equal to ``torch.nn.ChannelShuffle(groups)``. After it, the next group
    conv's group ``j`` sees channel ``j`` of *every* previous group, so information crosses groups.
    Its inverse is ``channel_shuffle(·, C // g)``.

    Args:
        x: input ``Tensor[N, C, H, W]``.
        groups: number of groups ``g`` (int >= 1, divides ``C``).

    Returns:
        ``Tensor[N, C, H, W]``: the shuffled channels (same dtype and device as ``x``).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x={type(x).__name__} must be a torch.Tensor")
    if x.dim() != 4:
        raise ValueError(f"x={V.show(x)} must be a Tensor[N, C, H, W]")
    int_at_least("groups", groups)
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"groups={groups} must divide the channels C={c}")
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def channel_dependency(fn, in_ch: int, *, size: int = 5) -> torch.Tensor:
    """Which output channels depend on which input channels: ``D[o, i] = True`` when ∂out_o/∂x_i ≠ 0.

    Found by gradients (one backward pass per output channel) of ``fn`` at a random input
    ``Tensor[1, in_ch, size, size]``. A stack of group convs without shuffle gives a block-diagonal ``D``:
    information never crosses groups.

    Args:
        fn: a callable (an ``nn.Module`` or a function) mapping ``Tensor[1, in_ch, size, size]`` (float32) to
            ``Tensor[1, C_out, H', W']``.
        in_ch: input channels (int >= 1).
        size: height and width of the random input (int >= 1; default 5); the input is seeded (seed 0).

    Returns:
        ``Tensor[C_out, in_ch]`` of bools: ``D[o, i]`` is ``True`` when output channel ``o`` depends on input
        channel ``i``.
    """
    int_at_least("in_ch", in_ch)
    int_at_least("size", size)
    if not callable(fn):
        raise TypeError(f"fn={fn!r} must be callable (a module or a function of one tensor)")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, in_ch, size, size, generator=g, requires_grad=True)
    out = fn(x)
    rows = []
    for o in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[0, o].sum(), x, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros(in_ch, dtype=torch.bool) if grad is None else grad[0].abs().sum((1, 2)) > 0)
    return torch.stack(rows)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1 unit (Zhang et al. 2018, Fig. 2b/c).

    ``1x1 group conv (g) -> BN -> ReLU -> channel shuffle -> 3x3 depthwise (stride) -> BN
    -> 1x1 group conv (g) -> BN``, then

    * ``stride=1``: ``ReLU(x + branch(x))`` (needs ``in_ch == out_ch``);
    * ``stride=2``: ``ReLU(cat(avgpool3x3/2(x), branch(x)))`` with the branch giving ``out_ch - in_ch``
      channels, so the unit widens while it halves the resolution.

    The bottleneck width is ``mid_ch = out_ch // 4`` (the paper's ratio). ``group_first=False`` keeps the
    first 1x1 dense, as the paper does for the first unit after the stem (its input has only 24 channels).

    Args:
        in_ch: input channels (int >= 1; divisible by ``groups`` when ``group_first``).
        out_ch: output channels (int >= 1): ``== in_ch`` for ``stride=1``, ``> in_ch`` for ``stride=2``;
            ``groups`` must divide ``out_ch // 4`` and the branch's width (``out_ch`` or ``out_ch - in_ch``).
        groups: groups ``g`` of the 1x1 convs (int >= 1; default 3).
        stride: 1 (default; residual add) or 2 (average-pool shortcut, concatenated).
        group_first: make the first 1x1 a group conv (default ``True``); ``False`` keeps it dense.
    """

    def __init__(self, in_ch: int, out_ch: int, groups: int = 3, stride: int = 1, *, group_first: bool = True):
        super().__init__()
        V.boolean("group_first", group_first)
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("groups", groups)):
            int_at_least(name, v)
        V.choice("stride", stride, (1, 2))
        if stride == 1 and in_ch != out_ch:
            raise ValueError(f"stride=1 adds the input: out_ch={out_ch} must equal in_ch={in_ch}")
        branch_out = out_ch - in_ch if stride == 2 else out_ch
        if branch_out < 1:
            raise ValueError(f"stride=2 concatenates the input: out_ch={out_ch} must exceed in_ch={in_ch}")
        mid = out_ch // 4
        if mid < 1:
            raise ValueError(f"out_ch={out_ch} must be >= 4: the bottleneck has out_ch // 4 channels")
        g1 = groups if group_first else 1
        checks = [("mid_ch (out_ch // 4)", mid), ("the branch's out_ch", branch_out)]
        if group_first:
            checks.insert(0, ("in_ch", in_ch))
        for name, c in checks:
            if c % groups:
                raise ValueError(f"groups={groups} must divide {name}={c}")
        self.groups, self.stride = groups, stride
        self.gconv1 = conv_bn_act(in_ch, mid, 1, groups=g1, activation="relu", inplace=True)
        self.dwconv = conv_bn_act(mid, mid, 3, stride, groups=mid, activation=None)
        self.gconv2 = conv_bn_act(mid, branch_out, 1, groups=groups, activation=None)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gconv1(x)
        y = channel_shuffle(y, self.groups)
        y = self.gconv2(self.dwconv(y))
        s = self.shortcut(x)
        return torch.relu(s + y if self.stride == 1 else torch.cat([s, y], 1))


class ShuffleV2Block(nn.Module):
    """ShuffleNet v2 unit (Ma et al. 2018, Fig. 3c/d); same layers and names as torchvision's
    ``shufflenetv2.InvertedResidual``, so its ``state_dict`` loads unchanged.

    * ``stride=1``: split the channels in half, ``x1`` passes untouched (no add: guideline G4),
      ``x2`` goes through ``1x1 -> BN -> ReLU -> 3x3 dw -> BN -> 1x1 -> BN -> ReLU`` at equal widths (G1,
      dense 1x1s: G2); ``cat(x1, branch2(x2))``, then ``channel_shuffle(·, 2)``.
    * ``stride=2``: no split; ``branch1 = 3x3 dw/2 -> BN -> 1x1 -> BN -> ReLU`` and ``branch2`` (dw stride
      2) both see ``x``; concatenating them doubles the width.

    Args:
        in_ch: input channels (int >= 1; equal to ``out_ch`` for ``stride=1``).
        out_ch: output channels (an even int >= 2); each branch gives ``out_ch // 2``.
        stride: 1 (default; channel split) or 2 (both branches see ``x``, resolution halved).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        int_at_least("in_ch", in_ch)
        int_at_least("out_ch", out_ch)
        V.choice("stride", stride, (1, 2))
        if out_ch % 2:
            raise ValueError(f"out_ch={out_ch} must be even (two halves are concatenated)")
        if stride == 1 and in_ch != out_ch:
            raise ValueError(f"stride=1 splits and re-concatenates: in_ch={in_ch} must equal out_ch={out_ch}")
        self.stride = stride
        half = out_ch // 2
        if stride == 2:
            self.branch1 = nn.Sequential(  # one flat Sequential, as torchvision's (its state-dict keys)
                *conv_bn_act(in_ch, in_ch, 3, 2, groups=in_ch, activation=None),
                *conv_bn_act(in_ch, half, 1, activation="relu", inplace=True))
        else:
            self.branch1 = nn.Sequential()
        cin2 = in_ch if stride == 2 else half
        self.branch2 = nn.Sequential(
            *conv_bn_act(cin2, half, 1, activation="relu", inplace=True),
            *conv_bn_act(half, half, 3, stride, groups=half, activation=None),
            *conv_bn_act(half, half, 1, activation="relu", inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)
