"""MobileNet v1 / v2 / v3 building blocks and tiny MobileNets for 32x32 inputs (lesson 02).

* :class:`DepthwiseSeparableConv` (v1): depthwise kxk + BN + act, pointwise 1x1 + BN + act.
  Params (no biases): ``k*k*C_in + C_in*C_out`` weights + ``2*(C_in + C_out)`` BN affine.
* :class:`InvertedResidual` (v2, v3): 1x1 expand to ``E`` channels + BN + act (skipped when
  ``E == C_in``), depthwise kxk (stride) + BN + act, optional :class:`SqueezeExcite` on the ``E``
  expanded channels (v3 puts it after the depthwise conv), 1x1 project + BN with **no activation**
  (the linear bottleneck); ``out = x + block(x)`` when ``stride == 1 and C_in == C_out``.
  Params: ``C_in*E + k*k*E + E*C_out`` weights + BN ``2*(E + E + C_out)`` (+ ``2*E*s + s + E`` for SE).
  The layer order matches ``torchvision.models.mobilenetv2.InvertedResidual`` and
  ``torchvision.models.mobilenetv3.InvertedResidual``, so their state dicts copy across in order.
* :func:`tiny_mobilenet` -- v1 / v2 / v3-style classifiers for the 32x32 shapes set, built from these
  blocks, with a width multiplier (v2: an expansion ratio too). v3 moves its last wide 1x1 layer
  after global pooling (document 001: "the tail") and starts with 16 instead of 32 channels.

Source: document 001 section 2.1.2; torchvision ``mobilenetv2.py`` / ``mobilenetv3.py``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import conv_bn_act
from .se import SqueezeExcite
from .. import activations
from .. import validate as V
from ..validate import int_at_least

__all__ = ["make_divisible", "DepthwiseSeparableConv", "InvertedResidual", "TinyMobileNet",
           "tiny_mobilenet", "spiral", "relu_roundtrip"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` channels to a multiple of ``divisor``, never below 90 % of ``v`` (torchvision's rule).

    Args:
        v: the unrounded number of channels (a finite number > 0).
        divisor: the multiple to round to (int >= 1; default 8).
        min_value: the smallest result (``None``: ``divisor``, the default; or an int >= 1).

    Returns:
        ``int``: the rounded number of channels, a multiple of ``divisor`` (unless ``min_value`` is not), >= 0.9 v.
    """
    V.real("v", v, 0)  # v = 0 gives min_value, as torchvision's _make_divisible does
    int_at_least("divisor", divisor), V.integer("min_value", min_value, 1, none_ok=True)
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class DepthwiseSeparableConv(nn.Module):
    """MobileNet v1 unit: ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H/stride, W/stride]``.

    Args:
        in_ch, out_ch: input / output channels (ints >= 1).
        stride: stride of the depthwise conv, 1 (default) or 2.
        kernel_size: depthwise kernel size (int >= 1; default 3).
        activation: a name from :data:`lessons_lib.activations.ACTIVATIONS` used after both BNs (default ``"relu6"``).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, kernel_size: int = 3, activation: str = "relu6"):
        super().__init__()
        int_at_least("in_ch", in_ch), int_at_least("out_ch", out_ch), int_at_least("kernel_size", kernel_size)
        V.choice("stride", stride, (1, 2))
        activations.module(activation)  # an unknown name fails before any layer is built
        self.depthwise = conv_bn_act(in_ch, in_ch, kernel_size, stride, groups=in_ch, activation=activation)
        self.pointwise = conv_bn_act(in_ch, out_ch, 1, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class InvertedResidual(nn.Module):
    """MobileNet v2/v3 block: ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H/stride, W/stride]``.

    The expanded width is ``expanded_ch`` if given (v3 tables list it), else
    ``round(in_ch * expand_ratio)`` (v2). ``use_se`` adds SqueezeExcite on the expanded channels with
    ``make_divisible(E // 4, 8)`` squeeze channels and a hard-sigmoid gate (as MobileNet v3).

    Args:
        in_ch, out_ch: input / output channels (ints >= 1); the residual is added when they are equal and
            ``stride == 1``.
        stride: stride of the depthwise conv, 1 (default) or 2.
        expand_ratio: v2's ``t``, a finite number >= 1 (default 6); used (and checked) only when
            ``expanded_ch`` is ``None``.
        expanded_ch: ``E``, the expanded width (``None``: ``round(in_ch * expand_ratio)``; or an int >= 1).
            ``E == in_ch`` skips the expand conv.
        kernel_size: depthwise kernel size (int >= 1; default 3).
        use_se: add a :class:`SqueezeExcite` after the depthwise conv (default ``False``).
        activation: a name from :data:`lessons_lib.activations.ACTIVATIONS` for the expand and depthwise layers
            (default ``"relu6"``); the projection has none.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expand_ratio: float = 6, *,
                 expanded_ch: int | None = None, kernel_size: int = 3, use_se: bool = False,
                 activation: str = "relu6"):
        super().__init__()
        int_at_least("in_ch", in_ch), int_at_least("out_ch", out_ch), int_at_least("kernel_size", kernel_size)
        V.choice("stride", stride, (1, 2))
        if expanded_ch is None:
            V.real("expand_ratio", expand_ratio, 1)
            expanded_ch = int(round(in_ch * expand_ratio))
        int_at_least("expanded_ch", expanded_ch)
        V.boolean("use_se", use_se)
        activations.module(activation)  # an unknown name fails before any layer is built
        self.in_ch, self.out_ch, self.expanded_ch, self.stride = in_ch, out_ch, expanded_ch, stride
        self.use_residual = stride == 1 and in_ch == out_ch
        e = expanded_ch
        self.expand = conv_bn_act(in_ch, e, 1, activation=activation) if e != in_ch else nn.Identity()
        self.depthwise = conv_bn_act(e, e, kernel_size, stride, groups=e, activation=activation)
        self.se = (SqueezeExcite(e, squeeze_channels=make_divisible(e // 4, 8), gate="hard_sigmoid")
                   if use_se else nn.Identity())
        self.project = conv_bn_act(e, out_ch, 1, activation=None)  # linear bottleneck: no activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.use_residual else y


# ------------------------------------------------------------------- the linear-bottleneck argument
def spiral(n_points: int = 1000, turns: float = 2.0) -> torch.Tensor:
    """A 2-D spiral ``Tensor[n_points, 2]`` centred on the origin (the MobileNet v2 paper's toy manifold).

    Args:
        n_points: number of points (int >= 2; default 1000).
        turns: number of turns (a finite number; default 2.0; negative winds the other way).

    Returns:
        ``Tensor[n_points, 2]`` float64: the points ``t * (cos(2 pi turns t), sin(2 pi turns t))``,
        ``t`` evenly spaced in [0.05, 1].
    """
    int_at_least("n_points", n_points, 2), V.real("turns", turns)
    t = torch.linspace(0.05, 1.0, n_points, dtype=torch.float64)
    ang = 2 * torch.pi * turns * t
    return torch.stack([t * torch.cos(ang), t * torch.sin(ang)], 1)


def relu_roundtrip(points: torch.Tensor, n: int, *, seed: int = 0, activation=torch.relu,
                   decoder: str = "lstsq") -> tuple[torch.Tensor, float, float]:
    """Embed 2-D ``points`` in ``n`` dims with a random ``T: Tensor[n, 2]``, apply ``activation``, map back.

    ``decoder="pinv"`` maps back with the pseudo-inverse, ``x' = pinv(T) @ act(T @ x)`` (the paper's
    figure); ``"lstsq"`` fits the best affine map from ``act(T x)`` to ``x`` (what a following linear
    layer could at best recover). Returns ``(x', ||x' - x||_F / ||x||_F, recoverable)`` where
    ``recoverable`` is the fraction of points whose *active* rows of ``T`` (``T x > 0``) still span
    R^2, so that ``x`` is exactly determined by the ReLU output. With the identity as ``activation``
    the error is 0 for every ``n >= 2``: the loss is ReLU's doing.

    Args:
        points: the 2-D points, a floating-dtype ``Tensor[N, 2]`` (e.g. :func:`spiral`).
        n: the embedding dimension (int >= 2).
        seed: seed of the random ``T`` (int >= 0; default 0).
        activation: a callable applied elementwise to ``Tensor[N, n]`` float64 (default ``torch.relu``).
        decoder: ``"lstsq"`` (default) or ``"pinv"``.

    Returns:
        ``tuple[Tensor, float, float]``: ``(x', relative error, recoverable)``, ``x'`` a float64 ``Tensor[N, 2]``,
        the error ``||x' - x||_F / ||x||_F`` and ``recoverable`` a fraction in [0, 1].
    """
    V.tensor("points", points, dtype="floating")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points={V.show(points)} must be a Tensor[N, 2]")
    int_at_least("n", n, 2), V.integer("seed", seed, 0), V.function("activation", activation)
    V.choice("decoder", decoder, ("lstsq", "pinv"))
    x = points.double()
    T = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = activation(x @ T.T)
    if decoder == "pinv":
        back = y @ torch.linalg.pinv(T).T
    else:
        A = torch.cat([y, torch.ones(len(y), 1, dtype=y.dtype)], 1)
        back = A @ torch.linalg.lstsq(A, x).solution
    active = (x @ T.T) > 0
    # the active rows span R^2 iff they contain two non-parallel directions: check via 2x2 Gram determinant
    G = torch.einsum("pi,ij,ik->pjk", active.double(), T, T)
    recoverable = float((torch.linalg.det(G) > 1e-9).double().mean())
    return back, float(torch.linalg.norm(back - x) / torch.linalg.norm(x)), recoverable


# ------------------------------------------------------------------------------ tiny networks
# v2 (t multiplies): (expand ratio or None for "t", out channels, repeats, first stride)
_V2 = [(1, 16, 1, 1), (None, 24, 2, 2), (None, 48, 2, 2), (None, 64, 2, 1)]
# v3 (like MobileNetV3-Small, scaled to 32x32): (expanded, out, use_se, activation, stride)
_V3 = [[(16, 16, True, "relu", 1)],
       [(64, 24, False, "relu", 2), (72, 24, False, "relu", 1)],
       [(96, 40, True, "hard_swish", 2), (120, 40, True, "hard_swish", 1)],
       [(144, 48, True, "hard_swish", 1), (144, 48, True, "hard_swish", 1)]]


class TinyMobileNet(nn.Module):
    """``Tensor[N, 3, 32, 32] -> Tensor[N, classes]``: ``features`` (stem, stage1.., head) -> global
    average pool -> ``tail`` (v3: a 1x1 layer on the pooled vector; v1/v2: nothing) -> ``classifier``.

    Args:
        features: a non-empty ``OrderedDict`` name -> ``nn.Module`` (stem, stages, head), run in order.
        tail: the ``nn.Module`` applied to the pooled ``Tensor[N, C]`` (``nn.Identity()`` for v1/v2).
        feat_ch: width of the tail's output, the classifier's input features (int >= 1).
        num_classes: number of classes (int >= 2).
        version: the MobileNet version, 1, 2 or 3 (recorded as ``self.version``).
    """

    def __init__(self, features: "OrderedDict[str, nn.Module]", tail: nn.Module, feat_ch: int, num_classes: int,
                 version: int):
        super().__init__()
        V.instance("features", features, OrderedDict, "an OrderedDict name -> nn.Module")
        if not features:
            raise ValueError("features=OrderedDict() must hold at least one layer")
        for name, m in features.items():
            V.module(f"features[{name!r}]", m)
        V.module("tail", tail), int_at_least("feat_ch", feat_ch), int_at_least("num_classes", num_classes, 2)
        V.choice("version", version, (1, 2, 3))
        self.version = version
        self.features = nn.Sequential(features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.tail = tail
        self.classifier = nn.Linear(feat_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.tail(self.pool(self.features(x)).flatten(1)))

    def stage_costs(self, input_shape=(1, 3, 32, 32)) -> list[dict]:
        """Params, MACs (conv + linear) and output shape per stage, from ``profile.profile_model``."""
        from ..profile import profile_model

        rep = profile_model(self, input_shape)
        rows: "OrderedDict[str, dict]" = OrderedDict()
        for r in rep.rows:
            parts = r.name.split(".")
            key = parts[1] if parts[0] == "features" else parts[0]
            d = rows.setdefault(key, {"stage": key, "params": 0, "macs": 0, "out_shape": r.out_shape})
            d["params"] += r.params
            d["macs"] += r.macs
            d["out_shape"] = r.out_shape
        return list(rows.values())


def tiny_mobilenet(version: int, *, width_mult: float = 1.0, expand_ratio: float = 6, use_se: bool | None = None,
                   num_classes: int = 10, in_ch: int = 3) -> TinyMobileNet:
    """A small MobileNet ``version`` 1, 2 or 3 for 32x32 inputs (stem stride 2, then 16 -> 8 -> 4 pixels).

    ``width_mult`` scales every width (rounded with :func:`make_divisible`); ``expand_ratio`` is v2's
    ``t``; ``use_se`` (v3 only) forces SE on (True) or off (False) in every block, ``None`` keeps the table.

    Args:
        version: 1, 2 or 3.
        width_mult: width multiplier, a number in (0, 4] (default 1.0).
        expand_ratio: v2's ``t``, a finite number >= 1 (default 6; checked but unused for v1 / v3).
        use_se: ``None`` (default), or a bool with ``version=3`` only (``ValueError`` otherwise).
        num_classes: number of classes (int >= 2; default 10).
        in_ch: input channels (int >= 1; default 3).

    Returns:
        :class:`TinyMobileNet`: ``Tensor[N, in_ch, 32, 32] -> Tensor[N, num_classes]`` logits, freshly initialised.
    """
    V.choice("version", version, (1, 2, 3))
    V.real("width_mult", width_mult, 0, 4, low_open=True), V.real("expand_ratio", expand_ratio, 1)
    V.boolean("use_se", use_se, none_ok=True)
    if use_se is not None and version != 3:
        raise ValueError(f"use_se={use_se!r} must be None, or a bool with version=3 (got version={version})")
    int_at_least("num_classes", num_classes, 2), int_at_least("in_ch", in_ch)
    ch = lambda c: make_divisible(c * width_mult, 8)  # noqa: E731
    f: "OrderedDict[str, nn.Module]" = OrderedDict()
    tail: nn.Module = nn.Identity()
    if version == 1:
        f["stem"] = conv_bn_act(in_ch, ch(32), 3, 2)
        plan = [[(32, 64, 1)], [(64, 128, 2), (128, 128, 1)], [(128, 256, 2), (256, 256, 1)]]
        for i, stage in enumerate(plan, 1):
            f[f"stage{i}"] = nn.Sequential(*[DepthwiseSeparableConv(ch(a), ch(b), s) for a, b, s in stage])
        feat = ch(256)
    elif version == 2:
        f["stem"] = conv_bn_act(in_ch, ch(32), 3, 2)
        c_in = ch(32)
        for i, (t, c, n, s) in enumerate(_V2, 1):
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(c_in, ch(c), s if j == 0 else 1, expand_ratio if t is None else t))
                c_in = ch(c)
            f[f"stage{i}"] = nn.Sequential(*blocks)
        feat = max(ch(320), 320)  # like torchvision: the last conv does not shrink below its base width
        f["head"] = conv_bn_act(c_in, feat, 1)
    else:
        f["stem"] = conv_bn_act(in_ch, ch(16), 3, 2, activation="hard_swish")
        c_in = ch(16)
        for i, stage in enumerate(_V3, 1):
            blocks = []
            for e, c, se, act, s in stage:
                blocks.append(InvertedResidual(c_in, ch(c), s, expanded_ch=ch(e), activation=act,
                                               use_se=se if use_se is None else use_se))
                c_in = ch(c)
            f[f"stage{i}"] = nn.Sequential(*blocks)
        head = ch(288)
        f["head"] = conv_bn_act(c_in, head, 1, activation="hard_swish")
        feat = max(ch(256), 256)
        tail = nn.Sequential(nn.Linear(head, feat), activations.module("hard_swish"))  # after pooling: 1x1 instead of 4x4
    return TinyMobileNet(f, tail, feat, num_classes, version)
