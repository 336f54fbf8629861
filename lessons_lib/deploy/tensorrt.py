"""TensorRT 11 (strongly typed) build / serialise / deserialise / run -- guarded, and small.

Written against the TensorRT 11 Python API (NVIDIA's "Migrating from TensorRT 10.x to 11.x" guide and the
11.x Python API reference: ``Builder``, ``IOptimizationProfile``, ``IExecutionContext``): no
``EXPLICIT_BATCH`` / ``STRONGLY_TYPED`` flags (``create_network(0)``), no FP16/INT8 builder flags and
no calibrators -- the precision of the engine is the precision of the ONNX file (fp32, fp16, or
int8 through Q/DQ nodes). Memory and stream come from PyTorch (``data_ptr()``, a torch CUDA stream).

TensorRT's libraries come only from NVIDIA's own package index, so most machines (and this course's
CI) have no ``tensorrt``; :func:`tensorrt_available` says why and the lesson falls back to
onnxruntime. Every function takes ``trt=`` (the module) so that tests can pass a stand-in.
Document 000's steps map to: parse + optimise = :func:`build_engine` (with the optimisation profile that
a dynamic batch needs); serialise = the ``.plan`` file; deserialise = :func:`load_engine`; execution context
= ``engine.create_execution_context()``; inference = :func:`bind` + ``launch()`` (``execute_async_v3``).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .. import validate as V

_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
           "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}


def tensorrt_available() -> tuple[bool, str]:
    """``(True, "tensorrt 11.x on <GPU>")`` or ``(False, why not)``: the package must import, be
    version 11 or newer (this module uses the strongly typed API) and a CUDA GPU must be present.

    Returns:
        ``(usable, reason)``: a bool and one sentence for the lesson to print.
    """
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


def _input_profiles(network: Any, batch_range: tuple[int, int, int] | None) -> dict[str, tuple[tuple, tuple, tuple]]:
    """``{input: (min, opt, max)}`` for every network input with a dynamic (``-1``) dimension.

    TensorRT refuses to build a network with dynamic inputs unless an optimisation profile gives each of
    them a shape range (``IOptimizationProfile``); the exported ONNX files name their batch ``batch``, so
    every lesson model needs one. Only a dynamic *batch* (dimension 0) is filled from ``batch_range``.
    """
    ranges = {}
    for i in range(network.num_inputs):
        inp = network.get_input(i)
        shape = tuple(int(d) for d in inp.shape)
        if -1 not in shape:
            continue
        if -1 in shape[1:]:
            raise ValueError(f"input {inp.name!r} has shape {shape}: only a dynamic batch (dimension 0) is "
                             "supported here; export the other dimensions static")
        if batch_range is None:
            raise ValueError(f"input {inp.name!r} has a dynamic batch {shape}: TensorRT needs an optimisation "
                             "profile; pass batch_range=(min, opt, max)")
        lo, opt, hi = batch_range
        ranges[inp.name] = tuple((b,) + shape[1:] for b in (lo, opt, hi))
    return ranges


def _check_batch_range(batch_range: object) -> tuple[int, int, int] | None:
    if batch_range is None:
        return None
    b = V.sequence("batch_range", batch_range, lambda n, v: V.integer(n, v, 1), what="(min, opt, max) triple")
    if len(b) != 3 or not b[0] <= b[1] <= b[2]:
        raise ValueError(f"batch_range={batch_range!r} must be three ints min <= opt <= max")
    return b[0], b[1], b[2]


def build_engine(onnx_path: str | Path, plan_path: str | Path, *, batch_range: tuple[int, int, int] | None = None,
                 workspace_bytes: int = 1 << 30, timing_cache: str | Path | None = None, trt: Any = None) -> Path:
    """Parse ``onnx_path``, build a strongly typed engine, write the serialised plan to ``plan_path``.

    A network input with a dynamic batch gets one optimisation profile (``min / opt / max`` batch from
    ``batch_range``; TensorRT optimises its kernels for ``opt`` and accepts any batch in ``[min, max]``).
    ``timing_cache`` (a file, read if present and rewritten) keeps the tactic timings of earlier builds.

    Args:
        onnx_path: the ONNX file (fp32, fp16, or int8 through Q/DQ nodes).
        plan_path: where the serialised engine (``.plan``) is written; its folder is created.
        batch_range: ``(min, opt, max)`` batch sizes, ints ``1 <= min <= opt <= max``; required when an input's
            first dimension is dynamic, ignored otherwise.
        workspace_bytes: the builder's workspace pool limit (>= 1 MiB).
        timing_cache: ``None`` or a file path for TensorRT's timing cache.
        trt: the ``tensorrt`` module (``None``: import it, after :func:`tensorrt_available`); tests pass a stand-in.

    Returns:
        ``plan_path`` as a ``Path``.

    Raises ``FileNotFoundError`` for a missing ONNX file, ``ValueError`` for a dynamic input without
    ``batch_range``, and ``RuntimeError`` with the parser's errors or when the build fails.
    """
    V.path("onnx_path", onnx_path)
    V.path("plan_path", plan_path)
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX file {str(onnx_path)!r} does not exist")
    batch_range = _check_batch_range(batch_range)
    V.integer("workspace_bytes", workspace_bytes, 1 << 20)
    V.path("timing_cache", timing_cache, none_ok=True)
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
    ranges = _input_profiles(network, batch_range)
    if ranges:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in ranges.items():
            profile.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(profile) < 0:
            raise RuntimeError(f"TensorRT rejected the optimisation profile {ranges}")
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
    """Deserialise a plan: ``(ICudaEngine, IExecutionContext)``.

    Args:
        plan_path: a ``.plan`` file written by :func:`build_engine` (same TensorRT version and GPU).
        trt: the ``tensorrt`` module or a stand-in (``None``: import it).

    Returns:
        ``(engine, context)``; the context uses optimisation profile 0.
    """
    V.path("plan_path", plan_path)
    plan_path = Path(plan_path)
    if not plan_path.is_file():
        raise FileNotFoundError(f"engine plan {str(plan_path)!r} does not exist")
    trt = _trt(trt)
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan_path.read_bytes())
    if engine is None:
        raise RuntimeError(f"TensorRT could not deserialise {plan_path.name} (built by another version or GPU?)")
    return engine, engine.create_execution_context()


def io_tensors(engine: Any, *, trt: Any = None) -> tuple[list[tuple[str, torch.dtype]], list[tuple[str, torch.dtype]]]:
    """The engine's I/O tensors.

    Args:
        engine: an ``ICudaEngine``; trt: the ``tensorrt`` module or a stand-in.

    Returns:
        ``(inputs, outputs)``: lists of ``(name, torch dtype)`` in the engine's order.
    """
    trt = _trt(trt)
    ins, outs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dt = _DTYPES[engine.get_tensor_dtype(name).name]
        (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append((name, dt))
    return ins, outs


def bind(engine: Any, context: Any, x: torch.Tensor, *, stream: Any = None, trt: Any = None):
    """Prepare one inference of a one-input, one-output engine and return ``launch()``, which only
    enqueues ``execute_async_v3`` on ``stream`` and waits for it.

    Everything that is not the inference happens here, once: casting ``x`` to the engine's input dtype,
    ``set_input_shape`` (must lie in the engine's optimisation profile), allocating the output, and
    ``set_tensor_address`` for both. So timing ``launch`` times the engine, not allocations.

    Args:
        engine: an ``ICudaEngine`` (from :func:`load_engine`); context: its ``IExecutionContext``.
        x: input ``Tensor[N, C, H, W]`` on the GPU (cast to the engine's input dtype once, here).
        stream: a ``torch.cuda.Stream`` (``None``: a new dedicated stream) or an object with ``cuda_stream``
            (the raw handle) and ``synchronize()``.
        trt: the ``tensorrt`` module or a stand-in (``None``: import it).

    Returns:
        ``launch() -> Tensor``: runs the engine and returns the (reused) output tensor.
    """
    V.tensor("x", x)
    if stream is None and not x.is_cuda:
        raise ValueError(f"x is on {x.device}: a TensorRT engine reads CUDA memory, move it with x.cuda()")
    trt = _trt(trt)
    (ins, outs) = io_tensors(engine, trt=trt)
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"bind handles one input and one output; the engine has {ins} -> {outs}")
    (in_name, in_dt), (out_name, out_dt) = ins[0], outs[0]
    x = x.to(in_dt).contiguous()
    if not context.set_input_shape(in_name, tuple(x.shape)):
        raise ValueError(f"x has shape {tuple(x.shape)}, outside the engine's optimisation profile for "
                         f"{in_name!r} (min, opt, max = {engine.get_tensor_profile_shape(in_name, 0)})")
    out = torch.empty(tuple(context.get_tensor_shape(out_name)), dtype=out_dt, device=x.device)
    context.set_tensor_address(in_name, x.data_ptr())
    context.set_tensor_address(out_name, out.data_ptr())
    stream = stream if stream is not None else torch.cuda.Stream(device=x.device)
    handle = stream.cuda_stream

    def launch() -> torch.Tensor:
        if not context.execute_async_v3(handle):
            raise RuntimeError("execute_async_v3 reported a failure")
        stream.synchronize()
        return out

    launch.input = x  # keep the (cast) input alive as long as the addresses point at it
    return launch


def run_engine(engine: Any, context: Any, x: torch.Tensor, *, stream: Any = None, trt: Any = None) -> torch.Tensor:
    """Run a one-input, one-output engine once on ``x``: :func:`bind` then ``launch()``.

    Args:
        engine, context, x, stream, trt: as in :func:`bind`.

    Returns:
        The output tensor (on ``x``'s device, the engine's output dtype), e.g. logits ``Tensor[N, classes]``.
    """
    return bind(engine, context, x, stream=stream, trt=trt)()


def engine_layers(engine: Any, context: Any = None, *, trt: Any = None) -> list[dict]:
    """The engine inspector's layer list (JSON): one dict per *built* layer -- fused ONNX nodes appear
    as one layer whose name joins theirs (``"Conv_0 + Relu_1"``). Plain names become ``{"Name": ...}``.

    Args:
        engine: an ``ICudaEngine`` built with ``ProfilingVerbosity.DETAILED``.
        context: its execution context (resolves dynamic shapes in the listing) or ``None``.
        trt: the ``tensorrt`` module or a stand-in.

    Returns:
        One dict per built layer (at least ``"Name"``).
    """
    trt = _trt(trt)
    inspector = engine.create_engine_inspector()
    if context is not None:
        inspector.execution_context = context
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    return [layer if isinstance(layer, dict) else {"Name": str(layer)} for layer in info.get("Layers", [])]


def build_and_run(onnx_files: dict[str, str | Path], x: torch.Tensor, out_dir: str | Path, *,
                  batch_range: tuple[int, int, int] | None = None, repeats: int = 50, stream: Any = None,
                  trt: Any = None) -> dict[str, dict]:
    """For each ``{label: onnx file}`` (fp32 / fp16 / Q/DQ int8): build, serialise, deserialise, run on
    ``x`` and time ``launch()`` of :func:`bind` (buffers bound once, outside the timed call).

    Args:
        onnx_files: ``{label: path}`` of ONNX files with one input and one output.
        x: input ``Tensor[N, C, H, W]`` on the GPU.
        out_dir: folder for the ``.plan`` files and the timing cache.
        batch_range: the optimisation profile's ``(min, opt, max)`` batch (``None``: ``(1, N, N)``).
        repeats: timed launches per engine (>= 1).
        stream: as in :func:`bind` (``None``: one dedicated CUDA stream for all engines).
        trt: the ``tensorrt`` module or a stand-in.

    Returns:
        ``{label: {"plan_bytes", "layers", "ms", "output"}}``: plan size, the inspector's layer names, the
        median milliseconds per launch and the output (on the CPU, float32).
    """
    from ..profile import measure_latency

    V.mapping("onnx_files", onnx_files, non_empty=True)
    V.tensor("x", x, layout="Tensor[N, C, H, W]")
    V.path("out_dir", out_dir)
    V.integer("repeats", repeats, 1)
    batch_range = _check_batch_range(batch_range) or (1, len(x), len(x))
    trt = _trt(trt)
    out_dir = Path(out_dir)
    if stream is None:
        stream = torch.cuda.Stream(device=x.device)
    results = {}
    for label, path in onnx_files.items():
        plan = build_engine(path, out_dir / f"{Path(path).stem}.plan", batch_range=batch_range,
                            timing_cache=out_dir / "timing.cache", trt=trt)
        engine, context = load_engine(plan, trt=trt)
        launch = bind(engine, context, x, stream=stream, trt=trt)
        y = launch().clone()
        lat = measure_latency(launch, (), warmup=5, repeats=repeats)
        results[label] = {"plan_bytes": plan.stat().st_size, "layers": [l.get("Name", "?") for l in
                                                                         engine_layers(engine, context, trt=trt)],
                          "ms": lat.median_ms, "output": y.float().cpu()}
    return results
