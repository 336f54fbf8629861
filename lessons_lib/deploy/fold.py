"""Fold BatchNorm into the preceding convolution (the first layer fusion an engine builder applies).

In eval mode BatchNorm is a fixed per-channel affine map, so it can be merged into the conv before it
(document 000: layer fusion; TensorRT, onnxruntime and both PyTorch ONNX exporters do it):

.. math::
    y = \\gamma \\frac{(W * x + b) - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta
      = W' * x + b', \\quad
    W' = W \\cdot \\frac{\\gamma}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad
    b' = (b - \\mu) \\frac{\\gamma}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta

with the factor broadcast over output channel ``c`` (axis 0 of ``W: Tensor[C_out, C_in/g, kh, kw]``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``nn.Conv2d`` (with bias) computing ``bn(conv(x))`` of the eval-mode pair.

    Raises ``TypeError`` for other module types and ``ValueError`` when ``bn.num_features`` differs
    from ``conv.out_channels`` or the BN has no running statistics.
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv={type(conv).__name__} must be an nn.Conv2d")
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"bn={type(bn).__name__} must be an nn.BatchNorm2d")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"bn.num_features={bn.num_features} must equal conv.out_channels={conv.out_channels}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn has no running statistics (track_running_stats=False): nothing fixed to fold")
    with torch.no_grad():
        w = conv.weight.double()
        b = conv.bias.double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64,
                                                                             device=w.device)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(b)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(b)
        factor = gamma / torch.sqrt(bn.running_var.double() + bn.eps)          # [C_out]
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                          padding_mode=conv.padding_mode).to(device=conv.weight.device, dtype=conv.weight.dtype)
        fused.weight.copy_(w * factor.view(-1, 1, 1, 1))
        fused.bias.copy_((b - bn.running_mean.double()) * factor + beta)
    return fused


def fold_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (eval mode) where every ``Conv2d`` directly followed by a ``BatchNorm2d``
    inside an ``nn.Sequential`` is replaced by the folded conv and the BN by ``nn.Identity``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be a torch.nn.Module")
    folded = copy.deepcopy(model).eval()
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fold_batchnorm(conv, bn)
                seq._modules[b] = nn.Identity()
    return folded


def count_modules(model: nn.Module, kind: type) -> int:
    """How many submodules of ``model`` are instances of ``kind`` (e.g. ``nn.BatchNorm2d``)."""
    return sum(isinstance(m, kind) for m in model.modules())
