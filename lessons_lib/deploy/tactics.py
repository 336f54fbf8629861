"""Two engine-builder tricks of document 000, done by hand: kernel auto-tuning and concat elimination.

* **Kernel auto-tuning.** TensorRT holds many implementations ("tactics") of each layer and, per
  layer shape and batch size, times them on the target GPU at build time and keeps the fastest.
  :func:`conv_tactics` gives one convolution four CPU implementations (oneDNN NCHW, oneDNN
  channels_last including the reformat, PyTorch's native kernel with oneDNN off, im2col + GEMM),
  :func:`autotune` checks each against the reference and times them side by side.
* **Concat elimination.** A channel concat after parallel branches copies every branch output once
  more. TensorRT instead points each branch's output at its slice of the concatenated buffer.
  :func:`branches_into_buffer` does exactly that for 1x1-conv branches (``torch.mm(..., out=slice)``);
  :func:`branches_then_cat` runs the same kernels into separate buffers and then ``torch.cat``.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import validate as V
from ..conv import conv2d_out_size
from ..profile import measure_side_by_side

Tactic = Callable[[torch.Tensor], torch.Tensor]
# torch.backends.mkldnn.flags() warns about Intel-GPU TF32 on every call; irrelevant on a CPU
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")


def _check_conv(conv: object) -> nn.Conv2d:
    V.module("conv", conv, nn.Conv2d)
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"conv.padding={conv.padding!r} / padding_mode={conv.padding_mode!r}: "
                         "only numeric zero padding is supported")
    return conv


def _im2col_gemm(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``unfold`` the input into columns ``[N, C*kh*kw, L]`` and multiply by ``W[C_out, C*kh*kw]``."""
    n, _, h, w = x.shape
    kh, kw = conv.kernel_size
    oh, ow = conv2d_out_size((h, w), (kh, kw), conv.stride, conv.padding, conv.dilation)
    cols = F.unfold(x, (kh, kw), dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    g = conv.groups
    wmat = conv.weight.reshape(g, conv.out_channels // g, -1)
    cols = cols.reshape(n, g, -1, cols.shape[-1])
    out = torch.einsum("gok,ngkl->ngol", wmat, cols).reshape(n, conv.out_channels, oh, ow)
    return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)


def conv_tactics(conv: nn.Conv2d) -> dict[str, Tactic]:
    """Four implementations of ``conv`` (same input ``Tensor[N, C, H, W]`` NCHW, same output).

    Args:
        conv: an ``nn.Conv2d`` with numeric zero padding (``padding_mode="zeros"``, no ``padding="same"`` string).

    Returns:
        ``{name: tactic}`` for ``"oneDNN NCHW"``, ``"oneDNN channels_last"``, ``"native (oneDNN off)"`` and
        ``"im2col + GEMM"``, each a callable ``Tensor[N, C_in, H, W] -> Tensor[N, C_out, H_out, W_out]`` (NCHW).
    """
    conv = _check_conv(conv)
    w_cl = conv.weight.detach().contiguous(memory_format=torch.channels_last)

    def onednn_nchw(x):
        return conv(x)

    def onednn_channels_last(x):
        y = F.conv2d(x.contiguous(memory_format=torch.channels_last), w_cl, conv.bias, conv.stride,
                     conv.padding, conv.dilation, conv.groups)
        return y.contiguous()  # back to NCHW: the reformat is part of the tactic's cost

    def native_no_onednn(x):
        with torch.backends.mkldnn.flags(enabled=False):
            return conv(x)

    def im2col_gemm(x):
        return _im2col_gemm(conv, x)

    return {"oneDNN NCHW": onednn_nchw, "oneDNN channels_last": onednn_channels_last,
            "native (oneDNN off)": native_no_onednn, "im2col + GEMM": im2col_gemm}


def autotune(conv: nn.Conv2d, x: torch.Tensor, *, repeats: int = 7, warmup: int = 1,
             atol: float = 1e-3) -> tuple[str, dict[str, float]]:
    """``(fastest tactic, {tactic: median ms})`` for ``conv`` on input ``x``, like a builder's tactic
    selection. A tactic whose output differs from ``conv(x)`` by more than ``atol`` is rejected
    (``inf`` ms) -- a fast wrong kernel must never win.

    Args:
        conv: an ``nn.Conv2d`` with numeric zero padding, as in :func:`conv_tactics`.
        x: floating-point input ``Tensor[N, C_in, H, W]`` with ``C_in = conv.in_channels``.
        repeats: timed rounds, an int >= 1 (:func:`lessons_lib.profile.measure_side_by_side`).
        warmup: untimed rounds before them, an int >= 0.
        atol: largest accepted ``max|tactic(x) - conv(x)|``, a number >= 0.

    Returns:
        ``(best, times)``: the name of the fastest tactic and ``{tactic: median ms}`` over all four.
    """
    conv = _check_conv(conv)
    _check_input("x", x, conv.in_channels)
    V.integer("repeats", repeats, 1)
    V.integer("warmup", warmup, 0)
    V.real("atol", atol, 0)
    tactics = conv_tactics(conv)
    with torch.inference_mode():
        ref = conv(x)
        ok = {name: bool((fn(x) - ref).abs().max() <= atol) for name, fn in tactics.items()}
    good = {name: fn for name, fn in tactics.items() if ok[name]}
    lat = measure_side_by_side(good, x, warmup=warmup, repeats=repeats)
    times = {name: (lat[name].median_ms if name in lat else float("inf")) for name in tactics}
    return min(times, key=times.get), times


def autotune_model(model: nn.Module, x: torch.Tensor, *, threads: int | None = None, **kw) -> list[dict]:
    """Run :func:`autotune` on every ``Conv2d`` of ``model`` with the input it sees for ``x``, with
    ``threads`` torch threads (``None``: unchanged; restored afterwards).

    Args:
        model: an ``nn.Module`` whose convs all have numeric zero padding; put in eval mode (and left so).
        x: floating-point input ``Tensor[N, C, H, W]`` of ``model``.
        threads: torch intra-op threads for the tuning, an int >= 1, or ``None``.
        **kw: ``repeats``, ``warmup`` and ``atol`` of :func:`autotune`.

    Returns:
        One row per ``Conv2d`` that ran, in the order they first ran:
        ``{"layer": name, "in_shape": tuple, "best": tactic name, "times": {tactic: median ms}}``.
    """
    V.module("model", model)
    V.tensor("x", x, dtype="floating", layout="Tensor[N, C, H, W]")
    threads = V.integer("threads", threads, 1, none_ok=True)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _autotune_model(model, x, **kw)
    finally:
        torch.set_num_threads(before)


def _autotune_model(model: nn.Module, x: torch.Tensor, **kw) -> list[dict]:
    inputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, a, out, name=name: inputs.__setitem__(name, a[0].detach()))
             for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    rows = []
    convs = dict(model.named_modules())
    for name, xin in inputs.items():
        best, times = autotune(convs[name], xin.clone(), **kw)
        rows.append({"layer": name, "in_shape": tuple(xin.shape), "best": best, "times": times})
    return rows


