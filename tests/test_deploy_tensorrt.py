"""lessons_lib.deploy.tensorrt: the guard, and the build / load / run / inspect flow against a stand-in
``tensorrt`` module (the real one needs NVIDIA's index and a GPU; neither exists in CI)."""
from __future__ import annotations

import ctypes
import enum
import json
import sys
import types

import pytest
import torch

from lessons_lib.deploy import tensorrt as T


def fake_trt(parse_ok: bool = True, build_ok: bool = True):
    """A minimal TensorRT 11 stand-in: the engine is the identity on a float32 tensor."""
    calls: list[str] = []

    class Logger:
        WARNING = "WARNING"

        def __init__(self, level):
            calls.append(f"Logger({level})")

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1

    class TensorIOMode(enum.Enum):
        INPUT = 0
        OUTPUT = 1

    class Config:
        profiling_verbosity = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(f"set_memory_pool_limit({pool}, {size})")

        def create_timing_cache(self, data):
            calls.append(f"create_timing_cache({len(data)} bytes)")
            return b"cache"

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append("set_timing_cache")

        def get_timing_cache(self):
            return types.SimpleNamespace(serialize=lambda: b"TIMINGS")

    class Builder:
        def __init__(self, logger):
            calls.append("Builder")

        def create_network(self, flags=0):
            calls.append(f"create_network({flags})")
            return "network"

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            calls.append(f"build_serialized_network(verbosity={config.profiling_verbosity})")
            return b"PLAN" if build_ok else None

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            calls.append(f"parse({len(data)} bytes)")
            return parse_ok

        def get_error(self, i):
            return "Unsupported operator FancyOp"

    class Context:
        def __init__(self):
            self.shapes, self.addr = {}, {}

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)

        def get_tensor_shape(self, name):
            return self.shapes["x"]

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def execute_async_v3(self, stream_handle):
            n = 4
            for s in self.shapes["x"]:
                n *= s
            ctypes.memmove(self.addr["logits"], self.addr["x"], n)  # identity engine
            calls.append(f"execute_async_v3({stream_handle})")
            return True

    class Inspector:
        execution_context = None

        def get_engine_information(self, fmt):
            return json.dumps({"Layers": [{"Name": "conv0 + bn0 + relu0", "LayerType": "CaskConvolution"}, "pool"],
                               "I/O Tensors": []})

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ["x", "logits"][i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == "x" else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return DataType.FLOAT

        def create_execution_context(self):
            return Context()

        def create_engine_inspector(self):
            return Inspector()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append(f"deserialize_cuda_engine({bytes(data)!r})")
            return Engine()

    mod = types.SimpleNamespace(
        Logger=Logger, Builder=Builder, OnnxParser=OnnxParser, Runtime=Runtime, DataType=DataType,
        TensorIOMode=TensorIOMode, MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        ProfilingVerbosity=types.SimpleNamespace(DETAILED="DETAILED"),
        LayerInformationFormat=types.SimpleNamespace(JSON="JSON"), __version__="11.4.0")
    mod.calls = calls
    return mod


class FakeStream:
    cuda_stream = 1234

    def synchronize(self):
        pass


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


def test_build_load_run_inspect_with_stand_in(tmp_path):
    trt = fake_trt()
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"0123456789")
    plan = T.build_engine(onnx_file, tmp_path / "out" / "m.plan", timing_cache=tmp_path / "t.cache", trt=trt)
    assert plan.read_bytes() == b"PLAN" and (tmp_path / "t.cache").read_bytes() == b"TIMINGS"
    assert trt.calls[:6] == ["Logger(WARNING)", "Builder", "create_network(0)", "parse(10 bytes)",
                             f"set_memory_pool_limit(WORKSPACE, {1 << 30})", "create_timing_cache(0 bytes)"]
    assert "build_serialized_network(verbosity=DETAILED)" in trt.calls
    engine, context = T.load_engine(plan, trt=trt)
    assert "deserialize_cuda_engine(b'PLAN')" in trt.calls
    assert T.io_tensors(engine, trt=trt) == ([("x", torch.float32)], [("logits", torch.float32)])
    x = torch.randn(3, 5, dtype=torch.float64)
    y = T.run_engine(engine, context, x, stream=FakeStream(), trt=trt)
    assert y.dtype == torch.float32 and torch.equal(y, x.float())  # addresses and shapes wired right
    assert "execute_async_v3(1234)" in trt.calls
    layers = T.engine_layers(engine, context, trt=trt)
    assert [l["Name"] for l in layers] == ["conv0 + bn0 + relu0", "pool"]


def test_build_and_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        T.build_engine(tmp_path / "missing.onnx", tmp_path / "m.plan", trt=fake_trt())
    with pytest.raises(FileNotFoundError, match="missing.plan"):
        T.load_engine(tmp_path / "missing.plan", trt=fake_trt())
    f = tmp_path / "m.onnx"
    f.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="could not parse m.onnx: \\['Unsupported operator FancyOp'\\]"):
        T.build_engine(f, tmp_path / "m.plan", trt=fake_trt(parse_ok=False))
    with pytest.raises(RuntimeError, match="failed to build"):
        T.build_engine(f, tmp_path / "m.plan", trt=fake_trt(build_ok=False))
    with pytest.raises(ValueError, match="workspace_bytes=5"):
        T.build_engine(f, tmp_path / "m.plan", workspace_bytes=5, trt=fake_trt())
    trt = fake_trt()
    engine = trt.Runtime(None).deserialize_cuda_engine(b"PLAN")
    with pytest.raises(ValueError, match="x is on cpu"):
        T.run_engine(engine, engine.create_execution_context(), torch.randn(2), trt=trt)
    with pytest.raises(TypeError, match="x=list"):
        T.run_engine(engine, engine.create_execution_context(), [1.0], trt=trt)


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
    monkeypatch.setattr(checkpoints, "DATA_DIR", d)
    monkeypatch.setattr(checkpoints, "MANIFEST", d / "MANIFEST.json")
    res = {"device": "GPU: test stand-in", "compile_s": None, "rows": [{"variant": "eager fp32", "batch": 1, "ms": 1.0}]}
    path = gpu.save_record(res, d / "gpu_recorded.json")
    entry = json.loads((d / "MANIFEST.json").read_text())["files"]["gpu_recorded.json"]
    assert entry["sha256"] == checkpoints.sha256(path) and "GPU: test stand-in" in entry["recipe"]
