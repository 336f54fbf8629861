"""Parameters, MACs, memory traffic and receptive fields of standard, grouped and depthwise convs.

Symbols follow document 001 (端侧CNN参数压缩和加速, section 2.1): input ``Tensor[N, c1, H, W]``, kernel
``h1 x w1``, output ``Tensor[N, c2, h2, w2]``, ``g`` groups. In code: ``in_ch = c1``,
``out_ch = c2``, ``kernel_size = (h1, w1)``, ``out_hw = (h2, w2)``, ``groups = g``.

* params of a conv:  ``h1 * w1 * (c1 / g) * c2``            (+ ``c2`` with bias) -- 1/g of a standard conv
* MACs of a conv:    ``h1 * w1 * (c1 / g) * c2 * h2 * w2``  (per image, bias excluded, as fvcore counts)
* depthwise = ``g = c1 = c2``; pointwise = ``1 x 1``; depthwise separable = depthwise ``h1 x w1`` + pointwise,
  whose cost relative to a standard conv is ``1/c2 + 1/(h1*w1)`` (params and MACs alike).
* memory access of a layer = bytes of weights + input + output activations (ShuffleNet v2's "MAC" in the
  memory sense); arithmetic intensity = FLOPs / bytes, FLOPs = 2 x MACs.

Document 004 adds the dilated 3x3 (``d = 2``, receptive field 5x5) and the ``5x1 + 1x5`` factorisation of a
5x5; :func:`receptive_field` and :func:`impulse_receptive_field` compute and measure those.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from . import validate as V
from .validate import int_at_least

Pair = tuple[int, int]
CONV_KINDS = ("standard", "grouped", "depthwise", "pointwise", "separable", "dilated", "factorized")


# ------------------------------------------------------------------------------------ validation
def _pair(name: str, value: object, minimum: int = 1) -> Pair:
    """An int or an (h, w) pair of ints >= ``minimum``, as a tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}={value!r} must be an int or an (h, w) pair")
        return int_at_least(name, value[0], minimum), int_at_least(name, value[1], minimum)
    v = int_at_least(name, value, minimum)
    return v, v


def _groups(in_ch: int, out_ch: int, groups: object) -> int:
    g = int_at_least("groups", groups)
    if in_ch % g:
        raise ValueError(f"groups={g} must divide in_ch={in_ch}")
    if out_ch % g:
        raise ValueError(f"groups={g} must divide out_ch={out_ch}")
    return g


