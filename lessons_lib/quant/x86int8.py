"""What an x86 CPU without VNNI does to an int8 model: the saturating ``VPMADDUBSW`` kernel, emulated.

onnxruntime (MLAS) runs an int8 convolution as a GEMM of **unsigned** 8-bit activations and signed
8-bit weights (a signed activation ``q`` with zero point 0 becomes ``q + 128`` with zero point 128;
the zero point is corrected exactly in int32 afterwards). How the products are summed depends on the
CPU, which onnxruntime reads itself (CPUID; no environment variable lowers it):

* **VNNI / AMX** (``vpdpbusd``, AMX tiles): four u8 x s8 products summed straight into int32. Exact.
* **AVX2 / AVX-512 without VNNI** (``vpmaddubsw`` then ``vpmaddwd``): each *pair* of adjacent
  products ``a[2j] w[2j] + a[2j+1] w[2j+1]`` is first summed into a **saturating int16**, then the
  int16 values are summed in int32. With ``a`` up to 255 and ``|w|`` up to 127 a pair reaches
  64 770, far beyond 32 767, and is clipped. onnxruntime's quantisation documentation names this
  and the remedies: ``reduce_range`` (weights in [-64, 64]: ``255 * 64 * 2 = 32 640`` fits), 7-bit
  activations, or u8 x u8.

:func:`run_qdq_model` executes a Q/DQ ONNX model (the op set of lessons 11 and 15) in PyTorch with the
int8 Conv / Gemm computed the way one of those kernels does (``kernel="exact"`` or ``"vpmaddubsw"``),
so a machine with VNNI can show -- and a test can assert -- what a laptop without it would compute.
The reduction axis is ordered as onnxruntime's channels-last int8 convolution reads it
(kernel row, kernel column, input channel), so the pairs are neighbouring input channels; that
order is this emulation's assumption, checked against onnxruntime's own output by the tests on CPUs
whose int8 kernel is ``vpmaddubsw`` (``machine.cpu_features()["int8_kernel"]``).
"""
from __future__ import annotations

import numbers

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from .. import validate as V

KERNELS = ("exact", "vpmaddubsw")
INT16_MIN, INT16_MAX = -32768, 32767


def _saturation(taps, w: torch.Tensor, amax: torch.Tensor) -> torch.Tensor | None:
    """``sum over pairs (clip16(p) - p)`` [B, O, L]: what the saturating int16 pair sums of ``vpmaddubsw``
    take away from the exact accumulator, or ``None`` when no pair can saturate.

    ``w`` [O, K] (integers, float) in the kernel's reduction order; ``taps(ks)`` returns the u8
    activations [B, len(ks), L] at reduction positions ``ks``; ``amax`` [K] their largest values. A pair
    ``(2j, 2j+1)`` can only saturate where both weights have the same sign (with opposite signs
    ``|p| <= 255 * 128 < 32767``) and ``|w[o, 2j]| amax[2j] + |w[o, 2j+1]| amax[2j+1] > 32767``, so only
    those weight pairs are evaluated (none with ``reduce_range`` weights, ``|w| <= 64``).
    """
    k = w.shape[1]
    if k % 2:
        w, amax = F.pad(w, (0, 1)), F.pad(amax, (0, 1))
    w0, w1 = w[:, 0::2].to(torch.float32), w[:, 1::2].to(torch.float32)
    bound = w0.abs() * amax[0::2].to(torch.float32) + w1.abs() * amax[1::2].to(torch.float32)
    o_idx, j_idx = torch.nonzero((bound > INT16_MAX) & (w0 * w1 > 0), as_tuple=True)
    if o_idx.numel() == 0:
        return None
    total = None
    for start in range(0, o_idx.numel(), 256):  # bounded memory: [B, 256, L] at a time
        o, j = o_idx[start:start + 256], j_idx[start:start + 256]
        k1 = 2 * j + 1
        t1 = taps(k1.clamp(max=k - 1)) * (k1 < k).to(torch.float32)[None, :, None]  # the pad position is 0
        p = taps(2 * j) * w0[o, j][None, :, None] + t1 * w1[o, j][None, :, None]  # |p| < 2^17: exact
        onehot = F.one_hot(o, w.shape[0]).T.to(torch.float32)  # [O, R]: each pair's correction into its o
        part = torch.matmul(onehot, p.clamp(INT16_MIN, INT16_MAX) - p).to(torch.float64)
        total = part if total is None else total + part
    return total