# ------------------------------------------------------------------------------------ concat
class ConcatBlock(nn.Module):
    """``branches`` parallel 1x1 convs (``in_ch -> branch_ch`` each, with bias) concatenated on channels:
    ``Tensor[N, in_ch, H, W] -> Tensor[N, branches * branch_ch, H, W]`` (an Inception-style merge).

    Args:
        in_ch: input channels, an int >= 1.
        branch_ch: output channels of each branch, an int >= 1.
        branches: number of parallel branches, an int >= 1.
    """

    def __init__(self, in_ch: int = 64, branch_ch: int = 64, branches: int = 4):
        super().__init__()
        in_ch, branch_ch = V.integer("in_ch", in_ch, 1), V.integer("branch_ch", branch_ch, 1)
        branches = V.integer("branches", branches, 1)
        self.branches = nn.ModuleList(nn.Conv2d(in_ch, branch_ch, 1) for _ in range(branches))

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


def _check_input(name: str, x: object, channels: int) -> torch.Tensor:
    V.tensor(name, x, dtype="floating", layout="Tensor[N, C, H, W]")
    if x.shape[1] != channels:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; it must be Tensor[N, {channels}, H, W]")
    return x


def _mats(block: ConcatBlock, x: object) -> list[tuple[torch.Tensor, torch.Tensor]]:
    V.module("block", block, ConcatBlock, "a ConcatBlock")
    _check_input("x", x, block.branches[0].in_channels)
    return [(b.weight.detach().flatten(1), b.bias.detach().view(-1, 1)) for b in block.branches]


def branches_into_buffer(block: ConcatBlock, x: torch.Tensor) -> torch.Tensor:
    """Concat-free: branch ``i`` writes ``W_i X + b_i`` straight into channels ``[a_i, b_i)`` of the output.

    Args:
        block: a :class:`ConcatBlock`.
        x: floating-point CPU input ``Tensor[N, in_ch, H, W]`` (the output buffer is allocated on the CPU).

    Returns:
        ``Tensor[N, branches * branch_ch, H, W]``: ``block(x)`` up to rounding.
    """
    mats = _mats(block, x)
    n, c, h, w = x.shape
    out = torch.empty(n, sum(m.shape[0] for m, _ in mats), h * w, dtype=x.dtype)
    xs = x.reshape(n, c, h * w)
    for i in range(n):
        a = 0
        for wm, b in mats:
            torch.addmm(b, wm, xs[i], out=out[i, a:a + wm.shape[0]])  # a contiguous slice of sample i
            a += wm.shape[0]
    return out.view(n, -1, h, w)


def branches_then_cat(block: ConcatBlock, x: torch.Tensor) -> torch.Tensor:
    """The same GEMMs into one buffer per branch, then ``torch.cat`` copies them all once more.

    Args:
        block: a :class:`ConcatBlock`.
        x: floating-point CPU input ``Tensor[N, in_ch, H, W]`` (the branch buffers are allocated on the CPU).

    Returns:
        ``Tensor[N, branches * branch_ch, H, W]``: ``block(x)`` up to rounding.
    """
    mats = _mats(block, x)
    n, c, h, w = x.shape
    xs = x.reshape(n, c, h * w)
    parts = []
    for wm, b in mats:
        y = torch.empty(n, wm.shape[0], h * w, dtype=x.dtype)
        for i in range(n):
            torch.addmm(b, wm, xs[i], out=y[i])
        parts.append(y)
    return torch.cat(parts, dim=1).view(n, -1, h, w)


def concat_bytes(block: ConcatBlock, x: torch.Tensor) -> int:
    """Bytes the concat moves (read every branch output + write the result) = 2 x output bytes.

    Args:
        block: a :class:`ConcatBlock`.
        x: floating-point input ``Tensor[N, in_ch, H, W]``; only its shape and element size are used.

    Returns:
        ``int``: ``2 * N * branches * branch_ch * H * W * x.element_size()`` bytes.
    """
    mats = _mats(block, x)
    n, _, h, w = x.shape
    return 2 * n * sum(m.shape[0] for m, _ in mats) * h * w * x.element_size()