# ------------------------------------------------------------------------------ counting formulas
def conv2d_params(in_ch: int, out_ch: int, kernel_size: int | Pair, groups: int = 1, bias: bool = False) -> int:
    """Weights of ``nn.Conv2d(in_ch, out_ch, kernel_size, groups=groups, bias=bias)``.

    ``h1 * w1 * (c1 / g) * c2`` (+ ``c2`` bias terms): each of the ``c2`` filters sees ``c1 / g`` channels,
    so a grouped conv has 1/g of a standard conv's weights (document 001, 2.1.1).

    Args:
        in_ch, out_ch: ``c1``, ``c2`` (ints >= 1, both divisible by ``groups``).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.
        groups: ``g`` (int >= 1 dividing ``in_ch`` and ``out_ch``; default 1).
        bias: count the ``c2`` bias terms too (default ``False``).

    Returns:
        ``int``: the number of parameters.
    """
    in_ch, out_ch = int_at_least("in_ch", in_ch), int_at_least("out_ch", out_ch)
    kh, kw = _pair("kernel_size", kernel_size)
    g = _groups(in_ch, out_ch, groups)
    V.boolean("bias", bias)
    return kh * kw * (in_ch // g) * out_ch + (out_ch if bias else 0)


def conv2d_macs(in_ch: int, out_ch: int, kernel_size: int | Pair, out_hw: int | Pair, groups: int = 1) -> int:
    """Multiply-accumulates of one image through the conv: ``h1 * w1 * (c1 / g) * c2 * h2 * w2``.

    Every output element (``c2 * h2 * w2`` of them) is a dot product of length ``h1 * w1 * c1 / g``.
    Bias excluded (fvcore's and torchvision's convention). Multiply by the batch size for a batch.

    Args:
        in_ch, out_ch: ``c1``, ``c2`` (ints >= 1, both divisible by ``groups``).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.
        out_hw: the output size ``(h2, w2)``, an int >= 1 or a pair of them (see :func:`conv2d_out_size`).
        groups: ``g`` (int >= 1 dividing ``in_ch`` and ``out_ch``; default 1).

    Returns:
        ``int``: MACs per image.
    """
    kh, kw = _pair("kernel_size", kernel_size)
    h2, w2 = _pair("out_hw", out_hw)
    return conv2d_params(in_ch, out_ch, (kh, kw), groups) * h2 * w2


def memory_bytes(weights: int, in_elems: int, out_elems: int, bytes_per_elem: int = 4) -> int:
    """Memory access of one layer call: ``(weights + input elements + output elements) * bytes_per_elem``.

    Weights read once, input read once, output written once -- the lower bound a perfect cache would
    reach (ShuffleNet v2's "MAC" in the memory sense). ``bytes_per_elem=1`` counts elements.

    Args:
        weights: number of weights (int >= 0).
        in_elems, out_elems: number of input / output activation elements (ints >= 0).
        bytes_per_elem: size of one element in bytes (int >= 1; default 4, float32).

    Returns:
        ``int``: bytes moved.
    """
    total = sum(int_at_least(n, v, 0) for n, v in (("weights", weights), ("in_elems", in_elems),
                                                     ("out_elems", out_elems)))
    return total * int_at_least("bytes_per_elem", bytes_per_elem)


def separable_ratio(out_ch: int, kernel_size: int | Pair) -> float:
    """Cost of depthwise (h1 x w1) + pointwise (1 x 1) relative to a standard h1 x w1 conv: ``1/c2 + 1/(h1*w1)``.

    Holds for parameters and for MACs alike (``c1`` and ``h2 * w2`` cancel; document 001, 2.1.2).

    Args:
        out_ch: ``c2`` (int >= 1).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.

    Returns:
        ``float``: the ratio ``1/c2 + 1/(h1*w1)`` (< 1 unless the kernel or ``c2`` is tiny).
    """
    out_ch = int_at_least("out_ch", out_ch)
    kh, kw = _pair("kernel_size", kernel_size)
    return 1.0 / out_ch + 1.0 / (kh * kw)


def separable_params(in_ch: int, out_ch: int, kernel_size: int | Pair) -> int:
    """Depthwise + pointwise weights: ``h1 * w1 * c1 + c1 * c2`` (no bias).

    Args:
        in_ch, out_ch: ``c1``, ``c2`` (ints >= 1).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.

    Returns:
        ``int``: the number of weights of the depthwise and pointwise convs together.
    """
    return conv2d_params(in_ch, in_ch, kernel_size, groups=in_ch) + conv2d_params(in_ch, out_ch, 1)


def separable_params_doc001(in_ch: int, out_ch: int, kernel_size: int | Pair) -> int:
    """The total as document 001 prints it, ``h1 * w1 * c2 + c1 * c2`` -- a slip: the depthwise part has
    ``c1`` filters, so it is ``h1 * w1 * c1`` (see :func:`separable_params`). Kept to show the difference.

    Args:
        in_ch, out_ch: ``c1``, ``c2`` (ints >= 1).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.

    Returns:
        ``int``: ``h1 * w1 * c2 + c1 * c2`` (wrong unless ``c1 == c2``).
    """
    in_ch, out_ch = int_at_least("in_ch", in_ch), int_at_least("out_ch", out_ch)
    kh, kw = _pair("kernel_size", kernel_size)
    return kh * kw * out_ch + in_ch * out_ch


# ------------------------------------------------------------------------- geometry of the output
def effective_kernel(kernel_size: int | Pair, dilation: int | Pair = 1) -> Pair:
    """Span of a dilated kernel: ``d * (k - 1) + 1`` per axis (a 3x3 with d=2 spans 5x5).

    Args:
        kernel_size: ``k``, an int >= 1 or an ``(h, w)`` pair of them.
        dilation: ``d``, an int >= 1 or an ``(h, w)`` pair of them (default 1).

    Returns:
        ``tuple[int, int]``: the span ``(h, w)`` in input pixels.
    """
    kh, kw = _pair("kernel_size", kernel_size)
    dh, dw = _pair("dilation", dilation)
    return dh * (kh - 1) + 1, dw * (kw - 1) + 1


def same_padding(kernel_size: int | Pair, dilation: int | Pair = 1) -> Pair:
    """Padding that keeps ``H x W`` at stride 1 for an odd (effective) kernel: ``d * (k - 1) // 2``.

    Args:
        kernel_size: ``k``, an int >= 1 or an ``(h, w)`` pair of them.
        dilation: ``d``, an int >= 1 or an ``(h, w)`` pair of them (default 1). The span
            ``d * (k - 1) + 1`` must be odd on both axes (``ValueError`` otherwise).

    Returns:
        ``tuple[int, int]``: the padding ``(ph, pw)``.
    """
    eh, ew = effective_kernel(kernel_size, dilation)
    if eh % 2 == 0 or ew % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size!r} with dilation={dilation!r} spans an even size "
                         f"{(eh, ew)}; 'same' padding needs an odd span")
    return (eh - 1) // 2, (ew - 1) // 2


