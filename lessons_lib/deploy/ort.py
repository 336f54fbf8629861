"""onnxruntime as the engine we can run everywhere: optimisation levels, serialise / deserialise, run.

The analogy with document 000's TensorRT workflow:

=====================================  ============================================================
TensorRT                                onnxruntime (here)
=====================================  ============================================================
parser + builder optimise the graph    ``InferenceSession(model, SessionOptions)`` optimises it at
                                       ``graph_optimization_level`` (:data:`ORT_LEVELS`)
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

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .. import validate as V
from .onnx_export import as_model

ORT_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
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

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).
        level: a key of :data:`ORT_LEVELS` (``"ORT_DISABLE_ALL"``, ``"ORT_ENABLE_BASIC"``, ``"ORT_ENABLE_EXTENDED"``
            or ``"ORT_ENABLE_ALL"``).
        optimized_path: where onnxruntime writes the graph it optimised (the serialised "engine"; parent folders
            are created), or ``None``.
        threads: intra-op threads, an int >= 1 (``None`` = onnxruntime's default).

    Returns:
        ``onnxruntime.InferenceSession`` on the ``CPUExecutionProvider``.
    """
    V.choice("level", level, ORT_LEVELS)
    V.path("optimized_path", optimized_path, none_ok=True)
    threads = V.integer("threads", threads, 1, none_ok=True)
    data = _model_bytes(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = ORT_LEVELS[level]
    so.log_severity_level = 3  # the NCHWc "hardware specific" warning on save is explained in the lesson
    if threads is not None:
        so.intra_op_num_threads = threads
    if optimized_path is not None:
        Path(optimized_path).parent.mkdir(parents=True, exist_ok=True)
        so.optimized_model_filepath = os.fspath(optimized_path)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def load_session(path: str | Path, *, threads: int | None = None) -> ort.InferenceSession:
    """Deserialise: a session from a file that onnxruntime already optimised (no optimisation again).

    Args:
        path: the .onnx file, e.g. written by ``make_session(..., optimized_path=path)``.
        threads: intra-op threads, an int >= 1 (``None`` = onnxruntime's default).

    Returns:
        ``onnxruntime.InferenceSession`` built at ``"ORT_DISABLE_ALL"``.
    """
    V.path("path", path)
    return make_session(path, "ORT_DISABLE_ALL", threads=threads)


def optimized_graph(model: onnx.ModelProto | str | Path, level: str, path: str | Path) -> onnx.ModelProto:
    """Build a session at ``level``, save its optimised graph to ``path`` and return it loaded.

    Args:
        model, level: as in :func:`make_session`.
        path: where the optimised graph is written (parent folders are created).

    Returns:
        ``onnx.ModelProto``: the optimised graph read back from ``path``.
    """
    make_session(model, level, optimized_path=path)
    return onnx.load(os.fspath(path))


def _numpy_input(name: str, x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return V.instance(name, x, np.ndarray, "a torch.Tensor or a numpy.ndarray")


def _session(session: object) -> ort.InferenceSession:
    return V.instance("session", session, ort.InferenceSession, "an onnxruntime.InferenceSession")


def run(session: ort.InferenceSession, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """The first output of ``session`` for its single input ``x`` (converted to the input's dtype).

    Args:
        session: an ``onnxruntime.InferenceSession`` with one input.
        x: ``Tensor[N, ...]`` or ``ndarray`` matching that input's shape.

    Returns:
        ``ndarray``: the first output, e.g. logits ``[N, classes]``.
    """
    _session(session)
    arr = _numpy_input("x", x)
    inp = session.get_inputs()[0]
    want = np.float16 if inp.type == "tensor(float16)" else np.float32
    return session.run(None, {inp.name: np.ascontiguousarray(arr, dtype=want)})[0]


def intermediate_outputs(model: onnx.ModelProto, names: Sequence[str],
                         batches: Iterable[torch.Tensor | np.ndarray]) -> Iterable[dict[str, np.ndarray]]:
    """Yield ``{tensor name: value}`` for each batch, by making ``names`` extra graph outputs
    (how onnxruntime's calibrators read activations). Runs unoptimised so every name survives.

    Arguments are checked when this is called, before the first batch is read.

    Args:
        model: float ONNX model (``onnx.ModelProto`` or a path to an .onnx file).
        names: non-empty list of tensor names (graph inputs, graph outputs or node outputs with an inferred type).
        batches: iterable of ``Tensor[N, C, H, W]`` or ``ndarray`` inputs (fed as float32), read lazily.

    Returns:
        A generator of one ``{name: ndarray}`` per batch, holding the tensors of ``names``.
    """
    names = V.sequence("names", names, V.string)
    V.iterable("batches", batches)
    m = onnx.shape_inference.infer_shapes(as_model(model))
    known = {vi.name: vi for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"names={missing!r} are not tensors of the graph (known: inputs, outputs and node outputs)")
    return _intermediate_outputs(m, known, names, batches)


def _intermediate_outputs(m: onnx.ModelProto, known: dict, names: list[str],
                          batches: Iterable[torch.Tensor | np.ndarray]) -> Iterable[dict[str, np.ndarray]]:
    extra = onnx.ModelProto.FromString(m.SerializeToString())
    have = {o.name for o in extra.graph.output}
    extra.graph.output.extend([known[n] for n in names if n not in have])
    sess = make_session(extra, "ORT_DISABLE_ALL")
    out_names = [o.name for o in sess.get_outputs()]
    in_name = sess.get_inputs()[0].name
    for i, b in enumerate(batches):
        arr = _numpy_input(f"batches[{i}]", b)
        vals = sess.run(None, {in_name: arr.astype(np.float32)})
        yield {n: v for n, v in zip(out_names, vals) if n in names}


def run_batched(session: ort.InferenceSession, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """:func:`run` over all of ``x`` in batches of ``batch_size``: the logits ``[N, classes]`` as one array
    (the onnxruntime counterpart of ``lessons_lib.train.predict``).

    Args:
        session: an ``onnxruntime.InferenceSession`` with one input.
        x: ``Tensor[N, ...]`` or ``ndarray`` of inputs (``N >= 1``).
        batch_size: inputs per ``session.run`` call, an int >= 1.

    Returns:
        ``ndarray[N, classes]``: the first output of every batch, concatenated.
    """
    _session(session)
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        _numpy_input("x", x)
    batch_size = V.integer("batch_size", batch_size, 1)
    if len(x) == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}; it must hold at least one input")
    return np.concatenate([run(session, x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(session: ort.InferenceSession, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``session`` on ``(x, y)``.

    Args:
        session: an ``onnxruntime.InferenceSession`` returning logits.
        x: ``Tensor[N, C, H, W]`` inputs; y: ``Tensor[N]`` integer labels.
        batch_size: images per ``session.run`` call.

    Returns:
        The fraction of ``argmax(logits) == y``, a float in [0, 1].
    """
    _numpy_input("x", x)
    labels = _numpy_input("y", y)
    if labels.ndim != 1 or len(labels) != len(x):
        raise ValueError(f"y has shape {tuple(labels.shape)}; it must be [N] with N = len(x) = {len(x)}")
    logits = run_batched(session, x, batch_size)
    return float((logits.argmax(1) == labels).mean())


def batch_sweep(sessions: Mapping[str, ort.InferenceSession], sample: torch.Tensor,
                batch_sizes: Sequence[int], *, repeats: int = 10, warmup: int = 2) -> dict[str, dict[int, float]]:
    """Median latency in ms of each session per batch size, candidates timed side by side.

    Args:
        sessions: ``{name: onnxruntime.InferenceSession}``, at least one.
        sample: ``Tensor[M, ...]`` (or ``ndarray``) with ``M >= max(batch_sizes)``; batch ``b`` uses ``sample[:b]``.
        batch_sizes: non-empty sequence of ints >= 1.
        repeats: timed rounds per batch size, an int >= 1 (:func:`lessons_lib.profile.measure_side_by_side`).
        warmup: untimed rounds before them, an int >= 0.

    Returns:
        ``{session name: {batch size: median latency in ms}}``. Throughput is ``b / latency``.
    """
    from ..profile import measure_side_by_side

    V.mapping("sessions", sessions, non_empty=True)
    for name, sess in sessions.items():
        V.instance(f"sessions[{name!r}]", sess, ort.InferenceSession, "an onnxruntime.InferenceSession")
    _numpy_input("sample", sample)
    batch_sizes = V.sequence("batch_sizes", batch_sizes, lambda n, v: V.integer(n, v, 1))
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
