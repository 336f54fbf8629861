"""PyTorch -> ONNX: export, clean up, check, and read the graph (document 000: the parser's input).

Document 000 starts TensorRT's workflow with a trained FP32 model handed to a parser as ONNX. What
torch 2.14 does when you export (measured with torch 2.14; see PyTorch's ``torch.onnx`` documentation):

* ``torch.onnx.export(..., dynamo=True)`` (the default since 2.9) traces with ``torch.export`` and
  translates every aten op with onnxscript. With ``optimize=False`` the raw graph keeps
  ``BatchNormalization`` but also helper ops (a zero bias built at run time by
  ``Shape -> Expand -> CastLike`` for every bias-free conv). Its default ``optimize=True`` runs
  onnxscript's optimizer, which folds constants **and folds BatchNorm into the conv weights**.
* The legacy TorchScript exporter (``dynamo=False``, deprecated) folds BatchNorm in eval mode when
  ``do_constant_folding=True`` (its default) and keeps it with ``do_constant_folding=False``.

:func:`export_onnx` therefore exports once, unoptimised, and :func:`simplify` derives the other
levels without re-tracing: ``"raw"`` (as exported), ``"constants"`` (constant folding only:
``BatchNormalization`` stays, so an engine's Conv+BN fusion can be shown) and ``"full"`` (what
``optimize=True`` gives: BN folded).
"""
from __future__ import annotations

import collections
import io
import re
import warnings
from pathlib import Path
import onnx
import torch
from torch import nn

from .. import validate as V

EXPORT_LEVELS = ("raw", "constants", "full")
EXPORTERS = ("dynamo", "torchscript")


def _check_level(level: object) -> str:
    return V.choice("level", level, EXPORT_LEVELS)


def as_model(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    """An ``onnx.ModelProto`` from a proto (returned as is) or a file path (loaded).

    Args:
        model: an ``onnx.ModelProto``, or a path (``str`` or ``pathlib.Path``) to an existing .onnx file.

    Returns:
        ``onnx.ModelProto``: ``model`` itself (not a copy), or the model loaded from the file.

    Raises:
        TypeError: ``model`` is neither a proto nor a path.
        FileNotFoundError: the path is not a file.
    """
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {str(model)!r} does not exist")
        return onnx.load(str(path))
    raise TypeError(f"model={type(model).__name__} must be an onnx.ModelProto or a path to an .onnx file")


def simplify(model: onnx.ModelProto, level: str = "full") -> onnx.ModelProto:
    """A copy of ``model`` cleaned up by onnxscript's optimizer at ``level`` (see the module doc).

    ``"constants"`` = ``onnxscript.optimizer.fold_constants`` + removal of unused nodes;
    ``"full"`` = ``onnxscript.optimizer.optimize`` (the pass ``torch.onnx.export(optimize=True)`` runs).

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).
        level: one of :data:`EXPORT_LEVELS`: ``"raw"`` (an unchanged copy), ``"constants"`` or ``"full"``.

    Returns:
        ``onnx.ModelProto``: the cleaned-up copy.
    """
    import onnx_ir as ir
    import onnxscript.optimizer as oo

    _check_level(level)
    model = as_model(model)
    if level == "raw":
        return onnx.ModelProto.FromString(model.SerializeToString())
    m = ir.from_proto(model)
    if level == "constants":
        oo.fold_constants(m)
        oo.remove_unused_nodes(m)
    else:
        oo.optimize(m)
    return ir.to_proto(m)


def check(model: onnx.ModelProto) -> onnx.ModelProto:
    """``onnx.checker`` (full check) then shape inference; returns the model with inferred shapes.

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``onnx.ModelProto``: a copy with ``value_info`` filled in by strict, type-checking shape inference.
    """
    model = as_model(model)
    onnx.checker.check_model(model, full_check=True)
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path | None = None, *,
                level: str = "full", exporter: str = "dynamo", dynamic_batch: bool = True,
                input_name: str = "x", output_name: str = "logits") -> onnx.ModelProto:
    """Export ``model`` (eval mode, one input ``Tensor[N, C, H, W]``, one output) to ONNX opset 20.

    ``exporter="torchscript"`` uses the deprecated legacy exporter (``do_constant_folding = level != "raw"``,
    so there ``"constants"`` folds BatchNorm like ``"full"``; its deprecation warnings are silenced here).
    The model is checked (:func:`check`) and, if ``path`` is given, saved there.
    Raises ``TypeError`` for a non-module or non-tensor input and ``ValueError`` if tracing fails.

    Args:
        model: the ``nn.Module`` to export; put in eval mode for the export, its train / eval mode restored after.
        example_input: floating-point example input ``Tensor[N, C, H, W]`` (2 to 5 dimensions are accepted).
        path: where to save the .onnx file (parent folders are created), or ``None`` to save nothing.
        level: how much the graph is cleaned up, one of :data:`EXPORT_LEVELS` (``"raw"``, ``"constants"``,
            ``"full"``).
        exporter: one of :data:`EXPORTERS`: ``"dynamo"`` (``torch.export`` + onnxscript) or ``"torchscript"``.
        dynamic_batch: if True, the first input dimension is dynamic, named ``batch``.
        input_name, output_name: names of the graph's input and output (non-empty strings).

    Returns:
        ``onnx.ModelProto``: the checked model with inferred shapes.
    """
    V.module("model", model)
    V.tensor("example_input", example_input, dtype="floating", ndim=(2, 3, 4, 5))
    V.path("path", path, none_ok=True)
    _check_level(level)
    V.choice("exporter", exporter, EXPORTERS)
    V.boolean("dynamic_batch", dynamic_batch)
    V.string("input_name", input_name, non_empty=True)
    V.string("output_name", output_name, non_empty=True)
    was_training = model.training
    model.eval()
    try:
        if exporter == "dynamo":
            dyn = ({0: "batch"},) if dynamic_batch else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prog = torch.onnx.export(model, (example_input,), dynamo=True, optimize=False, verbose=False,
                                         dynamic_shapes=dyn, input_names=[input_name], output_names=[output_name])
            proto = simplify(prog.model_proto, level)
        else:
            buf = io.BytesIO()
            axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example_input,), buf, dynamo=False, do_constant_folding=level != "raw",
                                  input_names=[input_name], output_names=[output_name], dynamic_axes=axes,
                                  opset_version=20)
            proto = onnx.load_from_string(buf.getvalue())
    except Exception as err:  # torch.export / onnxscript raise many types; name the model
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()
        raise ValueError(f"model={type(model).__name__} could not be exported to ONNX "
                         f"({type(err).__name__}: {first[0][:200] if first else ''})") from err
    finally:
        model.train(was_training)
    proto = check(proto)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(path))
    return proto