def conv2d_out_size(in_hw: int | Pair, kernel_size: int | Pair, stride: int | Pair = 1,
                    padding: int | Pair = 0, dilation: int | Pair = 1) -> Pair:
    """Output ``(h2, w2)`` as ``nn.Conv2d`` computes it: ``floor((H + 2p - d(k-1) - 1) / s) + 1`` per axis.

    Args:
        in_hw: input size ``(H, W)``, an int >= 1 or a pair of them.
        kernel_size: ``k``, an int >= 1 or an ``(h, w)`` pair of them.
        stride: ``s``, an int >= 1 or a pair of them (default 1).
        padding: ``p``, an int >= 0 or a pair of them (default 0).
        dilation: ``d``, an int >= 1 or a pair of them (default 1).

    Returns:
        ``tuple[int, int]``: ``(h2, w2)``, both >= 1 (``ValueError`` when the padded input is smaller
        than the kernel's span).
    """
    H, W = _pair("in_hw", in_hw)
    sh, sw = _pair("stride", stride)
    ph, pw = _pair("padding", padding, minimum=0)
    eh, ew = effective_kernel(kernel_size, dilation)
    h2, w2 = (H + 2 * ph - eh) // sh + 1, (W + 2 * pw - ew) // sw + 1
    if h2 < 1 or w2 < 1:
        raise ValueError(f"in_hw={in_hw!r} is smaller than the kernel's span {(eh, ew)} after padding={padding!r}")
    return h2, w2


def receptive_field(layers: Sequence[tuple]) -> Pair:
    """Receptive field ``(rh, rw)`` of stacked convs, each ``(kernel_size, stride, dilation)``.

    ``r = 1 + sum_i d_i (k_i - 1) * prod_{j<i} s_j`` per axis: each layer widens the field by its
    effective kernel minus one, in units of the input pixels one step of its input covers.

    Args:
        layers: a non-empty list / tuple of ``(kernel_size, stride, dilation)`` triples (tuples or lists), first
            layer first; each entry an int >= 1 or an ``(h, w)`` pair of them.

    Returns:
        ``tuple[int, int]``: ``(rh, rw)`` in input pixels.
    """
    rule = "must be a non-empty sequence of (kernel_size, stride, dilation)"
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers={V.show(layers)} {rule}")
    if not layers:
        raise ValueError(f"layers={layers!r} {rule}")
    r, jump = [1, 1], [1, 1]
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)):
            raise TypeError(f"layers[{i}]={V.show(layer)} must be a (kernel_size, stride, dilation) triple")
        if len(layer) != 3:
            raise ValueError(f"layers[{i}]={layer!r} must be a (kernel_size, stride, dilation) triple")
        eff = effective_kernel(layer[0], layer[2])
        s = _pair(f"layers[{i}] stride", layer[1])
        for a in range(2):
            r[a] += (eff[a] - 1) * jump[a]
            jump[a] *= s[a]
    return r[0], r[1]