def saturating_pair_dot(a_u8: torch.Tensor, w_s8: torch.Tensor, kernel: str = "vpmaddubsw") -> torch.Tensor:
    """``sum_k a[m, k] * w[o, k]`` as an x86 int8 GEMM computes it.

    Args:
        a_u8: ``Tensor[M, K]`` of integers in [0, 255] (any real dtype; the range is assumed, not checked).
        w_s8: ``Tensor[O, K]`` of integers in [-128, 127] (any real dtype; assumed, not checked).
        kernel: ``"exact"``: plain int32 accumulation (VNNI, AMX). ``"vpmaddubsw"``: K is padded with zeros
            to an even length, products of positions ``(2j, 2j+1)`` are summed and clipped to int16
            ``[-32768, 32767]``, then the clipped pair sums are added exactly.

    Returns:
        ``Tensor[M, O]`` int64.
    """
    V.choice("kernel", kernel, KERNELS)
    V.tensor("a_u8", a_u8, dtype="number")
    V.tensor("w_s8", w_s8, dtype="number")
    if a_u8.ndim != 2 or w_s8.ndim != 2 or a_u8.shape[1] != w_s8.shape[1]:
        raise ValueError(f"a_u8={V.show(a_u8)} and w_s8={V.show(w_s8)} must be [M, K] and [O, K]")
    a, w = a_u8.to(torch.float64), w_s8.to(torch.float64)
    acc = a @ w.T  # float64: exact for any realistic K
    if kernel == "vpmaddubsw":
        at = a.T.to(torch.float32)[None]  # [1, K, M]
        corr = _saturation(lambda ks: at[:, ks, :], w, at[0].amax(1))
        if corr is not None:
            acc = acc + corr[0].T
    return acc.round().to(torch.int64)


def _exact_conv(q_x: torch.Tensor, w_q: torch.Tensor, stride, padding, dilation, groups: int) -> torch.Tensor:
    """The exact integer conv, in float32 when every partial sum stays below 2^24 (then each addition
    is exact whatever the order), else in float64."""
    k = w_q[0].numel()
    dt = torch.float32 if k * 128 * 128 < 2**24 else torch.float64
    return F.conv2d(q_x.to(dt), w_q.to(dt), stride=stride, padding=padding, dilation=dilation,
                    groups=groups).to(torch.float64)


def int8_conv2d(q_x: torch.Tensor, w_q: torch.Tensor, *, stride, padding, dilation, groups: int = 1,
                kernel: str = "vpmaddubsw") -> torch.Tensor:
    """Integer conv of int8 ``q_x`` [N, C, H, W] (zero point 0) with int8 ``w_q`` [O, C/g, kh, kw]: the
    int32 accumulator ``sum q_x * w_q`` [N, O, H', W'] as the ``kernel`` computes it.

    ``"vpmaddubsw"``: activations shifted to u8 by +128 (padding = 128, i.e. zero), the reduction axis
    in channels-last order (kernel row, kernel column, input channel) cut into pairs, each pair summed
    into a saturating int16; the shift is removed exactly afterwards, as onnxruntime does.

    Args:
        q_x: ``Tensor[N, C, H, W]`` of int8 values in [-128, 127] (any real dtype; the range is not checked).
        w_q: ``Tensor[O, C/g, kh, kw]`` of int8 values (any real dtype; not checked).
        stride: an int >= 1 or an ``(h, w)`` pair of them.
        padding: zero padding on both sides, an int >= 0 or an ``(h, w)`` pair of them.
        dilation: an int >= 1 or an ``(h, w)`` pair of them.
        groups: an int >= 1 dividing ``O``, with ``C == w_q.shape[1] * groups``.
        kernel: ``"exact"`` (VNNI / AMX) or ``"vpmaddubsw"``.

    Returns:
        ``Tensor[N, O, H', W']`` int64: the int32 accumulators.
    """
    V.choice("kernel", kernel, KERNELS)
    V.tensor("q_x", q_x, dtype="number", layout="Tensor[N, C, H, W]")
    V.tensor("w_q", w_q, dtype="number", layout="Tensor[O, C/g, kh, kw]")
    stride, padding, dilation = (_pair(v, name, lo) for v, name, lo in ((stride, "stride", 1), (padding, "padding", 0),
                                                                       (dilation, "dilation", 1)))
    groups = V.integer("groups", groups, 1)
    if q_x.shape[1] != w_q.shape[1] * groups or w_q.shape[0] % groups:
        raise ValueError(f"groups={groups} does not fit q_x={V.show(q_x)} and w_q={V.show(w_q)}: need "
                         "q_x.shape[1] == w_q.shape[1] * groups and groups dividing w_q.shape[0]")
    acc = _exact_conv(q_x, w_q, stride, padding, dilation, groups)
    if kernel == "exact":
        return acc.round().to(torch.int64)
    n, c = q_x.shape[:2]
    o, cg, kh, kw = w_q.shape
    h_out, w_out = acc.shape[2:]
    a = F.pad(q_x.to(torch.float32) + 128.0, (padding[1], padding[1], padding[0], padding[0]), value=128.0)
    og = o // groups
    for g in range(groups):
        ag = a[:, g * cg:(g + 1) * cg]

        def taps(ks: torch.Tensor, ag=ag) -> torch.Tensor:  # reduction position k = (r * kw + s) * cg + ch
            r, rest = ks // (kw * cg), ks % (kw * cg)
            s_, ch = rest // cg, rest % cg
            out = torch.empty(n, ks.numel(), h_out * w_out)
            for rr, ss in {(int(x), int(y)) for x, y in zip(r, s_)}:
                sel = torch.nonzero((r == rr) & (s_ == ss)).flatten()
                win = ag[:, ch[sel], rr * dilation[0]: rr * dilation[0] + stride[0] * (h_out - 1) + 1: stride[0],
                         ss * dilation[1]: ss * dilation[1] + stride[1] * (w_out - 1) + 1: stride[1]]
                out[:, sel] = win.reshape(n, sel.numel(), -1)
            return out

        wg = w_q[g * og:(g + 1) * og].to(torch.float32).permute(0, 2, 3, 1).reshape(og, kh * kw * cg)
        amax = ag.amax(dim=(0, 2, 3)).repeat(kh * kw)  # per reduction position (r, s, ch): channel ch's max
        corr = _saturation(taps, wg, amax)
        if corr is not None:
            acc[:, g * og:(g + 1) * og] += corr.reshape(n, og, h_out, w_out)
    return acc.round().to(torch.int64)


