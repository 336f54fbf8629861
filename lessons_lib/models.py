"""The small CNNs used across lessons: a teacher and a student for the shapes / digits sets.

Both end in global average pooling, so they accept any input size (32x32 shapes, 8x8 digits).
``TeacherCNN`` is a plain VGG-style stack with BatchNorm (the model that lessons compress,
quantise and deploy); ``StudentCNN`` is ~10x cheaper (the model that distillation trains).
"""
from __future__ import annotations

from torch import nn


def conv_bn_relu(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU, 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class TeacherCNN(nn.Module):
    """``Tensor[N, in_ch, H, W] -> Tensor[N, num_classes]``; widths ``(w, 2w, 4w)``, two convs per stage."""

    def __init__(self, num_classes: int = 10, in_ch: int = 3, width: int = 32):
        super().__init__()
        if num_classes < 2 or in_ch < 1 or width < 1:
            raise ValueError(f"num_classes={num_classes}, in_ch={in_ch}, width={width}: need >= 2, >= 1, >= 1")
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(in_ch, w), conv_bn_relu(w, w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)

    def embed(self, x):
        """The pooled feature vector ``Tensor[N, 4w]`` (used by feature/relation distillation)."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


class StudentCNN(nn.Module):
    """``Tensor[N, in_ch, H, W] -> Tensor[N, num_classes]``; one conv per stage, widths ``(w, 2w, 4w)``."""

    def __init__(self, num_classes: int = 10, in_ch: int = 3, width: int = 8):
        super().__init__()
        if num_classes < 2 or in_ch < 1 or width < 1:
            raise ValueError(f"num_classes={num_classes}, in_ch={in_ch}, width={width}: need >= 2, >= 1, >= 1")
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(in_ch, w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(2 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)

    def embed(self, x):
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


MODELS = {"teacher": TeacherCNN, "student": StudentCNN}


def build(name: str, **kwargs) -> nn.Module:
    """``build("teacher")`` / ``build("student", width=16)``."""
    if name not in MODELS:
        raise ValueError(f"name={name!r} is not a model; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