def impulse_receptive_field(module: nn.Module, in_ch: int, in_hw: int | Pair) -> torch.Tensor:
    """Measure which input pixels reach the centre output pixel: ``Tensor[H, W]`` of bools.

    Runs ``module`` on a random ``Tensor[1, in_ch, H, W]`` and takes the gradient of the sum over channels
    of its centre output pixel with respect to the input; a pixel belongs to the receptive field when
    its gradient is non-zero. The module's own random weights make an exact cancellation vanishingly
    unlikely. Use linear layers (no ReLU), whose gradient does not depend on the input.

    Args:
        module: an ``nn.Module`` (on the CPU) mapping ``Tensor[1, in_ch, H, W]`` (in the dtype of its first
            parameter, float32 if it has none) to a ``Tensor[1, C, h2, w2]``.
        in_ch: input channels (int >= 1).
        in_hw: input size ``(H, W)``, an int >= 1 or a pair of them.

    Returns:
        ``Tensor[H, W]`` of bools: ``True`` at the input pixels that reach the centre output pixel
        ``(h2 // 2, w2 // 2)``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module={type(module).__name__} must be a torch.nn.Module")
    in_ch = int_at_least("in_ch", in_ch)
    H, W = _pair("in_hw", in_hw)
    p = next(module.parameters(), None)
    x = torch.randn(1, in_ch, H, W, dtype=p.dtype if p is not None else torch.float32, requires_grad=True)
    with torch.enable_grad():
        y = module(x)
        if y.ndim != 4:
            raise ValueError(f"module returned Tensor{tuple(y.shape)}; expected Tensor[N, C, H, W]")
        (grad,) = torch.autograd.grad(y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum(), x)
    return grad[0].abs().sum(0) > 0


def mask_extent(mask: torch.Tensor) -> Pair:
    """Height and width of the bounding box of the ``True`` pixels of a ``Tensor[H, W]`` mask.

    Args:
        mask: a 2-D ``Tensor[H, W]``, usually of bools (non-zero counts as ``True``), e.g. from
            :func:`impulse_receptive_field`.

    Returns:
        ``tuple[int, int]``: ``(height, width)`` in pixels; ``(0, 0)`` for an all-``False`` mask.
    """
    V.tensor("mask", mask)
    if mask.ndim != 2:
        raise ValueError(f"mask={V.show(mask)} must be a 2-D tensor")
    rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
    if rows.numel() == 0:
        return 0, 0
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


# ---------------------------------------------------------------------------- cost of one layer
@dataclass(frozen=True)
class ConvCost:
    """Per-image cost of a conv (or a chain of convs): weights, MACs, bytes moved."""

    params: int
    macs: int
    mem_bytes: int
    out_hw: Pair

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte of weights + input + output activations."""
        return self.flops / self.mem_bytes

    def __add__(self, other: "ConvCost") -> "ConvCost":
        return ConvCost(self.params + other.params, self.macs + other.macs, self.mem_bytes + other.mem_bytes,
                        other.out_hw)


def conv2d_cost(in_ch: int, out_ch: int, kernel_size: int | Pair, in_hw: int | Pair, *, groups: int = 1,
                stride: int | Pair = 1, dilation: int | Pair = 1, padding: int | Pair | str = "same",
                bytes_per_elem: int = 4) -> ConvCost:
    """Params, MACs and memory traffic of one conv on one image of ``in_hw``.

    ``mem_bytes = (params + c1*H*W + c2*h2*w2) * bytes_per_elem`` (:func:`memory_bytes`: weights read
    once, input read once, output written once). ``padding="same"`` uses :func:`same_padding`.

    Args:
        in_ch, out_ch: ``c1``, ``c2`` (ints >= 1, both divisible by ``groups``).
        kernel_size: ``h1 x w1``, an int >= 1 or an ``(h, w)`` pair of them.
        in_hw: input size ``(H, W)``, an int >= 1 or a pair of them.
        groups: ``g`` (int >= 1 dividing ``in_ch`` and ``out_ch``; default 1).
        stride: an int >= 1 or a pair of them (default 1).
        dilation: an int >= 1 or a pair of them (default 1).
        padding: ``"same"`` (default; needs an odd effective kernel), an int >= 0 or a pair of them.
        bytes_per_elem: size of one element in bytes (int >= 1; default 4, float32).

    Returns:
        :class:`ConvCost`: ``params`` (weights, bias excluded), ``macs`` (per image), ``mem_bytes`` and
        ``out_hw`` ``(h2, w2)``.
    """
    if isinstance(padding, str) and padding != "same":
        raise ValueError(f"padding={padding!r} must be 'same', an int >= 0 or an (h, w) pair")
    pad = same_padding(kernel_size, dilation) if padding == "same" else padding
    H, W = _pair("in_hw", in_hw)
    out_hw = conv2d_out_size((H, W), kernel_size, stride, pad, dilation)
    params = conv2d_params(in_ch, out_ch, kernel_size, groups)
    macs = conv2d_macs(in_ch, out_ch, kernel_size, out_hw, groups)
    mem = memory_bytes(params, in_ch * H * W, out_ch * out_hw[0] * out_hw[1], bytes_per_elem)
    return ConvCost(params, macs, mem, out_hw)


