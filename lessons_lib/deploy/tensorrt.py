"""TensorRT 11 (strongly typed) build / serialise / deserialise / run -- guarded, and small.

Written against the TensorRT 11 Python API (``research/deploy-toolchain.md`` §1): no
``EXPLICIT_BATCH`` / ``STRONGLY_TYPED`` flags (``create_network(0)``), no FP16/INT8 builder flags and
no calibrators -- the precision of the engine is the precision of the ONNX file (fp32, fp16, or
int8 through Q/DQ nodes). Memory and stream come from PyTorch (``data_ptr()``, a torch CUDA stream).

TensorRT's libraries come only from NVIDIA's own package index, so most machines (and this course's
CI) have no ``tensorrt``; :func:`tensorrt_available` says why and the lesson falls back to
onnxruntime. Every function takes ``trt=`` (the module) so that tests can pass a stand-in.
Document 000's steps map to: parse + optimise = :func:`build_engine`; serialise = the ``.plan`` file;
deserialise = :func:`load_engine`; execution context = ``engine.create_execution_context()``.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
           "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}


def tensorrt_available() -> tuple[bool, str]:
    """``(True, "tensorrt 11.x on <GPU>")`` or ``(False, why not)``: the package must import, be
    version 11 or newer (this module uses the strongly typed API) and a CUDA GPU must be present."""
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError as err:
        return False, (f"the tensorrt package is not installed ({err.__class__.__name__}); its libraries come "
                       "only from NVIDIA's package index (pip install --extra-index-url https://pypi.nvidia.com tensorrt)")
    version = str(getattr(trt, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 11:
        return False, f"tensorrt {version} found; this module targets the TensorRT 11 strongly typed API"
    if not torch.cuda.is_available():
        return False, f"tensorrt {version} imports but no CUDA GPU is available to build or run engines"
    return True, f"tensorrt {version} on {torch.cuda.get_device_name(0)}"


def _trt(trt: ModuleType | Any | None):
    if trt is not None:
        return trt
    ok, why = tensorrt_available()
    if not ok:
        raise RuntimeError(f"TensorRT cannot be used here: {why}")
    import tensorrt
    return tensorrt


def build_engine(onnx_path: str | Path, plan_path: str | Path, *, workspace_bytes: int = 1 << 30,
                 timing_cache: str | Path | None = None, trt: Any = None) -> Path:
    """Parse ``onnx_path``, build a strongly typed engine, write the serialised plan to ``plan_path``.

    ``timing_cache`` (a file, read if present and rewritten) keeps the tactic timings of earlier
    builds. Raises ``FileNotFoundError`` for a missing ONNX file and ``RuntimeError`` with the parser's
    errors or when the build fails.
    """
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX file {str(onnx_path)!r} does not exist")
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, int) or workspace_bytes < 1 << 20:
        raise ValueError(f"workspace_bytes={workspace_bytes!r} must be an int >= 1 MiB")
    trt = _trt(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)          # TensorRT 11: always strongly typed, no flags
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer details for the inspector
    cache_file = Path(timing_cache) if timing_cache is not None else None
    if cache_file is not None:
        old = cache_file.read_bytes() if cache_file.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(old), False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path.name} (see the log above)")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(plan))
    if cache_file is not None:
        cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    return plan_path


def load_engine(plan_path: str | Path, *, trt: Any = None) -> tuple[Any, Any]:
    """Deserialise a plan: ``(ICudaEngine, IExecutionContext)``."""
    plan_path = Path(plan_path)
    if not plan_path.is_file():
        raise FileNotFoundError(f"engine plan {str(plan_path)!r} does not exist")
    trt = _trt(trt)
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan_path.read_bytes())
    if engine is None:
        raise RuntimeError(f"TensorRT could not deserialise {plan_path.name} (built by another version or GPU?)")
    return engine, engine.create_execution_context()


def io_tensors(engine: Any, *, trt: Any = None) -> tuple[list[tuple[str, torch.dtype]], list[tuple[str, torch.dtype]]]:
    """``(inputs, outputs)`` as lists of ``(name, torch dtype)``."""
    trt = _trt(trt)
    ins, outs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dt = _DTYPES[engine.get_tensor_dtype(name).name]
        (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append((name, dt))
    return ins, outs


def run_engine(engine: Any, context: Any, x: torch.Tensor, *, stream: Any = None, trt: Any = None) -> torch.Tensor:
    """Run a one-input, one-output engine on ``x`` (a CUDA tensor; cast to the engine's input dtype):
    set the input shape, point the context at torch-allocated buffers, ``execute_async_v3`` on a torch
    stream, synchronise, return the output tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x={type(x).__name__} must be a torch.Tensor")
    if stream is None and not x.is_cuda:
        raise ValueError(f"x is on {x.device}: a TensorRT engine reads CUDA memory, move it with x.cuda()")
    trt = _trt(trt)
    (ins, outs) = io_tensors(engine, trt=trt)
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"run_engine handles one input and one output; the engine has {ins} -> {outs}")
    (in_name, in_dt), (out_name, out_dt) = ins[0], outs[0]
    x = x.to(in_dt).contiguous()
    context.set_input_shape(in_name, tuple(x.shape))
    out = torch.empty(tuple(context.get_tensor_shape(out_name)), dtype=out_dt, device=x.device)
    context.set_tensor_address(in_name, x.data_ptr())
    context.set_tensor_address(out_name, out.data_ptr())
    stream = stream if stream is not None else torch.cuda.current_stream()
    if not context.execute_async_v3(stream.cuda_stream):
        raise RuntimeError("execute_async_v3 reported a failure")
    stream.synchronize()
    return out


def engine_layers(engine: Any, context: Any = None, *, trt: Any = None) -> list[dict]:
    """The engine inspector's layer list (JSON): one dict per *built* layer -- fused ONNX nodes appear
    as one layer whose name joins theirs (``"Conv_0 + Relu_1"``). Plain names become ``{"Name": ...}``."""
    trt = _trt(trt)
    inspector = engine.create_engine_inspector()
    if context is not None:
        inspector.execution_context = context
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    return [layer if isinstance(layer, dict) else {"Name": str(layer)} for layer in info.get("Layers", [])]


def build_and_run(onnx_files: dict[str, str | Path], x: torch.Tensor, out_dir: str | Path, *,
                  repeats: int = 50, trt: Any = None) -> dict[str, dict]:
    """For each ``{label: onnx file}`` (fp32 / fp16 / Q/DQ int8): build, serialise, deserialise, run on
    ``x`` and time. Returns ``{label: {"plan_bytes", "layers", "ms", "output"}}`` (``output`` on CPU)."""
    from ..profile import measure_latency

    trt = _trt(trt)
    out_dir = Path(out_dir)
    results = {}
    for label, path in onnx_files.items():
        plan = build_engine(path, out_dir / f"{Path(path).stem}.plan", timing_cache=out_dir / "timing.cache", trt=trt)
        engine, context = load_engine(plan, trt=trt)
        y = run_engine(engine, context, x, trt=trt)
        lat = measure_latency(lambda: run_engine(engine, context, x, trt=trt), (), warmup=5, repeats=repeats)
        results[label] = {"plan_bytes": plan.stat().st_size, "layers": [l.get("Name", "?") for l in
                                                                         engine_layers(engine, context, trt=trt)],
                          "ms": lat.median_ms, "output": y.float().cpu()}
    return results
