"""lessons_lib.deploy.tensorrt: the guard, and the build / load / run / inspect flow against the strict
TensorRT 11 stand-in of ``tests/trt_standin.py`` (the real one needs NVIDIA's index and a GPU; neither exists
in CI). The stand-in computes with onnxruntime, so outputs are checked, not only call order."""
from __future__ import annotations

import sys
import types

import numpy as np
import onnx
import pytest
import torch

import trt_standin as standin
from lessons_lib.deploy import tensorrt as T


def conv_relu_onnx(path, *, batch="batch"):
    """x [batch, 3, 8, 8] -> Conv(4, 3x3, pad 1) -> Relu -> y, with a symbolic batch like the lessons' exports."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["y"], name="relu0")]
    graph = helper.make_graph(nodes, "conv_relu", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


class HostStream:
    """Stands for a torch.cuda.Stream in tests: a raw handle and synchronize()."""
    cuda_stream = 1234

    def __init__(self):
        self.syncs = 0

    def synchronize(self):
        self.syncs += 1


def ort_reference(path, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {"x": x.numpy()})[0])


def test_guard_explains_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails like a missing package
    ok, why = T.tensorrt_available()
    assert not ok and "not installed" in why and "NVIDIA" in why
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.13.0"))
    ok, why = T.tensorrt_available()
    assert not ok and "10.13.0" in why and "TensorRT 11" in why
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.4.0"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ok, why = T.tensorrt_available()
    assert not ok and "no CUDA GPU" in why
    with pytest.raises(RuntimeError, match="TensorRT cannot be used here: .*no CUDA GPU"):
        T.load_engine(__file__)


def test_the_stand_in_is_strict_where_tensorrt_is(tmp_path):
    """Negative controls of the stand-in itself: what TensorRT 11 refuses, it refuses."""
    trt = standin.module()
    path = conv_relu_onnx(tmp_path / "m.onnx")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(path.read_bytes())
    assert network.get_input(0).shape == (-1, 3, 8, 8)
    config = builder.create_builder_config()
    assert builder.build_serialized_network(network, config) is None  # dynamic batch, no profile
    assert "no optimization profile has been defined" in logger.messages[-1]
    bad = builder.create_optimization_profile()
    bad.set_shape("x", (8, 3, 8, 8), (1, 3, 8, 8), (64, 3, 8, 8))  # min > opt
    assert config.add_optimization_profile(bad) == -1
    wrong = builder.create_optimization_profile()
    wrong.set_shape("x", (1, 3, 9, 9), (8, 3, 9, 9), (64, 3, 9, 9))  # static dims differ
    assert config.add_optimization_profile(wrong) == 0
    assert builder.build_serialized_network(network, config) is None
    with pytest.raises(TypeError):
        builder.create_network(1 << 0)  # EXPLICIT_BATCH is gone in 11
    with pytest.raises(AttributeError):
        trt.BuilderFlag.FP16
    with pytest.raises(AttributeError):
        config.int8_calibrator = object()
    assert not trt.OnnxParser(builder.create_network(0), logger).parse(b"not an onnx file")


def test_lesson_export_builds_with_a_profile_and_runs(tmp_path):
    """The lesson's own kind of ONNX file (torch export, dynamic batch) builds only with a profile."""
    from lessons_lib.deploy import export_onnx
    from lessons_lib.models import TeacherCNN

    trt = standin.module()
    torch.manual_seed(0)
    model = TeacherCNN(width=4).eval()
    onnx_file = tmp_path / "teacher.onnx"
    export_onnx(model, torch.randn(1, 3, 32, 32), onnx_file)  # as lesson 15: dynamic batch named "batch"
    with pytest.raises(ValueError, match=r"dynamic batch .* pass batch_range=\(min, opt, max\)"):
        T.build_engine(onnx_file, tmp_path / "t.plan", trt=trt)
    plan = T.build_engine(onnx_file, tmp_path / "out" / "t.plan", batch_range=(1, 8, 64),
                          timing_cache=tmp_path / "t.cache", trt=trt)
    assert (tmp_path / "t.cache").read_bytes().startswith(b"standin-timing-cache")
    engine, context = T.load_engine(plan, trt=trt)
    assert engine.get_tensor_profile_shape("x", 0) == [[1, 3, 32, 32], [8, 3, 32, 32], [64, 3, 32, 32]]
    for n in (1, 8, 64):
        x = torch.randn(n, 3, 32, 32)
        y = T.run_engine(engine, context, x, stream=HostStream(), trt=trt)
        assert y.shape == (n, 10) and torch.allclose(y, model(x), atol=1e-4)
    with pytest.raises(ValueError, match=r"outside the engine's optimisation profile"):
        T.run_engine(engine, context, torch.randn(65, 3, 32, 32), stream=HostStream(), trt=trt)