def _pair(v, name: str, minimum: int = 0) -> tuple[int, int]:
    """An int or an (h, w) pair of ints ``>= minimum`` as a pair (``TypeError`` / ``ValueError`` as the contract)."""
    rule = f"must be an int >= {minimum} or a pair of them"
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}={v!r} {rule}")
        items = v
    else:
        items = (v, v)
    for i in items:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"{name}={v!r} {rule}")
        if i < minimum:
            raise ValueError(f"{name}={v!r} {rule}")
    return (int(items[0]), int(items[1]))


def _symmetric_pads(a: dict, op: str) -> tuple[int, int]:
    pads = a.get("pads", [0, 0, 0, 0])
    if pads[0] != pads[2] or pads[1] != pads[3] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"{op} pads={list(pads)}: only symmetric explicit padding is emulated")
    return pads[0], pads[1]


# ---------------------------------------------------------------------------------- Q/DQ interpreter
def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _quantize(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, axis: int) -> torch.Tensor:
    s, z = _bcast(scale, x, axis), _bcast(zp.to(torch.float64), x, axis)
    lo, hi = (-128, 127) if zp.dtype == torch.int8 else (0, 255)
    return torch.clamp(torch.round(x.to(torch.float64) / s) + z, lo, hi)  # round half to even, as ONNX


def _bcast(v: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    v = v.to(torch.float64)
    if v.ndim == 0:
        return v
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    return v.reshape(shape)


def run_qdq_model(model: onnx.ModelProto, x: torch.Tensor | np.ndarray, kernel: str = "vpmaddubsw", *,
                  batch_size: int = 64) -> np.ndarray:
    """Run a Q/DQ ONNX model in PyTorch, int8 Conv / Gemm computed as ``kernel`` does (see module doc).

    A Conv, Gemm or MatMul counts as int8 when both its input and its weight come from ``DequantizeLinear`` of
    int8 tensors with zero point 0 (what :func:`lessons_lib.deploy.qdq.insert_qdq` writes); the
    accumulator is then ``s_x * s_w * acc + bias`` in float64. Everything else runs in float64.
    Supported ops: QuantizeLinear, DequantizeLinear, Conv, Gemm, MatMul, Relu, Clip, MaxPool,
    AveragePool, GlobalAveragePool, ReduceMean, Reshape, Flatten, Add, Identity; others raise
    ``ValueError``.

    Args:
        model: an ``onnx.ModelProto`` whose first graph input takes ``x``.
        x: the inputs, a ``torch.Tensor`` or numpy array ``[N, ...]`` in the model's input layout (``N >= 1``).
        kernel: ``"exact"`` or ``"vpmaddubsw"``: how the int8 Conv / Gemm / MatMul accumulate.
        batch_size: rows of ``x`` per pass, an int >= 1.

    Returns:
        The first graph output as a float32 numpy array, the batches concatenated in order (e.g. ``[N, classes]``).
    """
    V.choice("kernel", kernel, KERNELS)
    V.instance("model", model, onnx.ModelProto, "an onnx.ModelProto")
    V.instance("x", x, (torch.Tensor, np.ndarray), "a torch.Tensor or a numpy array")
    batch_size = V.integer("batch_size", batch_size, 1)
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}; it must hold at least one input (a batch dimension >= 1)")
    outs = [_run(model, x[i:i + batch_size], kernel) for i in range(0, len(x), batch_size)]
    return torch.cat(outs).to(torch.float32).numpy()


