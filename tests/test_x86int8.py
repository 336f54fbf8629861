"""lessons_lib.quant.x86int8 (the x86 int8 GEMM, exact and saturating) and the reduce_range remedy.

References: a slow, explicit pair-by-pair computation written here (products in int64, each pair clipped
to int16, then summed), F.conv2d in float64 on the integer codes, and onnxruntime itself on CPUs whose
int8 kernel is the one emulated (``machine.cpu_features()["int8_kernel"]``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessons_lib import checkpoints, data, machine, train
from lessons_lib.deploy import onnx_export as E, ort as O, qdq as Q
from lessons_lib.quant import int8, x86int8


def _pairs_reference(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """[M, K] u8 x [O, K] s8 -> [M, O]: pairs (2j, 2j+1) summed and clipped to int16, then added in int64."""
    a, w = a.to(torch.int64), w.to(torch.int64)
    if a.shape[1] % 2:
        a, w = F.pad(a, (0, 1)), F.pad(w, (0, 1))
    prod = a[:, None, :] * w[None, :, :]                      # [M, O, K]
    pair = prod[..., 0::2] + prod[..., 1::2]
    return pair.clamp(-32768, 32767).sum(-1)


def _rand(shape, lo, hi, seed):
    return torch.randint(lo, hi + 1, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("m, o, k", [(7, 5, 16), (3, 9, 27), (1, 1, 1), (16, 4, 130)])
def test_pair_dot_matches_the_explicit_reference(m, o, k):
    a = _rand((m, k), 0, 255, 0)
    a[:, : k // 2] = 255  # large activations, so that pairs do saturate
    w = _rand((o, k), -128, 127, 1)
    got = x86int8.saturating_pair_dot(a, w, "vpmaddubsw")
    assert got.dtype == torch.int64 and torch.equal(got, _pairs_reference(a, w))
    assert torch.equal(x86int8.saturating_pair_dot(a, w, "exact"), a.to(torch.int64) @ w.to(torch.int64).T)


def test_pair_dot_by_hand():
    a = torch.tensor([[255, 255, 255, 255]])
    same = torch.tensor([[127, 127, 127, 127]])
    assert x86int8.saturating_pair_dot(a, same).item() == 2 * 32767       # not 4 * 255 * 127 = 129540
    assert x86int8.saturating_pair_dot(a, same, "exact").item() == 129540
    opposite = torch.tensor([[127, -128, -128, 127]])                      # |pair| <= 255 * 128: never clipped
    assert x86int8.saturating_pair_dot(a, opposite).item() == x86int8.saturating_pair_dot(a, opposite, "exact").item()
    neg = -same - 1                                                        # -128: clipped at -32768
    assert x86int8.saturating_pair_dot(a, neg).item() == 2 * -32768


def test_saturation_happens_and_reduce_range_removes_it():
    a = _rand((64, 200), 128, 255, 2)
    w_full = _rand((32, 200), -127, 127, 3)
    w_rr = _rand((32, 200), -64, 64, 4)
    assert not torch.equal(x86int8.saturating_pair_dot(a, w_full), x86int8.saturating_pair_dot(a, w_full, "exact"))
    assert torch.equal(x86int8.saturating_pair_dot(a, w_rr), x86int8.saturating_pair_dot(a, w_rr, "exact"))
    # the worst case of reduce_range: 2 * 255 * 64 = 32640 <= 32767
    top = torch.full((1, 2), 255)
    assert x86int8.saturating_pair_dot(top, torch.full((1, 2), 64)).item() == 32640


def _conv_reference(q_x, w_q, stride, padding, dilation, groups):
    """The vpmaddubsw conv via F.unfold: u8 = q + 128 (padding 128), reduction in (kh, kw, c) order."""
    n, c, h, wd = q_x.shape
    o, cg, kh, kw = w_q.shape
    a = F.pad(q_x.double() + 128, (padding[1], padding[1], padding[0], padding[0]), value=128.0)
    cols = F.unfold(a, (kh, kw), dilation=dilation, stride=stride)          # [N, C*kh*kw, L], (c, kh, kw) order
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    outs = []
    og = o // groups
    for g in range(groups):
        cg_cols = cols[:, g * cg * kh * kw:(g + 1) * cg * kh * kw]          # [N, cg*kh*kw, L]
        cg_cols = cg_cols.reshape(n, cg, kh, kw, -1).permute(0, 4, 2, 3, 1).reshape(n * h_out * w_out, kh * kw * cg)
        wg = w_q[g * og:(g + 1) * og].permute(0, 2, 3, 1).reshape(og, kh * kw * cg)
        acc = _pairs_reference(cg_cols.round().long(), wg.long()) - 128 * wg.long().sum(1)[None]
        outs.append(acc.reshape(n, h_out * w_out, og).permute(0, 2, 1).reshape(n, og, h_out, w_out))
    return torch.cat(outs, 1)


@pytest.mark.parametrize("c, o, k, stride, padding, dilation, groups", [
    (3, 8, 3, 1, 1, 1, 1), (5, 6, 3, 2, 0, 1, 1), (8, 8, 3, 1, 1, 1, 8), (6, 4, 3, 1, 2, 2, 2), (7, 5, 1, 1, 0, 1, 1),
])
def test_int8_conv2d(c, o, k, stride, padding, dilation, groups):
    q_x = _rand((2, c, 9, 9), -128, 127, 5).double()
    q_x[:, :, :4] = 127  # large activations: pairs saturate
    w_q = _rand((o, c // groups, k, k), -127, 127, 6).double()
    kw = dict(stride=(stride, stride), padding=(padding, padding), dilation=(dilation, dilation), groups=groups)
    exact = x86int8.int8_conv2d(q_x, w_q, kernel="exact", **kw)
    ref = F.conv2d(q_x, w_q, **kw).round().long()
    assert torch.equal(exact, ref)
    sat = x86int8.int8_conv2d(q_x, w_q, kernel="vpmaddubsw", **kw)
    assert torch.equal(sat, _conv_reference(q_x, w_q, kw["stride"], kw["padding"], kw["dilation"], groups))
    if c // groups * k * k > 1:
        assert not torch.equal(sat, exact)  # the emulation really saturates here
    w_rr = (w_q / 2).round().clamp(-64, 64)
    assert torch.equal(x86int8.int8_conv2d(q_x, w_rr, kernel="vpmaddubsw", **kw),
                       x86int8.int8_conv2d(q_x, w_rr, kernel="exact", **kw))


# ------------------------------------------------------------------------------- whole Q/DQ models
@pytest.fixture(scope="module")
def shapes():
    teacher = checkpoints.pretrained("shapes_teacher")
    splits = data.shapes_splits()
    x, y = train.tensors(splits.test)
    xtr, _ = train.tensors(splits.train)
    fp32 = E.export_onnx(teacher, x[:2])
    acts, _ = int8.qdq_tensor_names(fp32)
    hists = int8.collect_histograms(fp32, acts, [xtr[i:i + 128] for i in range(0, 256, 128)])
    return fp32, hists, x, y


def test_exact_emulation_equals_the_float_qdq_semantics(shapes):
    # every CPU: kernel="exact" is the Q/DQ graph's definition, which onnxruntime runs literally in float
    # with all optimisations off (no integer kernels at all)
    fp32, hists, x, _ = shapes
    q = int8.quantize_onnx(fp32, hists, "max", reduce_range=False)
    ref = O.predict(O.make_session(q, "ORT_DISABLE_ALL"), x[:64])
    emu = x86int8.run_qdq_model(q, x[:64], "exact")
    assert np.abs(emu - ref).max() < 1e-3 * np.abs(ref).max()
    assert (emu.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("kernel", x86int8.KERNELS)
def test_emulation_matches_onnxruntime_where_the_cpu_has_that_kernel(shapes, kernel):
    own = {"amx": "exact", "vnni": "exact", "avx2-vpmaddubsw": "vpmaddubsw"}.get(machine.cpu_features()["int8_kernel"])
    if own != kernel:
        pytest.skip(f"onnxruntime's int8 kernel on this CPU is {machine.cpu_features()['int8_kernel']!r}, not {kernel!r}")
    fp32, hists, x, _ = shapes
    q = int8.quantize_onnx(fp32, hists, "max", reduce_range=False)  # full range: saturation matters
    ref = O.predict(O.make_session(q), x[:256])
    emu = x86int8.run_qdq_model(q, x[:256], kernel)
    # onnxruntime requantises each conv output to int8 where the emulation keeps it exact until the next Q:
    # logits differ by a few output steps, predictions almost never
    assert np.median(np.abs(emu - ref)) < 0.01 * np.abs(ref).max()
    assert (emu.argmax(1) == ref.argmax(1)).mean() >= 0.98


def test_default_keeps_int8_within_one_point_of_fp32_on_an_avx2_cpu(shapes, monkeypatch):
    """The issue's acceptance test: on an x86 CPU without VNNI (emulated: onnxruntime cannot be told to use
    its AVX2 kernel on a VNNI machine), quantize_onnx's default choice keeps int8 within 1 point of fp32,
    while full-range weights lose more than that (real AVX2 onnxruntime: 0.930 vs fp32 0.968 on 500 images)."""
    fp32, hists, x, y = shapes
    n = 500
    x, y = x[:n], y[:n].numpy()
    acc32 = float((O.predict(O.make_session(fp32), x).argmax(1) == y).mean())
    flags = machine._cpu_flags.__wrapped__() - {"avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "amx_tile"}
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset(flags | {"avx2"}))
    assert machine.cpu_features()["int8_kernel"] == "avx2-vpmaddubsw" and int8.default_reduce_range() is True
    default = int8.quantize_onnx(fp32, hists, "max")
    full = int8.quantize_onnx(fp32, hists, "max", reduce_range=False)
    acc_default = float((x86int8.run_qdq_model(default, x, "vpmaddubsw").argmax(1) == y).mean())
    acc_full = float((x86int8.run_qdq_model(full, x, "vpmaddubsw").argmax(1) == y).mean())
    assert acc_default >= acc32 - 0.01, (acc_default, acc32)
    assert acc_full < acc32 - 0.01, (acc_full, acc32)   # the emulated kernel really loses without the remedy


def test_default_is_full_range_where_the_kernel_is_exact(monkeypatch):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert int8.default_reduce_range() is False
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset())
    assert int8.default_reduce_range() is False


def test_reduce_range_weight_scales_match_the_definition(shapes):
    fp32, _, _, _ = shapes
    _, weights = int8.qdq_tensor_names(fp32)
    full = Q.weight_scales(fp32, weights)
    rr = Q.weight_scales(fp32, weights, reduce_range=True)
    for n in weights:
        np.testing.assert_allclose(rr[n], full[n] * 127 / 64, rtol=1e-6)


# ------------------------------------------------------------------------------------ cpu_features
@pytest.mark.parametrize("flags, kernel", [
    (set(), "other"), ({"avx2"}, "avx2-vpmaddubsw"), ({"avx2", "avx512f", "avx512bw"}, "avx2-vpmaddubsw"),
    ({"avx2", "avx512f", "avx512_vnni"}, "vnni"), ({"avx2", "avx_vnni"}, "vnni"),
    ({"avx2", "avx512_vnni", "amx_int8", "amx_tile"}, "amx"),
])
def test_int8_kernel_from_flags(monkeypatch, flags, kernel):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset(flags))
    if kernel != "other":
        monkeypatch.setattr(machine.platform, "machine", lambda: "x86_64")
    assert machine.cpu_features()["int8_kernel"] == kernel
    assert kernel in machine.describe_cpu_features()


def test_cpu_features_keys_and_onednn_cap(monkeypatch):
    f = machine.cpu_features()
    for k in ("avx2", "avx512f", "vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_fp16", "bf16_native"):
        assert isinstance(f[k], bool), k
    assert isinstance(f["aten_capability"], str) and f["int8_kernel"] in ("amx", "vnni", "avx2-vpmaddubsw", "other")
    monkeypatch.setattr(machine, "_cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert machine.cpu_features()["bf16_native"] is True
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine.cpu_features()["bf16_native"] is False and "oneDNN capped at AVX2" in machine.describe_cpu_features()


# ------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs(shapes):
    fp32, _, x, _ = shapes
    a, w = torch.zeros(2, 4), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="kernel='avx'"):
        x86int8.saturating_pair_dot(a, w, "avx")
    with pytest.raises(ValueError, match=r"a_u8 \(2, 4\) and w_s8 \(3, 5\)"):
        x86int8.saturating_pair_dot(a, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="kernel='x'"):
        x86int8.int8_conv2d(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 1, 1), stride=(1, 1), padding=(0, 0),
                            dilation=(1, 1), kernel="x")
    with pytest.raises(TypeError, match="model=str"):
        x86int8.run_qdq_model("model.onnx", x[:1])
    with pytest.raises(ValueError, match="not supported by the emulation"):
        x86int8.run_qdq_model(E.export_onnx(torch.nn.Sequential(torch.nn.Sigmoid()), torch.randn(1, 3)), torch.randn(1, 3))
    with pytest.raises(TypeError, match="reduce_range=1"):
        Q.weight_scales(fp32, [], reduce_range=1)
