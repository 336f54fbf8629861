"""Inception-family pieces: factorised kernels, the "extreme" Inception (Xception), ResNeXt, IGC.

Sources: document 001 (§2.1.3 IGC, §2.1.4 Inception v1-v3, §2.1.5 Xception, §2.1.6 ResNeXt);
Szegedy et al. 2015/2016 (Inception v1, v3 "Rethinking": 5x5 -> two 3x3, n x n -> 1 x n + n x 1);
Chollet 2017 (Xception, Fig. 4 "extreme Inception"); Xie et al. 2017 (ResNeXt, Fig. 3a vs 3c);
Zhang et al. 2017 (IGC v1: primary group conv, permutation, secondary group conv).
Reference code: ``torchvision.models.resnet.Bottleneck`` (``groups``, ``base_width``).

Shapes: every tensor is ``Tensor[N, C, H, W]``.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bn_act
from .shuffle import channel_shuffle
from .. import validate as V
from ..validate import int_at_least

__all__ = ["factorized_conv", "InceptionBlock", "ExtremeInception",
           "extreme_inception_towers", "ResNeXtBranches", "ResNeXtGrouped", "grouped_from_branches", "IGCBlock"]


def factorized_conv(in_ch: int, out_ch: int, n: int, kind: str = "two3x3", *, mid_ch: int | None = None,
                    relu: bool = False, bias: bool = False) -> nn.Sequential:
    """An ``n x n`` receptive field built three ways (stride 1, "same" padding):

    * ``kind="full"``: one ``n x n`` conv -- ``n²·in·out`` weights;
    * ``kind="two3x3"``: ``(n-1)/2`` stacked 3x3 convs (Inception v2/v3: 5x5 -> two 3x3);
    * ``kind="asym"``: ``1 x n`` then ``n x 1`` (Inception v3; document 004's 5x1 + 1x5).

    Intermediate layers have ``mid_ch`` channels (default ``out_ch``); ``relu`` inserts a ReLU between
    them (the extra non-linearity Inception v2 credits the factorisation with). Measure the receptive
    field with ``lessons_lib.conv.impulse_receptive_field`` (use ``relu=False`` there: a linear chain).

    Args:
        in_ch, out_ch: input / output channels (ints >= 1).
        n: the receptive field's side (an odd int >= 1; >= 3 for ``kind="two3x3"``).
        kind: ``"full"``, ``"two3x3"`` (default) or ``"asym"``.
        mid_ch: width of the intermediate layers (``None``: ``out_ch``; or an int >= 1; unused by ``"full"``).
        relu: put an ``nn.ReLU`` between the convs (default ``False``).
        bias: give every conv a bias (default ``False``).

    Returns:
        ``nn.Sequential`` of ``nn.Conv2d`` (and ``nn.ReLU``) layers,
        ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H, W]``.
    """
    int_at_least("in_ch", in_ch)
    int_at_least("out_ch", out_ch)
    int_at_least("n", n)
    V.choice("kind", kind, ("full", "two3x3", "asym"))
    V.boolean("relu", relu), V.boolean("bias", bias)
    if n % 2 == 0:
        raise ValueError(f"n={n} must be odd (centred 'same' padding)")
    mid = out_ch if mid_ch is None else int_at_least("mid_ch", mid_ch)
    if kind == "full":
        return nn.Sequential(nn.Conv2d(in_ch, out_ch, n, 1, n // 2, bias=bias))
    if kind == "two3x3":
        if n < 3:
            raise ValueError(f"n={n} must be >= 3 for kind='two3x3'")
        depth = (n - 1) // 2
        widths = [in_ch] + [mid] * (depth - 1) + [out_ch]
        specs = [((3, 3), (1, 1))] * depth
    elif kind == "asym":
        widths = [in_ch, mid, out_ch]
        specs = [((1, n), (0, n // 2)), ((n, 1), (n // 2, 0))]
    else:
        raise ValueError(f"kind={kind!r} must be 'full', 'two3x3' or 'asym'")
    layers: list[nn.Module] = []
    for i, (k, p) in enumerate(specs):
        layers.append(nn.Conv2d(widths[i], widths[i + 1], k, 1, p, bias=bias))
        if relu and i < len(specs) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _cbr(cin: int, cout: int, k: int) -> nn.Sequential:
    return conv_bn_act(cin, cout, k, activation="relu", inplace=True)


class InceptionBlock(nn.Module):
    """GoogLeNet Inception module (v1 with 1x1 reductions) -- four parallel towers, concatenated:
    ``1x1`` | ``1x1 -> 3x3`` | ``1x1 -> 5x5`` (or ``1x1 -> 3x3 -> 3x3`` with ``factorize5x5=True``,
    Inception v2) | ``3x3 max-pool -> 1x1``. Output channels ``ch1 + ch3 + ch5 + pool_proj``.

    Every conv is Conv -> BN -> ReLU, stride 1, 'same' padding: ``Tensor[N, in_ch, H, W] ->
    Tensor[N, ch1 + ch3 + ch5 + pool_proj, H, W]``.

    Args:
        in_ch: input channels (int >= 1).
        ch1: width of the 1x1 tower (int >= 1).
        ch3red, ch3: 1x1 reduction and 3x3 widths of the second tower (ints >= 1).
        ch5red, ch5: 1x1 reduction and 5x5 (or two 3x3) widths of the third tower (ints >= 1).
        pool_proj: width of the 1x1 after the max-pool (int >= 1).
        factorize5x5: replace the 5x5 by two 3x3 convs (default ``False``).
    """

    def __init__(self, in_ch: int, ch1: int, ch3red: int, ch3: int, ch5red: int, ch5: int, pool_proj: int,
                 *, factorize5x5: bool = False):
        super().__init__()
        for name, v in (("in_ch", in_ch), ("ch1", ch1), ("ch3red", ch3red), ("ch3", ch3), ("ch5red", ch5red),
                        ("ch5", ch5), ("pool_proj", pool_proj)):
            int_at_least(name, v)
        V.boolean("factorize5x5", factorize5x5)
        self.branch1 = _cbr(in_ch, ch1, 1)
        self.branch2 = nn.Sequential(_cbr(in_ch, ch3red, 1), _cbr(ch3red, ch3, 3))
        five = [_cbr(ch5red, ch5, 3), _cbr(ch5, ch5, 3)] if factorize5x5 else [_cbr(ch5red, ch5, 5)]
        self.branch3 = nn.Sequential(_cbr(in_ch, ch5red, 1), *five)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), _cbr(in_ch, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class ExtremeInception(nn.Module):
    """Xception's "extreme" Inception (Chollet 2017, Fig. 4; document 001 §2.1.5): one 1x1 conv
    ``in -> out``, then a separate ``k x k`` conv on **each** output channel (a depthwise conv,
    ``groups = out``). Equal to ``out`` Inception towers of width 1 -- see :func:`extreme_inception_towers`.
    (The Xception network itself orders them depthwise-then-pointwise, as a separable conv.)

    No biases, no BN: ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H', W']`` ('same' for odd ``k``).

    Args:
        in_ch, out_ch: input / output channels (ints >= 1).
        k: kernel size of the depthwise conv (int >= 1, padding ``k // 2``; default 3).
    """

    def __init__(self, in_ch: int, out_ch: int, k: int = 3):
        super().__init__()
        int_at_least("in_ch", in_ch)
        int_at_least("out_ch", out_ch)
        int_at_least("k", k)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.depthwise = nn.Conv2d(out_ch, out_ch, k, 1, k // 2, groups=out_ch, bias=False)

    def forward(self, x):
        return self.depthwise(self.pointwise(x))


def extreme_inception_towers(block: ExtremeInception, x: torch.Tensor) -> torch.Tensor:
    """The same computation as ``block(x)`` written as ``out`` Inception towers, each ``1x1 (in -> 1) ->
    k x k (1 -> 1)``, concatenated -- a loop over towers, using ``block``'s weights.

    Args:
        block: the :class:`ExtremeInception` whose weights are used.
        x: input ``Tensor[N, in_ch, H, W]`` (floating dtype, ``in_ch`` the block's input channels).

    Returns:
        ``Tensor[N, out_ch, H', W']``: equal to ``block(x)`` up to rounding.
    """
    if not isinstance(block, ExtremeInception):
        raise TypeError(f"block={type(block).__name__} must be an ExtremeInception")
    V.tensor("x", x, dtype="floating", layout="Tensor[N, C, H, W]")
    if x.shape[1] != block.pointwise.in_channels:
        raise ValueError(f"x={V.show(x)} must have C={block.pointwise.in_channels} channels (the block's in_ch)")
    pw, dw = block.pointwise.weight, block.depthwise.weight
    towers = []
    for i in range(pw.shape[0]):
        t = nn.functional.conv2d(x, pw[i:i + 1])
        towers.append(nn.functional.conv2d(t, dw[i:i + 1], padding=block.depthwise.padding))
    return torch.cat(towers, 1)


class ResNeXtBranches(nn.Module):
    """ResNeXt block as ``C`` parallel branches (Xie et al. 2017, Fig. 3a; document 001 §2.1.6):
    ``y = ReLU(x + BN(Σ_i T_i(x)))`` with ``T_i = 1x1 (in -> d) -> BN -> ReLU -> 3x3 (d -> d) -> BN -> ReLU
    -> 1x1 (d -> out)``. ``cardinality = C``, ``width = d`` (the bottleneck width of one branch).

    Args:
        in_ch, out_ch: input / output channels (ints >= 1, equal: the shortcut is the identity).
        cardinality: number of branches ``C`` (int >= 1).
        width: bottleneck width ``d`` of one branch (int >= 1).
    """

    def __init__(self, in_ch: int, out_ch: int, cardinality: int, width: int):
        super().__init__()
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("cardinality", cardinality), ("width", width)):
            int_at_least(name, v)
        if in_ch != out_ch:
            raise ValueError(f"the identity shortcut needs in_ch={in_ch} == out_ch={out_ch}")
        d = width
        self.branches = nn.ModuleList(nn.Sequential(
            *conv_bn_act(in_ch, d, 1, activation="relu"), *conv_bn_act(d, d, 3, activation="relu"),
            nn.Conv2d(d, out_ch, 1, bias=False)) for _ in range(cardinality))
        self.bn3 = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return torch.relu(x + self.bn3(sum(b(x) for b in self.branches)))


class ResNeXtGrouped(nn.Module):
    """The same block as one grouped conv (Fig. 3c): ``1x1 (in -> C·d) -> 3x3 group conv (groups=C)
    -> 1x1 (C·d -> out)``. Layer names follow ``torchvision.models.resnet.Bottleneck`` (``conv1, bn1, conv2,
    bn2, conv3, bn3``), so a torchvision ResNeXt bottleneck's ``state_dict`` loads unchanged.

    Args:
        in_ch, out_ch: input / output channels (ints >= 1, equal: the shortcut is the identity).
        cardinality: groups ``C`` of the 3x3 conv (int >= 1).
        width: channels ``d`` per group (int >= 1); the grouped layers have ``C·d`` channels.
    """

    def __init__(self, in_ch: int, out_ch: int, cardinality: int, width: int):
        super().__init__()
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("cardinality", cardinality), ("width", width)):
            int_at_least(name, v)
        if in_ch != out_ch:
            raise ValueError(f"the identity shortcut needs in_ch={in_ch} == out_ch={out_ch}")
        w = cardinality * width
        self.conv1, self.bn1 = nn.Conv2d(in_ch, w, 1, bias=False), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = nn.Conv2d(w, w, 3, 1, 1, groups=cardinality, bias=False), nn.BatchNorm2d(w)
        self.conv3, self.bn3 = nn.Conv2d(w, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + x)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, sl: slice) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).data[sl] = getattr(src, name).data
    dst.eps = src.eps


@torch.no_grad()
def grouped_from_branches(branches: ResNeXtBranches) -> ResNeXtGrouped:
    """Copy the weights of ``C`` branches into one :class:`ResNeXtGrouped`: branch ``i``'s first 1x1 gives
    output rows ``i·d:(i+1)·d``, its 3x3 becomes group ``i``, its last 1x1 input columns ``i·d:(i+1)·d``
    (summing branch outputs = one 1x1 over their concatenation). In eval mode the two are equal.

    Args:
        branches: the :class:`ResNeXtBranches` to copy (left unchanged).

    Returns:
        :class:`ResNeXtGrouped`: a new block with the same weights and BN statistics, in ``branches``'
        training mode.
    """
    if not isinstance(branches, ResNeXtBranches):
        raise TypeError(f"branches={type(branches).__name__} must be a ResNeXtBranches")
    first = branches.branches[0]
    d, in_ch, out_ch, C = first[0].out_channels, first[0].in_channels, first[6].out_channels, len(branches.branches)
    g = ResNeXtGrouped(in_ch, out_ch, C, d)
    for i, b in enumerate(branches.branches):
        sl = slice(i * d, (i + 1) * d)
        g.conv1.weight[sl] = b[0].weight
        _copy_bn(g.bn1, b[1], sl)
        g.conv2.weight[sl] = b[3].weight
        _copy_bn(g.bn2, b[4], sl)
        g.conv3.weight[:, sl] = b[6].weight
    g.bn3.load_state_dict(branches.bn3.state_dict())
    return g.train(branches.training)


class IGCBlock(nn.Module):
    """Interleaved group convolution (IGC v1; document 001 §2.1.3), width ``C = L·M``:

    1. primary ``k x k`` group conv with ``L`` groups of ``M`` channels;
    2. permutation ``channel_shuffle(·, L)``: secondary group ``j`` takes channel ``j`` of every primary group;
    3. secondary 1x1 group conv with ``M`` groups of ``L`` channels;
    4. the inverse permutation ``channel_shuffle(·, M)`` restores the order.

    Weights: ``k²·L·M² + L²·M``, vs ``k²·L²·M²`` for a dense ``k x k`` conv of the same width. ``M = 1`` gives
    a depthwise + pointwise (Xception-like) block; ``L = 1`` a dense conv followed by a per-channel scale.

    ``Tensor[N, L·M, H, W] -> Tensor[N, L·M, H', W']`` (no biases, no BN; 'same' for odd ``k``).

    Args:
        L: number of primary groups (int >= 1).
        M: channels per primary group = number of secondary groups (int >= 1).
        k: kernel size of the primary conv (int >= 1, padding ``k // 2``; default 3).
    """

    def __init__(self, L: int, M: int, k: int = 3):
        super().__init__()
        int_at_least("L", L)
        int_at_least("M", M)
        int_at_least("k", k)
        self.L, self.M = L, M
        C = L * M
        self.primary = nn.Conv2d(C, C, k, 1, k // 2, groups=L, bias=False)
        self.secondary = nn.Conv2d(C, C, 1, groups=M, bias=False)

    def forward(self, x):
        y = channel_shuffle(self.primary(x), self.L)
        return channel_shuffle(self.secondary(y), self.M)
