"""onnxruntime as the engine we can run everywhere: optimisation levels, serialise / deserialise, run.

The analogy with document 000's TensorRT workflow:

=====================================  ============================================================
TensorRT                                onnxruntime (here)
=====================================  ============================================================
parser + builder optimise the graph    ``InferenceSession(model, SessionOptions)`` optimises it at
                                       ``graph_optimization_level`` (:data:`LEVELS`)
``ICudaEngine`` (optimised, immutable)  the ``InferenceSession`` object
serialise the engine to a file         ``SessionOptions.optimized_model_filepath`` writes the
                                       optimised graph; loading it back needs no re-optimisation
``IExecutionContext`` (per-run state)   one ``session.run`` call (ORT allocates per-run buffers;
                                       ``RunOptions`` carries per-run settings)
=====================================  ============================================================

Levels (onnxruntime docs, checked here): BASIC = constant folding, redundant-node elimination,
Conv+BatchNorm / Conv+Add / Conv+Mul fusion; EXTENDED adds Conv+activation fusion (``FusedConv``) and
Q/DQ -> ``QLinearConv`` rewrites; ALL adds the hardware-specific NCHWc layout (``nchwc.Conv`` +
``ReorderInput/Output``), which is why a model saved at ALL only suits the machine that wrote it.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .onnx_export import as_model

LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "ORT_DISABLE_ALL": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "ORT_ENABLE_BASIC": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "ORT_ENABLE_EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "ORT_ENABLE_ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _model_bytes(model: onnx.ModelProto | str | Path) -> bytes:
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {str(model)!r} does not exist")
        return path.read_bytes()
    return as_model(model).SerializeToString()


def make_session(model: onnx.ModelProto | str | Path, level: str = "ORT_ENABLE_ALL", *,
                 optimized_path: str | Path | None = None, threads: int | None = None) -> ort.InferenceSession:
    """A CPU ``InferenceSession`` ("the engine") for ``model`` (a proto or an .onnx path).

    ``level``: a key of :data:`LEVELS`. ``optimized_path``: where onnxruntime writes the graph it
    optimised (the serialised "engine"). ``threads``: intra-op threads (``None`` = onnxruntime's default).
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r} must be one of {list(LEVELS)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r} must be None or an int >= 1")
    data = _model_bytes(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.log_severity_level = 3  # the NCHWc "hardware specific" warning on save is explained in the lesson
    if threads is not None:
        so.intra_op_num_threads = threads
    if optimized_path is not None:
        Path(optimized_path).parent.mkdir(parents=True, exist_ok=True)
        so.optimized_model_filepath = os.fspath(optimized_path)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def load_session(path: str | Path, *, threads: int | None = None) -> ort.InferenceSession:
    """Deserialise: a session from a file that onnxruntime already optimised (no optimisation again)."""
    return make_session(path, "ORT_DISABLE_ALL", threads=threads)


def optimized_graph(model: onnx.ModelProto | str | Path, level: str, path: str | Path) -> onnx.ModelProto:
    """Build a session at ``level``, save its optimised graph to ``path`` and return it loaded."""
    make_session(model, level, optimized_path=path)
    return onnx.load(os.fspath(path))


def run(session: ort.InferenceSession, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """The first output of ``session`` for its single input ``x`` (converted to the input's dtype)."""
    if not isinstance(session, ort.InferenceSession):
        raise TypeError(f"session={type(session).__name__} must be an onnxruntime.InferenceSession")
    inp = session.get_inputs()[0]
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    want = np.float16 if inp.type == "tensor(float16)" else np.float32
    return session.run(None, {inp.name: np.ascontiguousarray(arr, dtype=want)})[0]


def intermediate_outputs(model: onnx.ModelProto, names: Sequence[str],
                         batches: Iterable[torch.Tensor | np.ndarray]) -> Iterable[dict[str, np.ndarray]]:
    """Yield ``{tensor name: value}`` for each batch, by making ``names`` extra graph outputs
    (how onnxruntime's calibrators read activations). Runs unoptimised so every name survives."""
    m = onnx.shape_inference.infer_shapes(as_model(model))
    known = {vi.name: vi for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"tensor names {missing} are not in the graph (known: inputs, outputs and node outputs)")
    extra = onnx.ModelProto.FromString(m.SerializeToString())
    have = {o.name for o in extra.graph.output}
    extra.graph.output.extend([known[n] for n in names if n not in have])
    sess = make_session(extra, "ORT_DISABLE_ALL")
    out_names = [o.name for o in sess.get_outputs()]
    in_name = sess.get_inputs()[0].name
    for b in batches:
        arr = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
        vals = sess.run(None, {in_name: arr.astype(np.float32)})
        yield {n: v for n, v in zip(out_names, vals) if n in names}


def predict(session: ort.InferenceSession, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Logits for all of ``x`` in batches."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
    return np.concatenate([run(session, x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(session: ort.InferenceSession, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``session`` on ``(x, y)``."""
    logits = predict(session, x, batch_size)
    return float((logits.argmax(1) == y.cpu().numpy()).mean())


def batch_sweep(sessions: Mapping[str, ort.InferenceSession], sample: torch.Tensor,
                batch_sizes: Sequence[int], *, repeats: int = 10, warmup: int = 2) -> dict[str, dict[int, float]]:
    """Median latency in ms of each session per batch size, candidates timed side by side.

    ``sample``: ``Tensor[M, ...]`` with ``M >= max(batch_sizes)``; batch ``b`` uses ``sample[:b]``.
    Throughput is ``b / latency``.
    """
    from ..profile import measure_side_by_side

    if not batch_sizes or any(isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1
                              for b in batch_sizes):
        raise ValueError(f"batch_sizes={batch_sizes!r} must be a non-empty list of ints >= 1")
    if max(batch_sizes) > len(sample):
        raise ValueError(f"max(batch_sizes)={max(batch_sizes)} exceeds the sample size {len(sample)}")
    out: dict[str, dict[int, float]] = {name: {} for name in sessions}
    for b in batch_sizes:
        xb = sample[:b]
        fns = {name: (lambda s=s: run(s, xb)) for name, s in sessions.items()}
        lat = measure_side_by_side(fns, (), warmup=warmup, repeats=repeats)
        for name in sessions:
            out[name][int(b)] = lat[name].median_ms
    return out
