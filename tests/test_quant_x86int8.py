"""lessons_lib.quant.x86int8: the x86 int8 GEMM of onnxruntime emulated (exact VNNI / saturating AVX2).

References written here, independent of the module: a slow pair-by-pair dot product (products in int64,
each adjacent pair clipped to int16, then summed), a convolution built from ``F.unfold`` with the reduction
axis reordered to (kh, kw, c), float64 ``F.conv2d`` on the integer codes, and onnxruntime itself (with its
int8 kernels only on CPUs whose int8 kernel is the one emulated; with all optimisations off, i.e. the
float Q/DQ semantics, everywhere). Random data with fixed seeds.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from lessons_lib import checkpoints, data, machine, train
from lessons_lib.deploy import onnx_export as ox
from lessons_lib.deploy import ort as dort
from lessons_lib.deploy import qdq
from lessons_lib.deploy import int8
from lessons_lib.quant import x86int8

I16_MIN, I16_MAX = -32768, 32767


# ------------------------------------------------------------------------------------ references
def _rand(shape, lo, hi, seed):
    """Integers uniform in [lo, hi] (int64), seeded."""
    return torch.randint(lo, hi + 1, shape, generator=torch.Generator().manual_seed(seed))


def _pair_dot_ref(a, w):
    """[M, K] u8 x [O, K] s8 -> [M, O] int64, as vpmaddubsw + vpmaddwd: pairs (2j, 2j+1), zero-padded to
    an even K, each pair sum clipped to int16, then the clipped sums added exactly."""
    a, w = torch.as_tensor(a).round().to(torch.int64), torch.as_tensor(w).round().to(torch.int64)
    m, k = a.shape
    if k % 2:
        a, w = F.pad(a, (0, 1)), F.pad(w, (0, 1))
    a2, w2 = a.reshape(m, 1, -1, 2), w.reshape(1, w.shape[0], -1, 2)
    pairs = (a2 * w2).sum(-1)                                   # [M, O, K/2] in int64: never overflows
    return pairs.clamp(I16_MIN, I16_MAX).sum(-1)


def _out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_vpmaddubsw_ref(q_x, w_q, stride, padding, dilation, groups):
    """The saturating conv by hand: u8 = q + 128 with padding 128 (zero after the shift), unfolded,
    reduction axis per group reordered (c, kh, kw) -> (kh, kw, c), pairs saturated, then 128 * sum(w)
    subtracted exactly."""
    n, c, h, wd = q_x.shape
    o, cg, kh, kw = w_q.shape
    a = F.pad(q_x.double() + 128, (padding[1], padding[1], padding[0], padding[0]), value=128.0)
    cols = F.unfold(a, (kh, kw), dilation=dilation, stride=stride)       # [N, C*kh*kw, L], (c, kh, kw)
    ho = _out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = _out_size(wd, kw, stride[1], padding[1], dilation[1])
    og, out = o // groups, []
    for g in range(groups):
        cg_cols = cols[:, g * cg * kh * kw:(g + 1) * cg * kh * kw].reshape(n, cg, kh, kw, ho * wo)
        rows = cg_cols.permute(0, 4, 2, 3, 1).reshape(n * ho * wo, kh * kw * cg)       # (kh, kw, c)
        wg = w_q[g * og:(g + 1) * og].permute(0, 2, 3, 1).reshape(og, kh * kw * cg).round().long()
        acc = _pair_dot_ref(rows, wg) - 128 * wg.sum(1)[None]
        out.append(acc.reshape(n, ho * wo, og).permute(0, 2, 1).reshape(n, og, ho, wo))
    return torch.cat(out, 1)


# ------------------------------------------------------------------------------ 1. saturating_pair_dot
@pytest.mark.parametrize("m, o, k", [(1, 1, 1), (1, 1, 2), (5, 3, 7), (7, 5, 16), (3, 9, 27), (16, 4, 130),
                                     (2, 3, 513)])
def test_pair_dot_equals_the_explicit_reference(m, o, k):
    a = _rand((m, k), 0, 255, 10 + k)
    a[: (m + 1) // 2] = _rand(((m + 1) // 2, k), 200, 255, 20 + k)        # large rows: many pairs saturate
    w = _rand((o, k), -128, 127, 30 + k)
    got = x86int8.saturating_pair_dot(a, w, "vpmaddubsw")
    assert got.dtype == torch.int64 and got.shape == (m, o)
    assert torch.equal(got, _pair_dot_ref(a, w))
    exact = x86int8.saturating_pair_dot(a, w, "exact")
    assert exact.dtype == torch.int64 and torch.equal(exact, a @ w.T)     # int64 matmul
    # float inputs holding the same integers give the same answer
    assert torch.equal(x86int8.saturating_pair_dot(a.double(), w.float(), "vpmaddubsw"), got)


def test_pair_dot_saturates_somewhere_in_the_random_cases():
    a, w = _rand((16, 130), 200, 255, 1), _rand((4, 130), -128, 127, 2)
    assert not torch.equal(x86int8.saturating_pair_dot(a, w), x86int8.saturating_pair_dot(a, w, "exact"))


def test_pair_dot_by_hand():
    sd = x86int8.saturating_pair_dot
    a = torch.tensor([[255, 255]])
    assert sd(a, torch.tensor([[127, 127]])).item() == I16_MAX            # not 2 * 255 * 127 = 64770
    assert sd(a, torch.tensor([[127, 127]]), "exact").item() == 64770
    assert sd(a, torch.tensor([[-128, -128]])).item() == I16_MIN          # not -65280
    # opposite signs in a pair: |p| <= 255 * 128 = 32640, never clipped, even at the extremes
    for w in ([[127, -128]], [[-128, 127]], [[-128, 0]], [[127, 0]]):
        w = torch.tensor(w)
        assert sd(a, w).item() == sd(a, w, "exact").item() == 255 * int(w.sum())
    # pairs are (0, 1), (2, 3): the same values split over two pairs do not saturate
    a4, w4 = torch.tensor([[255, 0, 255, 0]]), torch.tensor([[127, 127, 127, 127]])
    assert sd(a4, w4).item() == 2 * 255 * 127
    a4 = torch.tensor([[255, 255, 0, 0]])
    assert sd(a4, w4).item() == I16_MAX
    # odd K: the last element is paired with a zero
    assert sd(torch.tensor([[255, 255, 255]]), torch.tensor([[127, 127, 127]])).item() == I16_MAX + 255 * 127
    # exactly at the boundary: 32767 is not clipped, 32768 is
    assert sd(torch.tensor([[255, 191]]), torch.tensor([[127, 2]])).item() == I16_MAX      # 32385 + 382
    assert sd(torch.tensor([[255, 192]]), torch.tensor([[127, 2]])).item() == I16_MAX      # 32769 clipped
    assert sd(torch.tensor([[255, 192]]), torch.tensor([[127, 2]]), "exact").item() == 32769
    assert sd(torch.tensor([[128, 128]]), torch.tensor([[-128, -128]])).item() == I16_MIN  # -32768 exactly
    assert sd(torch.tensor([[129, 128]]), torch.tensor([[-128, -128]])).item() == I16_MIN  # -32896 clipped


# ----------------------------------------------------------------- 2. small weights never saturate
def test_reduced_range_weights_are_exact_full_range_weights_are_not():
    a = _rand((64, 300), 0, 255, 3)
    for bound, seed in ((63, 4), (64, 5)):  # 7-bit codes and reduce_range codes [-64, 64]: 2*255*64 = 32640
        w = _rand((32, 300), -bound, bound, seed)
        w[0] = bound                       # worst cases: all +bound, all -bound
        w[1] = -bound
        assert torch.equal(x86int8.saturating_pair_dot(a, w), x86int8.saturating_pair_dot(a, w, "exact"))
    top = torch.full((1, 2), 255)
    assert x86int8.saturating_pair_dot(top, torch.full((1, 2), 64)).item() == 32640
    assert x86int8.saturating_pair_dot(top, torch.full((1, 2), -64)).item() == -32640
    assert x86int8.saturating_pair_dot(top, torch.full((1, 2), 65)).item() == I16_MAX   # 33150 clipped
    big_a, big_w = _rand((64, 300), 160, 255, 6), _rand((32, 300), -127, 127, 7)
    sat, exact = x86int8.saturating_pair_dot(big_a, big_w), x86int8.saturating_pair_dot(big_a, big_w, "exact")
    assert (sat != exact).float().mean() > 0.5                       # saturation really happens ...
    assert torch.equal(sat, _pair_dot_ref(big_a, big_w))              # ... exactly as the kernel does it


# ------------------------------------------------------------------------------------ 3. int8_conv2d
CONV_CASES = [  # c, o, k, stride, padding, dilation, groups, hw
    (3, 8, 3, 1, 1, 1, 1, 9),
    (5, 6, 3, 2, 0, 1, 1, 9),
    (7, 5, 1, 1, 0, 1, 1, 6),      # 1x1, odd K = 7
    (6, 4, 3, 1, 1, 1, 2, 8),      # groups 2, odd K per group = 27
    (8, 8, 3, 1, 1, 1, 8, 8),      # depthwise, K = 9
    (9, 9, 3, 2, 1, 1, 9, 9),      # depthwise, stride 2, odd channels
    (6, 4, 3, 1, 2, 2, 2, 10),     # dilation 2, padding 2
    (5, 3, (3, 1), (2, 1), (1, 0), (2, 1), 1, 11),   # non-square everything
]


def _conv_args(k, stride, padding, dilation):
    two = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    return two(k), dict(stride=two(stride), padding=two(padding), dilation=two(dilation))


@pytest.mark.parametrize("c, o, k, stride, padding, dilation, groups, hw", CONV_CASES)
def test_int8_conv2d_exact_and_saturating(c, o, k, stride, padding, dilation, groups, hw):
    ks, kw = _conv_args(k, stride, padding, dilation)
    q_x = _rand((2, c, hw, hw), -128, 127, 40 + c)
    q_x[:, :, : hw // 2] = _rand((2, c, hw // 2, hw), 80, 127, 50 + c)   # large activations (u8 >= 208)
    w_q = _rand((o, c // groups, *ks), -127, 127, 60 + c)
    exact = x86int8.int8_conv2d(q_x.double(), w_q.double(), groups=groups, kernel="exact", **kw)
    ref = F.conv2d(q_x.double(), w_q.double(), groups=groups, **kw).round().long()
    assert exact.dtype == torch.int64 and torch.equal(exact, ref)
    sat = x86int8.int8_conv2d(q_x.double(), w_q.double(), groups=groups, kernel="vpmaddubsw", **kw)
    assert sat.dtype == torch.int64 and sat.shape == ref.shape
    assert torch.equal(sat, _conv_vpmaddubsw_ref(q_x, w_q, kw["stride"], kw["padding"], kw["dilation"], groups))
    if (c // groups) * ks[0] * ks[1] > 1:
        assert not torch.equal(sat, exact)                            # the emulation saturates here
    # integer dtypes (int8 activations, int8 weights) give the same results as float codes
    assert torch.equal(x86int8.int8_conv2d(q_x.to(torch.int8), w_q.to(torch.int8), groups=groups,
                                           kernel="vpmaddubsw", **kw), sat)
    # reduce_range weights: the saturating kernel is exact
    w_rr = (w_q / 2).round().clamp(-64, 64).double()
    assert torch.equal(x86int8.int8_conv2d(q_x.double(), w_rr, groups=groups, kernel="vpmaddubsw", **kw),
                       F.conv2d(q_x.double(), w_rr, groups=groups, **kw).round().long())


def test_conv_reduction_order_is_channels_last():
    # one output pixel, 2 input channels, 1x2 kernel: (kh, kw, c) order pairs (c0, c1) at each tap, so the
    # pair with both large activations and weights saturates; (c, kh, kw) order would pair the taps instead
    q_x = torch.tensor([[[[127.0, -128.0]], [[127.0, -128.0]]]])   # u8: channel taps [255, 0], [255, 0]
    w_q = torch.full((1, 2, 1, 2), 127.0)
    args = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    exact = x86int8.int8_conv2d(q_x, w_q, kernel="exact", **args).item()
    assert exact == 2 * 127 * 127 - 2 * 128 * 127
    # channels-last pairs: tap 0 -> (255*127 + 255*127) clipped to 32767; tap 1 -> 0; minus 128 * 4 * 127
    assert x86int8.int8_conv2d(q_x, w_q, kernel="vpmaddubsw", **args).item() == I16_MAX - 128 * 4 * 127


def test_saturation_follows_each_channels_own_range():
    # channels 0 and 1 large (u8 >= 228), the others near u8 0: only pairs of the first two channels saturate,
    # at every kernel tap -- the per-position bounds must follow the (kh, kw, c) order of the reduction
    q_x = _rand((2, 6, 7, 7), -128, -100, 70)
    q_x[:, :2] = _rand((2, 2, 7, 7), 100, 127, 71)
    w_q = _rand((4, 6, 3, 3), 100, 127, 72)
    w_q[1] = -w_q[1]
    kw = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    sat = x86int8.int8_conv2d(q_x, w_q, kernel="vpmaddubsw", **kw)
    assert torch.equal(sat, _conv_vpmaddubsw_ref(q_x, w_q, (1, 1), (0, 0), (1, 1), 1))
    assert not torch.equal(sat, x86int8.int8_conv2d(q_x, w_q, kernel="exact", **kw))


@pytest.mark.parametrize("cin, fill", [(113, -128.0), (113, -127.0), (120, -128.0), (120, -127.0)])
def test_int8_conv2d_exact_at_the_extremes(cin, fill):
    # K = 9 * 113 = 1017: every partial sum below 2^24 (float32 is exact); K = 1080: sums above 2^24,
    # where float32 would drop odd values (127 * 127 is odd)
    q_x = torch.full((1, cin, 5, 5), fill)
    w_q = torch.full((3, cin, 3, 3), fill)
    w_q[1] = 127.0
    w_q[2, ::2] = fill
    w_q[2, 1::2] = 127.0
    args = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    got = x86int8.int8_conv2d(q_x, w_q, kernel="exact", **args)
    assert torch.equal(got, F.conv2d(q_x.double(), w_q.double(), **args).round().long())
    assert got[0, 0, 2, 2].item() == cin * 9 * int(fill) ** 2


def _qdq_only_model(scale: float, zp: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])],
        "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(zp, "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("zp", [np.int8(0), np.uint8(128), np.uint8(0)])
def test_quantize_linear_rounds_half_to_even_and_saturates(zp):
    s = 0.25  # a power of two: x / s is exact, so the ties really are ties
    x = np.array([[0.5, 1.5, 2.5, -0.5], [-1.5, -2.5, 3.49, -3.51], [1000.0, -1000.0, 31.75, -32.0]], np.float32) * s
    model = _qdq_only_model(s, zp)
    q = np.round(x.astype(np.float64) / s) + int(zp)                   # numpy rounds half to even too
    lo, hi = (-128, 127) if zp.dtype == np.int8 else (0, 255)
    want = (np.clip(q, lo, hi) - int(zp)) * s
    got = x86int8.run_qdq_model(model, x, "exact")
    np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_array_equal(got, dort.run(dort.make_session(model, "ORT_DISABLE_ALL"), torch.from_numpy(x)))


# ------------------------------------------------------------------------- run_qdq_model, hand-built
def _qdq_linear_model(op: str, w: np.ndarray, sw: np.ndarray, bias: np.ndarray, sx: float) -> onnx.ModelProto:
    """x -> Q/DQ (int8, zero point 0) -> Gemm(transB=1) with W [O, K] / MatMul with W [K, O] (+ Add bias);
    weights int8 behind a per-channel DequantizeLinear."""
    k, o = (w.shape[1], w.shape[0]) if op == "Gemm" else w.shape
    axis = 0 if op == "Gemm" else 1
    inits = [numpy_helper.from_array(w.astype(np.int8), "w_q"), numpy_helper.from_array(sw.astype(np.float32), "w_s"),
             numpy_helper.from_array(np.zeros(o, np.int8), "w_z"), numpy_helper.from_array(np.float32(sx), "x_s"),
             numpy_helper.from_array(np.int8(0), "x_z"), numpy_helper.from_array(bias.astype(np.float32), "b")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "x_s", "x_z"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w_dq"], axis=axis)]
    if op == "Gemm":
        nodes.append(helper.make_node("Gemm", ["x_dq", "w_dq", "b"], ["y"], transB=1))
    else:
        nodes += [helper.make_node("MatMul", ["x_dq", "w_dq"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["y"])]
    graph = helper.make_graph(nodes, "lin", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", o])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
def test_run_qdq_model_linear_layer_by_hand(op):
    g = torch.Generator().manual_seed(8)
    k, o, sx = 33, 6, 0.02
    w_codes = _rand((o, k), -127, 127, 9).numpy()
    sw = np.linspace(0.01, 0.05, o)
    bias = torch.randn(o, generator=g).numpy()
    model = _qdq_linear_model(op, w_codes if op == "Gemm" else w_codes.T, sw, bias, sx)
    x = (torch.rand(20, k, generator=g) * 2.6 - 0.2).numpy()      # mostly large positive: u8 codes near 255
    x[:5] = -x[:5]
    qx = np.clip(np.round(x.astype(np.float64) / np.float32(sx)), -128, 127)
    w_t = torch.from_numpy(w_codes)
    for kernel in x86int8.KERNELS:
        a = torch.from_numpy(qx + 128)
        acc = (_pair_dot_ref(a, w_t) if kernel == "vpmaddubsw" else a.round().long() @ w_t.T) - 128 * w_t.sum(1)
        want = acc.numpy() * np.float32(sx) * sw.astype(np.float32)[None] + bias.astype(np.float32)[None]
        got = x86int8.run_qdq_model(model, x, kernel)
        assert got.dtype == np.float32 and got.shape == (20, o)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    sat, exact = x86int8.run_qdq_model(model, x, "vpmaddubsw"), x86int8.run_qdq_model(model, x, "exact")
    assert np.abs(sat - exact).max() > 0.1                            # saturation reaches the logits
    # kernel="exact" is the Q/DQ graph's float definition: onnxruntime with every optimisation off
    ref = dort.run(dort.make_session(model, "ORT_DISABLE_ALL"), torch.from_numpy(x))
    np.testing.assert_allclose(exact, ref, rtol=1e-4, atol=1e-4)
    # batching does not change anything
    np.testing.assert_array_equal(x86int8.run_qdq_model(model, x, "vpmaddubsw", batch_size=3), sat)


# ------------------------------------------------------------------------ 4-5. the shapes teacher
@pytest.fixture(scope="module")
def shapes():
    teacher = checkpoints.pretrained("shapes_teacher")
    splits = data.shapes_splits()
    x, y = train.tensors(splits.test)
    xtr, _ = train.tensors(splits.train)
    fp32 = ox.export_onnx(teacher, x[:2])
    acts, _ = int8.qdq_tensor_names(fp32)
    hists = qdq.activation_histograms(fp32, acts, [xtr[i:i + 128] for i in range(0, 256, 128)])
    full = int8.quantize_onnx(fp32, hists, "max", reduce_range=False)
    return fp32, hists, full, x, y


def test_exact_emulation_equals_float_qdq_semantics_on_every_cpu(shapes):
    _, _, full, x, _ = shapes
    ref = dort.run_batched(dort.make_session(full, "ORT_DISABLE_ALL"), x[:64])
    emu = x86int8.run_qdq_model(full, x[:64], "exact")
    assert emu.shape == ref.shape and emu.dtype == np.float32
    # float64 here, float32 in onnxruntime: identical logits (to 1e-7 of the largest here) except where a
    # value lands on a rounding tie of some QuantizeLinear and one code flips (1 image of 64 here, 9e-4)
    rel = np.abs(emu - ref).max(1) / np.abs(ref).max()
    assert (rel > 1e-5).sum() <= 3, np.sort(rel)[-5:]
    assert rel.max() < 5e-3
    assert (emu.argmax(1) == ref.argmax(1)).all()


def _own_kernel() -> str | None:
    return {"amx": "exact", "vnni": "exact", "avx2-vpmaddubsw": "vpmaddubsw"}.get(machine.cpu_features()["int8_kernel"])


@pytest.mark.parametrize("kernel", x86int8.KERNELS)
def test_emulation_matches_onnxruntime_int8_kernels_where_the_cpu_has_them(shapes, kernel):
    if _own_kernel() != kernel:
        pytest.skip(f"onnxruntime's int8 kernel on this CPU is {machine.cpu_features()['int8_kernel']!r}; "
                    f"kernel={kernel!r} can only be compared where it is the CPU's own")
    _, _, full, x, _ = shapes
    ref = dort.run_batched(dort.make_session(full, "ORT_ENABLE_ALL"), x[:64])
    emu = x86int8.run_qdq_model(full, x[:64], kernel)
    # onnxruntime requantises inside QLinearConv with a float32 fused scale: a few output steps apart
    assert (emu.argmax(1) == ref.argmax(1)).mean() >= 0.98
    assert np.abs(emu - ref).max() < 0.05 * np.abs(ref).max()


def test_default_keeps_int8_within_one_point_of_fp32_on_an_avx2_cpu(shapes, monkeypatch):
    """The issue's acceptance test: "on an AVX2 CPU the default keeps int8 within 1 point of fp32".

    An x86 CPU without VNNI is emulated (onnxruntime picks its kernel from CPUID and cannot be lowered):
    cpu_features reports ``avx2-vpmaddubsw``, so quantize_onnx's default is reduce_range, and the
    saturating kernel then matches fp32 within 1 point -- while full-range weights under the same kernel
    lose more than that (shapes teacher, 500 test images: fp32 0.968, full range emulated 0.928, exact 0.964;
    first 200 images: fp32 0.990, full range emulated 0.940).
    """
    fp32, hists, full, x, y = shapes
    real = machine.cpu_features()
    monkeypatch.setattr(machine, "cpu_features", lambda: {**real, "int8_kernel": "avx2-vpmaddubsw"})
    assert int8.default_reduce_range() is True
    default = int8.quantize_onnx(fp32, hists, "max")                     # what a student gets by default
    codes = [numpy_helper.to_array(i) for i in default.graph.initializer if i.data_type == TensorProto.INT8]
    assert codes and max(int(np.abs(c.astype(np.int64)).max()) for c in codes) <= 64
    n, n_full = 500, 200  # default: 4 images above the bar at 500; full range: 0.940 vs 0.980 needed at 200
    yn = y.numpy()
    acc32 = float((dort.run_batched(dort.make_session(fp32), x[:n]).argmax(1) == yn[:n]).mean())
    acc_default = x86int8.accuracy(default, x[:n], y[:n], "vpmaddubsw")
    assert acc_default >= acc32 - 0.01, (acc_default, acc32)
    acc32_sub = float((dort.run_batched(dort.make_session(fp32), x[:n_full]).argmax(1) == yn[:n_full]).mean())
    acc_full = x86int8.accuracy(full, x[:n_full], y[:n_full], "vpmaddubsw")
    assert acc_full < acc32_sub - 0.01, (acc_full, acc32_sub)           # without the remedy: more than 1 point lost


def test_default_is_full_range_where_the_kernel_is_exact(monkeypatch, shapes):
    fp32, hists, full, _, _ = shapes
    real = machine.cpu_features()
    for kernel in ("vnni", "amx", "other"):
        monkeypatch.setattr(machine, "cpu_features", lambda k=kernel: {**real, "int8_kernel": k})
        assert int8.default_reduce_range() is False
    default = int8.quantize_onnx(fp32, hists, "max")
    init = lambda m: {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}  # noqa: E731
    a, b = init(default), init(full)
    assert a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)


def test_reduce_range_weight_scales(shapes):
    fp32 = shapes[0]
    _, weights = int8.qdq_tensor_names(fp32)
    inits = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    full, rr = qdq.weight_scales(fp32, weights), qdq.weight_scales(fp32, weights, reduce_range=True)
    for n in weights:
        wmax = np.abs(inits[n].reshape(len(inits[n]), -1)).max(1)
        np.testing.assert_allclose(full[n], wmax / 127, rtol=1e-6)
        np.testing.assert_allclose(rr[n], wmax / 64, rtol=1e-6)


# ------------------------------------------------------------------------------------- 6. bad inputs
def test_bad_inputs(shapes):
    fp32, _, full, x, y = shapes
    a, w = torch.zeros(2, 4), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="kernel='avx'"):
        x86int8.saturating_pair_dot(a, w, "avx")
    for bad_a, bad_w in ((torch.zeros(4), w), (a, torch.zeros(3, 4, 1)), (a, torch.zeros(3, 5)), (a[None], w)):
        with pytest.raises(ValueError, match="a_u8=.* and w_s8=.* must be"):
            x86int8.saturating_pair_dot(bad_a, bad_w)
    with pytest.raises(ValueError, match="kernel='VNNI'"):
        x86int8.int8_conv2d(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 1, 1), stride=(1, 1), padding=(0, 0),
                            dilation=(1, 1), kernel="VNNI")
    with pytest.raises(ValueError, match="kernel='fast'"):
        x86int8.run_qdq_model(full, x[:1], "fast")
    with pytest.raises(ValueError, match="kernel='fast'"):
        x86int8.accuracy(full, x[:1], y[:1], "fast")
    for not_a_model in ("model.onnx", full.SerializeToString(), None):
        with pytest.raises(TypeError, match="must be an onnx.ModelProto"):
            x86int8.run_qdq_model(not_a_model, x[:1])
    sig = helper.make_model(helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"], name="sig")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])]), opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ValueError, match="'Sigmoid'.*not supported by the emulation"):
        x86int8.run_qdq_model(sig, np.zeros((1, 3), np.float32))
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="reduce_range"):
            qdq.weight_scales(fp32, [], reduce_range=bad)


def test_int8_conv_with_asymmetric_pads_is_refused(shapes):
    full = onnx.ModelProto()
    full.CopyFrom(shapes[2])
    conv = next(n for n in full.graph.node if n.op_type == "Conv")
    pads = next(a for a in conv.attribute if a.name == "pads")
    pads.ints[:] = [1, 1, 0, 0]
    with pytest.raises(ValueError, match="symmetric explicit padding"):
        x86int8.run_qdq_model(full, shapes[3][:1], "exact")


def test_int_stride_padding_and_bad_pairs():
    q_x = torch.randint(-128, 128, (1, 4, 6, 6), generator=torch.Generator().manual_seed(0)).double()
    w_q = torch.randint(-127, 128, (3, 4, 3, 3), generator=torch.Generator().manual_seed(1)).double()
    as_ints = x86int8.int8_conv2d(q_x, w_q, stride=2, padding=1, dilation=1)
    as_pairs = x86int8.int8_conv2d(q_x, w_q, stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    assert torch.equal(as_ints, as_pairs)
    for kw, err in (({"stride": (1, 1, 1)}, ValueError), ({"padding": 1.5}, TypeError), ({"dilation": True}, TypeError),
                    ({"stride": 0}, ValueError), ({"padding": (0, -1)}, ValueError)):
        args = {"stride": 1, "padding": 0, "dilation": 1, **kw}
        name = next(iter(kw))
        with pytest.raises(err, match=f"{name}="):
            x86int8.int8_conv2d(q_x, w_q, **args)


def test_quantize_linear_without_zero_point_is_uint8():
    # ONNX: a QuantizeLinear without its zero-point input quantises to uint8 with zero point 0
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    s = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.uint8), "z")
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s"], ["q"]),
                           helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "g", [x], [y], [s, z])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    out = x86int8.run_qdq_model(m, np.array([[-1.0, 0.25, 0.75, 200.0]], np.float32), "exact")
    np.testing.assert_array_equal(out, [[0.0, 0.0, 1.0, 127.5]])  # clipped at 0 and 255, ties to even


# ------------------------------------------------------------------------------- 7. cpu_features
def test_cpu_features_keys_and_types():
    f = machine.cpu_features()
    for k in ("avx2", "avx512f", "vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_fp16", "bf16_native"):
        assert isinstance(f[k], bool), k
    assert isinstance(f["aten_capability"], str)
    assert f["onednn_max_isa"] is None or isinstance(f["onednn_max_isa"], str)
    assert f["int8_kernel"] in ("amx", "vnni", "avx2-vpmaddubsw", "other")
    assert isinstance(machine._cpu_flags(), frozenset)
    assert f"onnxruntime int8 GEMM: {f['int8_kernel']}" in machine.describe_cpu_features()


@pytest.mark.parametrize("flags, arch, kernel", [
    (set(), "x86_64", "other"),
    ({"sse4_2"}, "x86_64", "other"),
    ({"avx2"}, "x86_64", "avx2-vpmaddubsw"),
    ({"avx2", "avx512f", "avx512bw"}, "x86_64", "avx2-vpmaddubsw"),   # AVX-512 without VNNI saturates too
    ({"avx2", "avx512f", "avx512_vnni"}, "x86_64", "vnni"),
    ({"avx2", "avx_vnni"}, "x86_64", "vnni"),
    ({"avx2", "avx512f", "avx512_vnni", "amx_int8", "amx_tile"}, "x86_64", "amx"),
    ({"asimd", "asimddp", "i8mm"}, "aarch64", "other"),
    ({"avx2"}, "aarch64", "other"),
])
def test_int8_kernel_from_flags(monkeypatch, flags, arch, kernel):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(machine.platform, "machine", lambda: arch)
    f = machine.cpu_features()
    assert f["int8_kernel"] == kernel
    assert f["vnni"] is ("avx512_vnni" in flags or "avx_vnni" in flags)
    assert f"onnxruntime int8 GEMM: {kernel}" in machine.describe_cpu_features()


def test_bf16_native_and_the_onednn_cap(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    f = machine.cpu_features()
    assert f["bf16_native"] is True and f["onednn_max_isa"] is None
    assert "oneDNN capped" not in machine.describe_cpu_features()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    f = machine.cpu_features()
    assert f["bf16_native"] is False and f["onednn_max_isa"] == "AVX2"
    assert "oneDNN capped at AVX2" in machine.describe_cpu_features()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")                     # case does not matter
    assert machine.cpu_features()["bf16_native"] is False
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")                       # the older name
    assert machine.cpu_features()["bf16_native"] is False
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")         # a cap above bf16 keeps it
    assert machine.cpu_features()["bf16_native"] is True
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "amx_tile"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    assert machine.cpu_features()["bf16_native"] is True
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert machine.cpu_features()["bf16_native"] is False