def conv_layer(kind: str, in_ch: int, out_ch: int, kernel_size: int = 3, *, groups: int = 2,
               dilation: int = 2) -> nn.Module:
    """A bias-free, size-preserving (stride 1, "same" padding) layer of one of :data:`CONV_KINDS`.

    ``standard``  k x k conv; ``grouped`` k x k with ``groups``; ``depthwise`` k x k with ``groups = in_ch``
    (needs ``out_ch == in_ch``); ``pointwise`` 1 x 1; ``separable`` depthwise k x k then pointwise;
    ``dilated`` k x k with ``dilation``; ``factorized`` k x 1 (in_ch -> out_ch) then 1 x k (out_ch -> out_ch).

    Args:
        kind: one of :data:`CONV_KINDS`: ``"standard"``, ``"grouped"``, ``"depthwise"``, ``"pointwise"``,
            ``"separable"``, ``"dilated"``, ``"factorized"``.
        in_ch, out_ch: input / output channels (ints >= 1; equal for ``"depthwise"``).
        kernel_size: ``k``, an odd int >= 1 (default 3; checked, but unused by ``"pointwise"``).
        groups: groups of ``"grouped"`` (int >= 1 dividing ``in_ch`` and ``out_ch``; default 2; checked >= 1 for
            every kind, used by ``"grouped"`` only).
        dilation: dilation of ``"dilated"`` (int >= 1; default 2; used by ``"dilated"`` only).

    Returns:
        ``nn.Module``: an ``nn.Conv2d``, or an ``nn.Sequential`` of two for ``"separable"`` / ``"factorized"``;
        ``Tensor[N, in_ch, H, W] -> Tensor[N, out_ch, H, W]``.
    """
    V.choice("kind", kind, CONV_KINDS)
    int_at_least("groups", groups), int_at_least("dilation", dilation)
    in_ch, out_ch, k = int_at_least("in_ch", in_ch), int_at_least("out_ch", out_ch), int_at_least("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size={k} must be odd so that 'same' padding keeps H x W")
    if kind == "depthwise" and out_ch != in_ch:
        raise ValueError(f"out_ch={out_ch} must equal in_ch={in_ch} for a depthwise conv (use 'separable')")

    def conv(ci, co, ks, g=1, d=1):
        _groups(ci, co, g)
        return nn.Conv2d(ci, co, ks, padding=same_padding(ks, d), groups=g, dilation=d, bias=False)

    if kind == "standard":
        return conv(in_ch, out_ch, k)
    if kind == "grouped":
        return conv(in_ch, out_ch, k, int_at_least("groups", groups))
    if kind == "depthwise":
        return conv(in_ch, in_ch, k, in_ch)
    if kind == "pointwise":
        return conv(in_ch, out_ch, 1)
    if kind == "separable":
        return nn.Sequential(conv(in_ch, in_ch, k, in_ch), conv(in_ch, out_ch, 1))
    if kind == "dilated":
        return conv(in_ch, out_ch, k, d=int_at_least("dilation", dilation))
    return nn.Sequential(conv(in_ch, out_ch, (k, 1)), conv(out_ch, out_ch, (1, k)))


def layer_cost(layer: nn.Module, in_hw: int | Pair, *, bytes_per_elem: int = 4) -> ConvCost:
    """:func:`conv2d_cost` of an ``nn.Conv2d``, or the sum over the ``nn.Conv2d`` of a chain (e.g. separable).

    Args:
        layer: an ``nn.Conv2d`` or a non-empty ``nn.Sequential`` of ``nn.Conv2d`` only (e.g. :func:`conv_layer`).
        in_hw: input size ``(H, W)``, an int >= 1 or a pair of them; each conv gets the previous one's output size.
        bytes_per_elem: size of one element in bytes (int >= 1; default 4, float32).

    Returns:
        :class:`ConvCost`: the summed ``params`` (biases excluded), ``macs`` and ``mem_bytes``, and the last
        conv's ``out_hw``.
    """
    if isinstance(layer, nn.Conv2d):
        convs = [layer]
    elif isinstance(layer, nn.Sequential) and len(layer) and all(isinstance(m, nn.Conv2d) for m in layer):
        convs = list(layer)
    else:
        raise TypeError(f"layer={type(layer).__name__} must be an nn.Conv2d or an nn.Sequential of nn.Conv2d")
    total, hw = None, _pair("in_hw", in_hw)
    for c in convs:
        pad = c.padding
        if pad == "valid":
            pad = 0
        cost = conv2d_cost(c.in_channels, c.out_channels, c.kernel_size, hw, groups=c.groups, stride=c.stride,
                           dilation=c.dilation, padding=pad, bytes_per_elem=bytes_per_elem)
        total, hw = (cost if total is None else total + cost), cost.out_hw
    return total


# ------------------------------------------------------------------ measured: FLOPs vs time sweep
SWEEP_KINDS = ("standard", "depthwise", "pointwise", "separable")