def test_bind_sets_buffers_once_and_launch_only_enqueues(tmp_path):
    trt = standin.module()
    path = conv_relu_onnx(tmp_path / "m.onnx")
    engine, context = T.load_engine(T.build_engine(path, tmp_path / "m.plan", batch_range=(1, 4, 8), trt=trt), trt=trt)
    assert T.io_tensors(engine, trt=trt) == ([("x", torch.float32)], [("y", torch.float32)])
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    stream = HostStream()
    launch = T.bind(engine, context, x, stream=stream, trt=trt)
    setup = list(context.calls)
    assert setup.count("set_tensor_address") == 2 and setup.count("set_input_shape") == 1
    for _ in range(3):
        y = launch()
    assert context.calls[len(setup):] == ["execute_async_v3"] * 3 and stream.syncs == 3
    assert y.dtype == torch.float32 and torch.allclose(y, ort_reference(path, x.float()), atol=1e-6)
    layers = T.engine_layers(engine, context, trt=trt)
    assert [l["Name"] for l in layers] == ["conv0 + relu0"]


def test_build_and_run_times_bound_engines(tmp_path):
    trt = standin.module()
    files = {"fp32": conv_relu_onnx(tmp_path / "a.onnx"), "again": conv_relu_onnx(tmp_path / "b.onnx")}
    x = torch.randn(4, 3, 8, 8)
    res = T.build_and_run(files, x, tmp_path / "trt", repeats=3, stream=HostStream(), trt=trt)
    assert set(res) == {"fp32", "again"}
    for r in res.values():
        assert r["ms"] > 0 and r["plan_bytes"] > 0 and r["layers"] == ["conv0 + relu0"]
        assert torch.allclose(r["output"], ort_reference(files["fp32"], x), atol=1e-6)


def test_build_and_run_errors(tmp_path):
    trt = standin.module()
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        T.build_engine(tmp_path / "missing.onnx", tmp_path / "m.plan", trt=trt)
    with pytest.raises(FileNotFoundError, match="missing.plan"):
        T.load_engine(tmp_path / "missing.plan", trt=trt)
    f = tmp_path / "m.onnx"
    f.write_bytes(b"x")
    with pytest.raises(RuntimeError, match=r"could not parse m.onnx: \['ModelImporter"):
        T.build_engine(f, tmp_path / "m.plan", trt=trt)
    good = conv_relu_onnx(tmp_path / "g.onnx")
    with pytest.raises(ValueError, match="workspace_bytes=5"):
        T.build_engine(good, tmp_path / "m.plan", batch_range=(1, 1, 1), workspace_bytes=5, trt=trt)
    for bad in ((8, 1, 64), (1, 8), (0, 1, 2)):
        with pytest.raises(ValueError, match="batch_range"):
            T.build_engine(good, tmp_path / "m.plan", batch_range=bad, trt=trt)
    with pytest.raises(TypeError, match="batch_range"):
        T.build_engine(good, tmp_path / "m.plan", batch_range=(1, 2.5, 4), trt=trt)
    (tmp_path / "junk.plan").write_bytes(b"junk")
    with pytest.raises(RuntimeError, match="could not deserialise junk.plan"):
        T.load_engine(tmp_path / "junk.plan", trt=trt)
    engine, context = T.load_engine(T.build_engine(good, tmp_path / "m.plan", batch_range=(1, 1, 2), trt=trt), trt=trt)
    with pytest.raises(ValueError, match="x is on cpu"):
        T.run_engine(engine, context, torch.randn(1, 3, 8, 8), trt=trt)
    with pytest.raises(TypeError, match="x=list"):
        T.run_engine(engine, context, [1.0], trt=trt)