SUPPORTED = ("QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "MatMul", "Relu", "Clip", "MaxPool",
             "AveragePool", "GlobalAveragePool", "ReduceMean", "Reshape", "Flatten", "Add", "Identity")


def _run(model: onnx.ModelProto, x: torch.Tensor, kernel: str) -> torch.Tensor:
    g = model.graph
    env: dict[str, torch.Tensor] = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    env[g.input[0].name] = x.to(torch.float64)
    dq_of: dict[str, onnx.NodeProto] = {}   # DequantizeLinear output -> node (for the int8 Conv/Gemm)
    q_int: dict[str, torch.Tensor] = {}      # QuantizeLinear output -> integer values
    for node in g.node:
        op, a, ins = node.op_type, _attrs(node), [env.get(i) if i else None for i in node.input]
        if op not in SUPPORTED:
            raise ValueError(f"op {op!r} (node {node.name!r}) is not supported by the emulation; supported: {SUPPORTED}")
        if op == "QuantizeLinear":
            if len(ins) < 3 or ins[2] is None:  # ONNX default: uint8 with zero point 0
                ins = [ins[0], ins[1], torch.zeros((), dtype=torch.uint8)]
            y = _quantize(ins[0], ins[1], ins[2], a.get("axis", 1))
            q_int[node.output[0]] = y
            env[node.output[0]] = y.to(ins[2].dtype if ins[2] is not None else torch.uint8)
            continue
        if op == "DequantizeLinear":
            axis = a.get("axis", 1)
            zp = ins[2] if len(ins) > 2 and ins[2] is not None else torch.zeros((), dtype=torch.uint8)
            y = (ins[0].to(torch.float64) - _bcast(zp, ins[0], axis)) * _bcast(ins[1], ins[0], axis)
            dq_of[node.output[0]] = node
            env[node.output[0]] = y
            continue
        int8 = op in ("Conv", "Gemm", "MatMul") and _is_int8(node, dq_of, env)
        if int8:
            y = _int8_linear(node, op, a, dq_of, env, kernel)
        else:
            y = _float_op(op, a, ins)
        env[node.output[0]] = y
    return env[g.output[0].name].to(torch.float64)


def _is_int8(node, dq_of, env) -> bool:
    for name in node.input[:2]:
        dq = dq_of.get(name)
        if dq is None:
            return False
        zp = env.get(dq.input[2]) if len(dq.input) > 2 else None
        if env[dq.input[0]].dtype != torch.int8 or (zp is not None and bool((zp != 0).any())):
            return False
    return True


def _int8_linear(node, op, a, dq_of, env, kernel) -> torch.Tensor:
    dx, dw = dq_of[node.input[0]], dq_of[node.input[1]]
    qx, sx = env[dx.input[0]].to(torch.float64), env[dx.input[1]].to(torch.float64)
    qw, sw = env[dw.input[0]].to(torch.float64), env[dw.input[1]].to(torch.float64)
    bias = env[node.input[2]].to(torch.float64) if len(node.input) > 2 and node.input[2] else None
    if op == "Conv":
        k = len(qw.shape) - 2
        if k != 2:
            raise ValueError(f"Conv {node.name!r}: only 2-D convolutions are emulated")
        pads = _symmetric_pads(a, f"Conv {node.name!r}")
        acc = int8_conv2d(qx, qw, stride=tuple(a.get("strides", [1, 1])), padding=pads,
                          dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1), kernel=kernel)
        y = acc.to(torch.float64) * sx * sw.reshape(-1, 1, 1) if sw.ndim else acc.to(torch.float64) * sx * sw
        return y + bias.reshape(1, -1, 1, 1) if bias is not None else y
    # Gemm / MatMul: y = x @ W^T (transB=1) or x @ W
    w = qw if (op == "Gemm" and a.get("transB", 0)) else qw.T
    if op == "Gemm" and a.get("transA", 0):
        raise ValueError(f"Gemm {node.name!r}: transA=1 is not emulated")
    acc = saturating_pair_dot(qx + 128, w, kernel) - 128 * w.sum(1).round().to(torch.int64)
    scale_w = sw if sw.ndim == 0 else sw.reshape(1, -1)
    y = acc.to(torch.float64) * sx * scale_w * a.get("alpha", 1.0)
    return y + a.get("beta", 1.0) * bias if bias is not None else y


