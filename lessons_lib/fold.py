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

    Args:
        conv: the ``nn.Conv2d`` (with or without bias); left unchanged.
        bn: the ``nn.BatchNorm2d`` that follows it, with ``num_features == conv.out_channels`` and running
            statistics (its running mean / variance are used whatever its mode).

    Returns:
        ``nn.Conv2d``: a new conv with bias, on ``conv``'s device and dtype (folded in float64), the same
        geometry (stride, padding, dilation, groups, padding mode) and ``W' = W * factor``, ``b'`` as above.
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

    Args:
        model: any ``nn.Module``; left unchanged.

    Returns:
        ``nn.Module``: the folded copy, in eval mode (a pair split across containers is left unfolded).
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
    """How many submodules of ``model`` (itself included) are instances of ``kind`` (e.g. ``nn.BatchNorm2d``).

    Args:
        model: any ``nn.Module``.
        kind: an ``nn.Module`` subclass (or a tuple of them).

    Returns:
        The count, an int >= 0.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be a torch.nn.Module")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not kinds:
        raise ValueError("kind=() must name at least one nn.Module subclass")
    if not all(isinstance(k, type) and issubclass(k, nn.Module) for k in kinds):
        raise TypeError(f"kind={kind!r} must be an nn.Module subclass (e.g. nn.BatchNorm2d) or a tuple of them")
    return sum(isinstance(m, kind) for m in model.modules())
