"""The small CNNs used across lessons: a teacher and a student for the shapes / digits sets.

Both end in global average pooling, so they accept any input size (32x32 shapes, 8x8 digits).
``TeacherCNN`` is a plain VGG-style stack with BatchNorm (the model that lessons compress,
quantise and deploy); ``StudentCNN`` is ~10x cheaper (the model that distillation trains).
"""
from __future__ import annotations

from torch import nn

from . import validate as V
from .blocks.layers import conv_bn_act


def _check_sizes(num_classes: object, in_ch: object, width: object) -> None:
    V.integer("num_classes", num_classes, 2), V.integer("in_ch", in_ch, 1), V.integer("width", width, 1)


def conv_bn_relu(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU (in place), 'same' padding: :func:`lessons_lib.blocks.conv_bn_act`.

    Args:
        in_ch, out_ch: input / output channels (ints >= 1, both divisible by ``groups``).
        k: kernel size (int >= 1; padding ``k // 2``, 'same' for odd ``k``; default 3).
        stride: conv stride (int >= 1; default 1).
        groups: conv groups (int >= 1 dividing ``in_ch`` and ``out_ch``; default 1).

    Returns:
        ``nn.Sequential`` (``Conv2d``, ``BatchNorm2d``, ``ReLU``): ``Tensor[N, in_ch, H, W] ->
        Tensor[N, out_ch, ceil(H/stride), ceil(W/stride)]`` for odd ``k``.
    """
    return conv_bn_act(in_ch, out_ch, k, stride, groups, activation="relu", padding=k // 2, inplace=True)


class _PooledCNN(nn.Module):
    """``features -> global average pool -> classifier``; subclasses build ``features``, ``pool`` and ``classifier``."""

    def embed(self, x):
        """The pooled feature vector ``Tensor[N, D]`` (used by feature / relation distillation)."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


class TeacherCNN(_PooledCNN):
    """``Tensor[N, in_ch, H, W] -> Tensor[N, num_classes]``; widths ``(w, 2w, 4w)``, two convs per stage.

    Args:
        num_classes: number of classes (int >= 2; default 10).
        in_ch: input channels (int >= 1; default 3).
        width: ``w``, the first stage's width (int >= 1; default 32).
    """

    def __init__(self, num_classes: int = 10, in_ch: int = 3, width: int = 32):
        super().__init__()
        _check_sizes(num_classes, in_ch, width)
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(in_ch, w), conv_bn_relu(w, w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)


class StudentCNN(_PooledCNN):
    """``Tensor[N, in_ch, H, W] -> Tensor[N, num_classes]``; one conv per stage, widths ``(w, 2w, 4w)``.

    Args:
        num_classes: number of classes (int >= 2; default 10).
        in_ch: input channels (int >= 1; default 3).
        width: ``w``, the first stage's width (int >= 1; default 8).
    """

    def __init__(self, num_classes: int = 10, in_ch: int = 3, width: int = 8):
        super().__init__()
        _check_sizes(num_classes, in_ch, width)
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(in_ch, w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(2 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)



MODELS = {"teacher": TeacherCNN, "student": StudentCNN}


def build(name: str, **kwargs) -> nn.Module:
    """``build("teacher")`` / ``build("student", width=16)``.

    Args:
        name: ``"student"`` or ``"teacher"`` (the keys of :data:`MODELS`).
        **kwargs: passed to the model's constructor (``num_classes``, ``in_ch``, ``width``).

    Returns:
        ``nn.Module``: a new, randomly initialised :class:`StudentCNN` or :class:`TeacherCNN`.
    """
    V.choice("name", name, sorted(MODELS))
    return MODELS[name](**kwargs)