def _float_op(op: str, a: dict, ins: list) -> torch.Tensor:
    x = ins[0].to(torch.float64) if ins[0] is not None and ins[0].is_floating_point() else ins[0]
    if op == "Conv":
        pads = _symmetric_pads(a, "Conv")
        y = F.conv2d(x, ins[1].to(torch.float64), stride=a.get("strides", [1, 1]), padding=pads,
                     dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        return y + ins[2].to(torch.float64).reshape(1, -1, 1, 1) if len(ins) > 2 and ins[2] is not None else y
    if op in ("Gemm", "MatMul"):
        w = ins[1].to(torch.float64)
        if op == "Gemm" and a.get("transB", 0):
            w = w.T
        y = x @ w * a.get("alpha", 1.0)
        return y + a.get("beta", 1.0) * ins[2].to(torch.float64) if len(ins) > 2 and ins[2] is not None else y
    if op == "Relu":
        return torch.relu(x)
    if op == "Clip":
        lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else -float("inf")
        hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else float("inf")
        return x.clamp(lo, hi)
    if op in ("MaxPool", "AveragePool"):
        pads = _symmetric_pads(a, op)
        fn = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
        kw = {"ceil_mode": bool(a.get("ceil_mode", 0))}
        if op == "MaxPool":
            kw["dilation"] = a.get("dilations", [1, 1])
        else:
            kw["count_include_pad"] = bool(a.get("count_include_pad", 0))
        return fn(x, a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads, **kw)
    if op == "GlobalAveragePool":
        return x.mean(dim=(2, 3), keepdim=True)
    if op == "ReduceMean":
        axes = ins[1].tolist() if len(ins) > 1 and ins[1] is not None else a.get("axes")
        return x.mean(dim=tuple(axes), keepdim=bool(a.get("keepdims", 1)))
    if op == "Reshape":
        shape = [d if d != 0 else x.shape[i] for i, d in enumerate(ins[1].tolist())]
        return x.reshape(shape)
    if op == "Flatten":
        ax = a.get("axis", 1)
        return x.reshape(int(np.prod(x.shape[:ax])), -1)
    if op == "Add":
        return x + ins[1].to(torch.float64)
    return x  # Identity


def accuracy(model: onnx.ModelProto, x: torch.Tensor, y: torch.Tensor, kernel: str = "vpmaddubsw") -> float:
    """Top-1 accuracy of :func:`run_qdq_model` on ``(x, y)``.

    Args:
        model: an ``onnx.ModelProto`` whose first output is ``[N, classes]`` scores (see :func:`run_qdq_model`).
        x: the inputs, a ``torch.Tensor`` or numpy array ``[N, ...]`` (``N >= 1``).
        y: ``Tensor[N]`` or numpy array of integer labels, one per row of ``x``.
        kernel: ``"exact"`` or ``"vpmaddubsw"`` (see :func:`run_qdq_model`).

    Returns:
        The fraction of rows whose argmax equals the label, a Python float in ``[0, 1]``.
    """
    V.choice("kernel", kernel, KERNELS)
    V.instance("model", model, onnx.ModelProto, "an onnx.ModelProto")
    V.instance("x", x, (torch.Tensor, np.ndarray), "a torch.Tensor or a numpy array")
    V.instance("y", y, (torch.Tensor, np.ndarray), "a torch.Tensor or a numpy array of labels")
    if len(y) != len(x) or (len(y) and np.ndim(y) != 1):
        raise ValueError(f"y={V.show(y)} must be one label per row of x={V.show(x)}")
    pred = run_qdq_model(model, x, kernel).argmax(1)
    return float((torch.from_numpy(pred) == torch.as_tensor(y)).double().mean())