# ------------------------------------------------------------------------------------ reading
def op_name(node: onnx.NodeProto) -> str:
    """``Conv`` for the default domain, ``domain-suffix.Op`` otherwise (``nchwc.Conv``, ``microsoft.FusedConv``).

    Args:
        node: an ``onnx.NodeProto``.

    Returns:
        ``str``: the op name.
    """
    V.instance("node", node, onnx.NodeProto, "an onnx.NodeProto")
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain.split('.')[-1]}.{node.op_type}"


def node_counts(model: onnx.ModelProto | str | Path) -> dict[str, int]:
    """``{op: count}`` over the graph's nodes, sorted by op name (``Constant`` nodes included).

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``dict[str, int]``: op name (as :func:`op_name` writes it) -> number of nodes.
    """
    m = as_model(model)
    return dict(sorted(collections.Counter(op_name(n) for n in m.graph.node).items()))


def _shape(vi: onnx.ValueInfoProto) -> str:
    t = vi.type.tensor_type
    dims = [d.dim_param or str(d.dim_value) for d in t.shape.dim]
    return f"{onnx.TensorProto.DataType.Name(t.elem_type).lower()}[{', '.join(dims)}]"


def node_table(model: onnx.ModelProto | str | Path, max_rows: int | None = 40) -> str:
    """One line per node: op, inputs (initializers marked ``*``), output with its inferred type/shape.

    Args:
        model: an ``onnx.ModelProto`` or a path to an .onnx file.
        max_rows: at most this many nodes are listed (``None``: all).

    Returns:
        The table as one string.
    """
    max_rows = V.integer("max_rows", max_rows, 0, none_ok=True)
    m = as_model(model)
    shapes = {vi.name: _shape(vi) for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    inits = {i.name for i in m.graph.initializer}
    lines = [f"{'#':>3}  {'op':<18}{'inputs (* = weights)':<46}output"]
    nodes = list(m.graph.node)
    for i, n in enumerate(nodes if max_rows is None else nodes[:max_rows]):
        ins = ", ".join(f"{x}*" if x in inits else x for x in n.input if x)
        out = ", ".join(f"{o}: {shapes.get(o, '?')}" for o in n.output)
        lines.append(f"{i:>3}  {op_name(n):<18}{ins[:45]:<46}{out}")
    if max_rows is not None and len(nodes) > max_rows:
        lines.append(f"... {len(nodes) - max_rows} more nodes")
    return "\n".join(lines)


def io_signature(model: onnx.ModelProto | str | Path) -> tuple[list[str], list[str]]:
    """``(["x: float[batch, 3, 32, 32]"], ["logits: float[batch, 10]"])``.

    Args:
        model: ONNX model (``onnx.ModelProto`` or a path to an .onnx file).

    Returns:
        ``(inputs, outputs)``: two lists of ``"name: dtype[dims]"`` strings, one per graph input / output
        (symbolic dimensions by name).
    """
    m = as_model(model)
    return ([f"{i.name}: {_shape(i)}" for i in m.graph.input],
            [f"{o.name}: {_shape(o)}" for o in m.graph.output])