def test_gpu_benchmark_skips_with_a_reason(monkeypatch):
    from lessons_lib.deploy import gpu
    from lessons_lib.models import TeacherCNN

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = gpu.gpu_benchmark(TeacherCNN(width=4))
    assert "no CUDA GPU" in res["skipped"] and gpu.format_table(res).startswith("skipped: no CUDA GPU")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        gpu.gpu_variants(TeacherCNN(width=4))
    with pytest.raises(TypeError, match="model=str"):
        gpu.gpu_variants("teacher")
    table = gpu.format_table({"device": "GPU: X", "compile_s": 12.0, "rows": [
        {"variant": "eager fp32", "batch": 1, "ms": 1.5}, {"variant": "eager fp32", "batch": 64, "ms": 2.25}]})
    assert "| eager fp32 | 1.500 ms | 2.250 ms |" in table and "12.0 s" in table


def test_gpu_record_round_trip_and_refusals(tmp_path, monkeypatch):
    from lessons_lib.deploy import gpu

    # a result shaped as gpu_benchmark returns it (the values are test inputs, not measurements)
    res = {"device": "GPU: test stand-in", "compile_s": None, "rows": [{"variant": "eager fp16", "batch": 1, "ms": 0.5}]}
    trt_rows = [{"engine": "fp16", "batch": 64, "ms": 0.25, "plan_kib": 300.0, "agreement": 1.0,
                 "layers": ["Conv_0 + Relu_1", "MaxPool_2"]}]
    path = gpu.save_record({**res, "tensorrt": trt_rows}, tmp_path / "rec.json")
    rec = gpu.load_record(path)
    assert rec["rows"] == res["rows"] and rec["torch"] == torch.__version__ and rec["recorded"]
    shown = gpu.format_record(rec)
    assert shown.startswith("RECORDED on") and "not measured on this machine" in shown
    assert "| eager fp16 | 0.500 ms |" in shown and "TensorRT fp16: 0.250 ms at batch 64" in shown
    assert "Conv_0 + Relu_1" in shown
    assert gpu.load_record(tmp_path / "none.json") is None
    assert "python -m lessons_lib.deploy.gpu --record" in gpu.format_record(None)
    with pytest.raises(ValueError, match="not a measured gpu_benchmark result"):
        gpu.save_record({"skipped": "no CUDA GPU"}, tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(ValueError, match="junk.json is not a gpu_benchmark record"):
        gpu.load_record(tmp_path / "junk.json")
    # without a GPU, --record writes nothing, and the TensorRT part says why it skipped
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from lessons_lib.models import TeacherCNN
    assert set(gpu.tensorrt_rows(TeacherCNN(width=4))) == {"tensorrt_skipped"}
    gpu.main(["--record", str(tmp_path / "cpu.json")])
    assert not (tmp_path / "cpu.json").exists()


def test_gpu_record_in_data_is_listed_in_the_manifest(tmp_path, monkeypatch):
    import json

    from lessons_lib import checkpoints
    from lessons_lib.deploy import gpu

    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", d)
    res = {"device": "GPU: test stand-in", "compile_s": None, "rows": [{"variant": "eager fp32", "batch": 1, "ms": 1.0}]}
    path = gpu.save_record(res, d / "gpu_recorded.json")
    entry = json.loads((d / "MANIFEST.json").read_text())["files"]["gpu_recorded.json"]
    assert entry["sha256"] == checkpoints.sha256(path) and "GPU: test stand-in" in entry["recipe"]
