"""One error contract for the public API of lessons_lib's reusable core (walked by introspection).

For every core module (``lessons_lib/**``, minus :data:`OUT_OF_SCOPE`) the walk takes the callables of its
``__all__`` (else the public functions and classes *defined* in it, not imported ones) and, for every
parameter, calls the callable with valid arguments except that one, which gets

* a value of the **wrong type** -> must raise ``TypeError``;
* for numeric, choice, device (and some container / tensor) parameters, a value of the right type that
  is **not allowed** -> must raise ``ValueError``;

and the message must name the parameter as ``name=...`` (``groups=0 must be an int >= 1``). The error must
be raised by lessons_lib itself (the innermost traceback frame lies in the package): no ``IndexError``,
``KeyError``, ``AttributeError``, ``'<' not supported`` or torch / numpy error leaks out of a public call.

Valid arguments come from :data:`SPECS` (keyed by parameter name, with per-function overrides keyed
``"module.function:param"``), then from the annotation / the default. A callable that cannot be called
cheaply or is not an API entry point is listed in :data:`SKIP` with its reason -- never skipped silently:
:func:`test_every_public_callable_is_walked_or_skipped_with_a_reason` fails for a new public callable that
is in neither, and :func:`test_every_parameter_has_a_spec` for a parameter the walk cannot feed.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lessons_lib

PKG_DIR = Path(lessons_lib.__file__).resolve().parent

# ------------------------------------------------------------------------------------- the scope
#: module (or package) -> why the walk leaves it out
OUT_OF_SCOPE = {
    "lessons_lib": "the package __init__ only re-exports lazily",
    "lessons_lib.course": "course scaffolding (runner, exercises, widgets, plots, source), not the reusable core",
    "lessons_lib.netguard": "test infrastructure (offline guard), not a lesson API",
    "lessons_lib.deploy.gpu": "a command-line script for a CUDA machine (python -m lessons_lib.deploy.gpu); "
                              "its functions need a GPU, tests/test_deploy_gpu*.py check its record format",
    "lessons_lib.deploy.tensorrt": "needs TensorRT (absent here); tests/test_deploy_tensorrt.py walks its bad "
                                   "arguments against the strict stand-in",
    "lessons_lib.validate": "the validators themselves: tests/test_validate.py checks them directly",
}

_RECORD = "a plain result record (dataclass) that library functions fill in; its fields are not call arguments"
#: "module.qualname" -> why the walk does not call it
SKIP = {
    "activations.Activation": _RECORD,
    "conv.ConvCost": _RECORD,
    "profile.SweepRow": _RECORD,
    "data.Splits": _RECORD,
    "data.DetectionSet": _RECORD,
    "guidelines.Case": _RECORD,
    "checkpoints.DataFileError": "an exception class raised by the checkpoint loaders, not an entry point",
    "checkpoints.Recipe": _RECORD,
    "checkpoints.register": "writes into the shipped weights' MANIFEST.json; its bad paths are tested on a "
                            "temporary weights folder in tests/test_checkpoints.py",
    "profile.LayerRow": _RECORD,
    "profile.ProfileReport": _RECORD,
    "profile.Latency": _RECORD,
    "stats.PairedDifference": _RECORD,
    "stats.Verdict": _RECORD,
    "train.History": _RECORD,
    "quant.intarith.IntegerConv2d": "a record of quantised tensors; it is built (and walked) through "
                                    "IntegerConv2d.from_float",
    "deploy.ort.optimized_graph": "cannot be called cheaply: each call builds an onnxruntime session and writes a "
                                  "file; its arguments are those of make_session (walked) plus path",
}

#: public methods walked too (constructors of the records above, entry points of stateful objects)
EXTRA = ["quant.intarith.IntegerConv2d.from_float", "quant.thresholds.Histogram.update"]


def _in_scope(modname: str) -> bool:
    """``modname`` is a core module: not out of scope itself nor inside an out-of-scope package (the package
    ``lessons_lib`` is out of scope as a module only)."""
    return not any(modname == m or (m != "lessons_lib" and modname.startswith(m + ".")) for m in OUT_OF_SCOPE)


def core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(lessons_lib.__path__, "lessons_lib.")
             if _in_scope(m.name) and not m.name.endswith("__main__")]
    return sorted(names)


def _short(modname: str) -> str:
    return modname.removeprefix("lessons_lib.")


def public_callables() -> dict[str, Callable]:
    """``"module.qualname" -> callable`` over the core, each object once, under the module defining it."""
    found: dict[int, tuple[str, Callable]] = {}
    for modname in core_modules():
        mod = importlib.import_module(modname)
        if hasattr(mod, "__all__"):
            objs = [getattr(mod, n) for n in mod.__all__]
        else:
            objs = [o for n, o in vars(mod).items() if not n.startswith("_")
                    and (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == modname]
        for o in objs:
            if not callable(o) or not _in_scope(getattr(o, "__module__", "")) or id(o) in found:
                continue
            found[id(o)] = (f"{_short(o.__module__)}.{o.__qualname__}", o)
    out = dict(found.values())
    for dotted in EXTRA:
        modpart, _, rest = dotted.partition(".")
        # longest module prefix that imports
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module("lessons_lib." + ".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for a in parts[i:]:
                obj = getattr(obj, a)
            out[dotted] = obj
            break
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------- good values
def rnd(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def teacher() -> nn.Module:
    from lessons_lib.models import TeacherCNN

    return TeacherCNN(num_classes=3, in_ch=4, width=2)


def conv3() -> nn.Conv2d:
    return nn.Conv2d(4, 4, 3, padding=1)


@functools.lru_cache(maxsize=None)
def _tiny_onnx_bytes() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "tiny", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def tiny_onnx():
    import onnx

    return onnx.ModelProto.FromString(_tiny_onnx_bytes())


@functools.lru_cache(maxsize=None)
def tiny_session():
    from lessons_lib.deploy.ort import make_session

    return make_session(tiny_onnx(), "ORT_DISABLE_ALL")


@functools.lru_cache(maxsize=None)
def tiny_onnx_path() -> str:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="error_contract_"))
    (d / "tiny.onnx").write_bytes(_tiny_onnx_bytes())
    return str(d / "tiny.onnx")


@functools.lru_cache(maxsize=None)
def _conv_onnx_bytes() -> bytes:
    """x [N, 4, 6, 6] -> Conv(w [4, 4, 3, 3], pad 1) -> y: one activation and one weight to quantise."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])
    w = numpy_helper.from_array(rnd(4, 4, 3, 3).numpy(), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "conv", [x], [y], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def conv_onnx():
    import onnx

    return onnx.ModelProto.FromString(_conv_onnx_bytes())


def _hists():
    from lessons_lib.quant import Histogram

    h = Histogram(64)
    h.update(rnd(256).abs())
    return {"x": h}


def _qat_model():
    from lessons_lib.quant.qat import prepare_qat

    return prepare_qat(teacher(), fold_bn=False)


def _cases():
    from lessons_lib.guidelines import g4_cases

    return g4_cases(c=8, hw=4, blocks=1)


def _keep():
    from lessons_lib.prune import keep_indices

    return keep_indices(teacher(), 0.5)


def _features():
    from collections import OrderedDict

    from lessons_lib.blocks import conv_bn_act

    return OrderedDict(stem=conv_bn_act(3, 8, 3, 2))


@dataclass
class P:
    """How to feed one parameter: a valid value (``good``, or a fresh one from ``new()``), its ``kind``
    (which picks the wrong-type values, :data:`WRONG`), values of the right type that are not allowed
    (``bad``), and optionally the wrong-type values themselves (``wrong``)."""

    good: Any = None
    kind: str = "any"
    bad: tuple = ()
    wrong: tuple | None = None
    new: Callable[[], Any] | None = None

    def value(self):
        return self.new() if self.new is not None else self.good


#: kind -> values of a wrong type (each must raise TypeError)
WRONG = {
    "int": (2.5, True), "real": ("0.5", True), "bool": ("yes",), "str": (3,), "choice": (3,),
    "tensor": ([[0.5, -1.0]],), "module": ("net",), "callable": (42,), "device": (3.5,), "seq": (7,),
    "map": ([("a", 1)],), "onnx": (42,), "session": ("session",), "array": ("abc",), "path": (42,),
    "dtype": ("float32",), "types": ("ReLU",), "iter": (42,), "data": ("data",), "pair": (2.5,),
    "node": (3,), "scale": ("0.1",), "int_or_tensor": (2.5,), "inputs": ("abc",), "any": (),
}
#: kinds whose parameters must have at least one not-allowed value in the walk
NEEDS_BAD = {"int", "real", "choice", "device", "pair", "scale"}
INF, NAN = float("inf"), float("nan")

SPECS: dict[str, P] = {
    # tensors
    "x": P(new=lambda: rnd(2, 4, 6, 6), kind="tensor"),
    "X": P(new=lambda: rnd(4, 4, 6, 6), kind="tensor"),
    "logits": P(new=lambda: rnd(4, 3), kind="tensor"),
    "student_logits": P(new=lambda: rnd(4, 3), kind="tensor"),
    "teacher_logits": P(new=lambda: rnd(4, 3), kind="tensor"),
    "student_emb": P(new=lambda: rnd(4, 5), kind="tensor"),
    "teacher_emb": P(new=lambda: rnd(4, 5), kind="tensor"),
    "student_feat": P(new=lambda: rnd(2, 4, 3, 3), kind="tensor"),
    "teacher_feat": P(new=lambda: rnd(2, 6, 3, 3), kind="tensor"),
    "labels": P(new=lambda: torch.tensor([0, 1, 2, 0]), kind="tensor"),
    "labelled": P(None, kind="tensor"),
    "y": P(new=lambda: torch.tensor([0, 2]), kind="tensor"),
    "mask": P(new=lambda: torch.eye(5, dtype=torch.bool), kind="tensor"),
    "matrix": P(new=lambda: rnd(4, 3), kind="tensor"),
    "weight": P(new=lambda: rnd(4, 3, 3, 3), kind="tensor"),
    "singular": P(new=lambda: rnd(5).abs() + 0.1, kind="tensor"),
    "q": P(new=lambda: torch.randint(0, 255, (2, 4, 6, 6)), kind="tensor"),
    "signs": P(new=lambda: torch.ones(4, 3, dtype=torch.int8), kind="tensor"),
    "acc": P(new=lambda: torch.arange(6, dtype=torch.int32), kind="tensor"),
    "w_log2": P(new=lambda: torch.tensor([0.5, -2.0, 1.0]), kind="tensor"),
    "x_int": P(new=lambda: torch.arange(6).reshape(2, 3), kind="tensor"),
    "q_x": P(new=lambda: torch.randint(-128, 128, (1, 4, 5, 5)), kind="tensor"),
    "w_q": P(new=lambda: torch.randint(-127, 128, (2, 4, 3, 3)), kind="tensor"),
    "a_u8": P(new=lambda: torch.randint(0, 256, (3, 4)), kind="tensor"),
    "w_s8": P(new=lambda: torch.randint(-127, 128, (2, 4)), kind="tensor"),
    "points": P(new=lambda: rnd(10, 2), kind="tensor"),
    "sample": P(new=lambda: rnd(4, 4, 6, 6), kind="tensor"),
    "example_input": P(new=lambda: rnd(1, 4, 6, 6), kind="tensor"),
    # modules and other objects
    "model": P(new=teacher, kind="module"),
    "teacher": P(new=teacher, kind="module"),
    "module": P(new=conv3, kind="module"),
    "layer": P(new=conv3, kind="module"),
    "conv": P(new=conv3, kind="module"),
    "linear": P(new=lambda: nn.Linear(4, 3), kind="module"),
    "adapter": P(new=lambda: __import__("lessons_lib.distill").distill.HintAdapter(4, 6), kind="module"),
    "tail": P(new=nn.Identity, kind="module"),
    "features": P(new=_features, kind="map"),
    "kinds": P((nn.ReLU,), kind="types"),
    "types": P((nn.Conv2d,), kind="types"),
    "session": P(new=tiny_session, kind="session"),
    "sessions": P(new=lambda: {"a": tiny_session()}, kind="map", bad=({},)),
    "node": P(new=lambda: tiny_onnx().graph.node[0], kind="node"),
    # callables
    "f": P(torch.relu, kind="callable"),
    "g": P(F.relu, kind="callable"),
    "fn": P(new=lambda: nn.Conv2d(4, 4, 1), kind="callable"),
    "evaluate": P(lambda m: 0.0, kind="callable"),
    "make_call": P(lambda n: (lambda: None), kind="callable"),
    "loss_fn": P(None, kind="callable"),
    "after_step": P(None, kind="callable"),
    "model_or_fn": P(new=nn.Identity, kind="callable"),
    # ints
    **{n: P(4, kind="int", bad=(0,)) for n in ("in_ch", "out_ch", "c1", "c2", "student_ch", "teacher_ch",
                                               "channels", "squeeze_channels", "feat_ch")},
    **{n: P(2, kind="int", bad=(0,)) for n in ("width", "cardinality", "ch1", "ch3red", "ch3", "ch5red", "ch5",
                                               "pool_proj", "L", "M", "branch_ch", "h", "w", "batch_size",
                                               "n_train", "n_val", "n_test")},
    **{n: P(1, kind="int", bad=(0,)) for n in ("repeats", "rounds", "blocks", "batch", "iters", "multiple_of",
                                               "at_least", "max_cards")},
    "groups": P(1, kind="int", bad=(0,)),
    "k": P(3, kind="int", bad=(0,)),
    "stride": P(1, kind="int", bad=(0,)),
    "kernel_size": P(3, kind="pair", bad=(0,)),
    "dilation": P(1, kind="pair", bad=(0,)),
    "padding": P(0, kind="pair", bad=(-1,)),
    "in_hw": P(6, kind="pair", bad=(0,)),
    "out_hw": P(4, kind="pair", bad=(0,)),
    "n": P(3, kind="int", bad=(0,)),
    "hw": P(4, kind="int", bad=(0,)),
    "num_bits": P(8, kind="int", bad=(0, 17)),
    "axis": P(0, kind="int", bad=(5,)),
    "warmup": P(0, kind="int", bad=(-1,)),
    "c": P(8, kind="int", bad=(0,)),
    "s": P(2, kind="int", bad=(0,)),
    "d": P(3, kind="int", bad=(0,)),
    "seed": P(0, kind="int", bad=(-1,)),
    "size": P(8, kind="int", bad=(0,)),
    "numel": P(64, kind="int", bad=(0,)),
    "num_classes": P(3, kind="int", bad=(1,)),
    "ratio": P(2, kind="int", bad=(1,)),
    "dw_size": P(3, kind="int", bad=(0,)),
    "reduction": P(4, kind="int", bad=(0,)),
    "mid_ch": P(None, kind="int", bad=(0,)),
    "expanded_ch": P(None, kind="int", bad=(0,)),
    "divisor": P(8, kind="int", bad=(0,)),
    "min_value": P(None, kind="int", bad=(0,)),
    "version": P(1, kind="int", bad=(4,)),
    "frac_bits": P(16, kind="int", bad=(-1, 41)),
    "float_bits": P(32, kind="int", bad=(0,)),
    "max_exp": P(None, kind="int", bad=(2000,)),
    "num_bins": P(16, kind="int", bad=(1,)),
    "num_quantized_bins": P(2, kind="int", bad=(1,)),
    "start_bin": P(0, kind="int", bad=(-1, 8)),
    "ref": P(0, kind="int", bad=(5, -9)),
    "at_most": P(5, kind="int", bad=(0,)),
    "threads": P(None, kind="int", bad=(0,)),
    "max_rows": P(40, kind="int", bad=(-1,)),
    "epochs": P(1, kind="int", bad=(-1,)),
    "total": P(None, kind="int", bad=(-1,)),
    "weights": P(10, kind="int", bad=(-1,)),
    "in_elems": P(10, kind="int", bad=(-1,)),
    "out_elems": P(10, kind="int", bad=(-1,)),
    "bytes_per_elem": P(4, kind="int", bad=(0,)),
    "n_points": P(10, kind="int", bad=(1,)),
    "i": P(4, kind="int", bad=(1, 9)),
    "x_zp": P(0, kind="int", bad=(1000,)),
    "out_zp": P(0, kind="int", bad=(1000,)),
    "zero_point": P(0, kind="int", bad=(300,)),
    "M0": P(2**30, kind="int_or_tensor", bad=(2**31,)),
    "shift": P(0, kind="int_or_tensor", bad=(40,)),
    "e": P(1, kind="int_or_tensor", bad=(63,)),
    # reals
    "T": P(2.0, kind="real", bad=(0, -1.0, NAN)),
    "alpha": P(0.5, kind="real", bad=(1.5, -0.1)),
    "hint": P(0.0, kind="real", bad=(-1,)),
    "rkd_d": P(0.0, kind="real", bad=(-1,)),
    "rkd_a": P(0.0, kind="real", bad=(-1,)),
    "eps": P(1e-12, kind="real", bad=(-1.0,)),
    "lr": P(1e-3, kind="real", bad=(0, INF)),
    "weight_decay": P(0.0, kind="real", bad=(-1.0,)),
    "negative_slope": P(0.01, kind="real", bad=(NAN, INF)),
    "lo": P(-1.0, kind="real", bad=(NAN,)),
    "hi": P(1.0, kind="real", bad=(NAN,)),
    "turns": P(2.0, kind="real", bad=(NAN,)),
    "width_mult": P(1.0, kind="real", bad=(0, 5.0)),
    "expand_ratio": P(6, kind="real", bad=(0.5,)),
    "difficulty": P(0.5, kind="real", bad=(1.5, -0.1)),
    "fraction": P(0.9, kind="real", bad=(0, 1.5)),
    "sparsity": P(0.5, kind="real", bad=(1.0, -0.1)),
    "amount": P(0.5, kind="real", bad=(1.0, -0.1)),
    "budget_s": P(1.0, kind="real", bad=(0, -1.0)),
    "seconds_per_item": P(0.1, kind="real", bad=(0,)),
    "min_time_s": P(0.0, kind="real", bad=(-1.0,)),
    "atol": P(1e-3, kind="real", bad=(-1.0,)),
    "percentile": P(99.99, kind="real", bad=(0, 101)),
    "confidence": P(0.95, kind="real", bad=(0.8,)),
    "momentum": P(0.1, kind="real", bad=(0, 2.0)),
    "scale": P(0.1, kind="scale", bad=(0, -0.1, INF)),
    "real_multiplier": P(0.5, kind="real", bad=(0, 2.0**40)),
    "x_scale": P(0.1, kind="real", bad=(0,)),
    "out_scale": P(0.1, kind="real", bad=(0,)),
    "v": P(10.0, kind="real", bad=(-3, NAN)),
    "xmin": P(-1.0, kind="real", bad=(NAN, INF)),
    "xmax": P(1.0, kind="real", bad=(NAN, -2.0)),
    "macs": P(1e6, kind="real", bad=(-1, 0)),
    "ms": P(2.0, kind="real", bad=(0,)),
    "gflops": P(100.0, kind="real", bad=(0, "TPU")),
    "cx": P(10.0, kind="real", bad=(NAN,)),
    "cy": P(10.0, kind="real", bad=(INF,)),
    "angle": P(0.3, kind="real", bad=(NAN,)),
    # flags
    **{n: P(False, kind="bool") for n in ("symmetric", "bias", "inplace", "factorize5x5", "include_linear",
                                           "codebook", "out_symmetric")},
    **{n: P(True, kind="bool") for n in ("relu", "group_first", "shortcut", "spatial", "dynamic_batch", "fold_bn",
                                          "deterministic", "use_se")},
    "enabled": P(None, kind="bool"),
    "progress_bar": P(False, kind="bool"),
    # names and choices
    "kind": P("two3x3", kind="choice", bad=("diag",)),
    "decoder": P("lstsq", kind="choice", bad=("inv",)),
    "gate": P("sigmoid", kind="choice", bad=("tanh",)),
    "activation": P("relu6", kind="choice", bad=("gelu",)),
    "name": P("relu", kind="choice", bad=("gelu",)),
    "param": P("activation", kind="str"),
    "choices": P(None, kind="seq", bad=([],)),
    "mode": P("channel", kind="choice", bad=("cp",)),
    "method": P("max", kind="choice", bad=("kl",)),
    "criterion": P("l1", kind="choice", bad=("taylor",)),
    "scope": P("layer", kind="choice", bad=("net",)),
    "fmt": P("fp16", kind="choice", bad=("fp8",)),
    "level": P("full", kind="choice", bad=("fast",)),
    "exporter": P("dynamo", kind="choice", bad=("tflite",)),
    "kernel": P("exact", kind="choice", bad=("avx",)),
    "zero_bin": P("keep", kind="choice", bad=("drop",)),
    "input_name": P("x", kind="str", bad=("",)),
    "output_name": P("logits", kind="str", bad=("",)),
    "desc": P("", kind="str"),
    "device": P("cpu", kind="device", bad=("tpu",)),
    "dtype": P(torch.float32, kind="dtype", bad=(torch.int64,)),
    # containers
    "names": P(None, kind="seq", bad=(["gelu"],), wrong=("relu", 7)),
    "layers": P([(3, 1, 1)], kind="seq", bad=([],)),
    "ratios": P((1,), kind="seq", bad=([0],)),
    "fragments": P((1,), kind="seq", bad=([0],)),
    "sizes": P([1, 2], kind="seq", bad=([2, 1], [])),
    "batch_sizes": P([1, 2], kind="seq", bad=([0], [])),
    "sparsities": P((0.5,), kind="seq", bad=([1.5],)),
    "skip": P((), kind="seq", wrong=(3, "features.0")),
    "input_shape": P((1, 4, 6, 6), kind="seq", bad=((0, 4), (4,))),
    "keep": P(new=_keep, kind="seq", bad=([],)),
    "masks": P(new=lambda: {"classifier": torch.ones(3, 8)}, kind="map", bad=({"nope": torch.ones(1)},)),
    "candidates": P(new=lambda: {"a": nn.Identity()}, kind="map", bad=({},)),
    "inputs": P(new=lambda: rnd(1, 4), kind="inputs"),
    "times": P(None, kind="map"),
    "cases": P(new=_cases, kind="seq", bad=([],)),
    "data": P(new=lambda: (rnd(4, 4, 6, 6), torch.tensor([0, 1, 2, 0])), kind="data"),
    "train": P(new=lambda: (rnd(4, 4, 6, 6), torch.tensor([0, 1, 2, 0])), kind="data"),
    "val": P(None, kind="data"),
    "iterable": P([1, 2, 3], kind="iter"),
    "batches": P(new=lambda: [rnd(2, 4, 6, 6)], kind="iter"),
    "counts": P(new=lambda: np.array([5.0, 3, 2, 4, 1, 0, 2, 1]), kind="array", bad=([-1.0] * 8,)),
    "edges": P(new=lambda: np.arange(9.0), kind="array", bad=(np.arange(9.0)[::-1].copy(),)),
    "correct_a": P(new=lambda: np.array([True, False, True]), kind="array"),
    "correct_b": P(new=lambda: np.array([True, True, False]), kind="array"),
    "corners": P(new=lambda: np.array([[1.0, 1], [6, 1], [6, 5], [1, 5]]), kind="array"),
    "path": P(None, kind="path"),
    "optimized_path": P(None, kind="path"),
}

#: "module.qualname:param" -> spec overriding :data:`SPECS` for that callable
OVERRIDES: dict[str, P] = {
    "activations.quantize_max_calibrated:x": P(new=lambda: rnd(2, 4).abs(), kind="tensor"),
    "activations.quantization_rmse:x": P(new=lambda: rnd(2, 4).abs(), kind="tensor"),
    "activations.prelu:weight": P(0.25, kind="scale", bad=(NAN,)),
    "activations.module:choices": P(None, kind="seq", bad=([],), wrong=(3, "relu")),
    # module() names the caller's argument (param) in its messages; the walk calls it with param="name"
    "activations.module:param": P("name", kind="str"),
    "activations.activation_inputs:kinds": P((nn.ReLU,), kind="types", bad=((),)),
    "blocks.se.collect_se_gates:model": P(new=lambda: nn.Sequential(
        __import__("lessons_lib.blocks", fromlist=["SqueezeExcite"]).SqueezeExcite(4)), kind="module"),
    "blocks.shuffle.channel_shuffle:groups": P(2, kind="int", bad=(0, 3)),
    "blocks.shuffle.channel_dependency:size": P(5, kind="int", bad=(0,)),
    "blocks.mobilenet.relu_roundtrip:activation": P(torch.relu, kind="callable"),
    "blocks.mobilenet.relu_roundtrip:n": P(3, kind="int", bad=(1,)),
    "blocks.mobilenet.tiny_mobilenet:use_se": P(None, kind="bool"),
    "blocks.mobilenet.TinyMobileNet:feat_ch": P(8, kind="int", bad=(0,)),
    "blocks.mobilenet.DepthwiseSeparableConv:stride": P(1, kind="int", bad=(3,)),
    "blocks.mobilenet.InvertedResidual:stride": P(1, kind="int", bad=(3,)),
    "blocks.shuffle.ShuffleV1Unit:stride": P(1, kind="int", bad=(3,)),
    "blocks.shuffle.ShuffleV1Unit:in_ch": P(12, kind="int", bad=(0,)),
    "blocks.shuffle.ShuffleV1Unit:out_ch": P(12, kind="int", bad=(0,)),
    "blocks.shuffle.ShuffleV2Block:stride": P(1, kind="int", bad=(3,)),
    "blocks.ghost.GhostModule:kernel_size": P(1, kind="int", bad=(0,)),
    "blocks.inception.factorized_conv:kind": P("two3x3", kind="choice", bad=("diag",)),
    "blocks.inception.grouped_from_branches:branches": P(new=lambda: __import__(
        "lessons_lib.blocks", fromlist=["ResNeXtBranches"]).ResNeXtBranches(4, 4, 2, 2), kind="module"),
    "blocks.inception.extreme_inception_towers:block": P(new=lambda: __import__(
        "lessons_lib.blocks", fromlist=["ExtremeInception"]).ExtremeInception(4, 4), kind="module"),
    "blocks.layers.conv_bn_act:padding": P(None, kind="int", bad=(-1,)),
    "conv.conv_layer:kind": P("standard", kind="choice", bad=("octave",)),
    "conv.conv_layer:groups": P(2, kind="int", bad=(0,)),
    "conv.conv_layer:dilation": P(2, kind="int", bad=(0,)),
    "conv.conv2d_cost:padding": P("same", kind="pair", bad=(-1, "valid")),
    "profile.separable_sweep:channels": P([4], kind="seq", bad=([], [0])),
    "profile.separable_sweep:hw": P(4, kind="int", bad=(0,)),
    "profile.separable_sweep:kernel_size": P(3, kind="int", bad=(0, 4)),
    "data.make_shapes:size": P(8, kind="int", bad=(4,)),
    "data.shapes_splits:size": P(8, kind="int", bad=(4,)),
    "data.make_id_cards:size": P(32, kind="int", bad=(16,)),
    "data.card_corners:w": P(8.0, kind="real", bad=(0, -1.0)),
    "data.card_corners:h": P(5.0, kind="real", bad=(0, NAN)),
    "deploy.onnx_export.export_onnx:model": P(new=teacher, kind="module"),
    "deploy.tactics.ConcatBlock:branches": P(2, kind="int", bad=(0,)),
    "deploy.tactics.branches_into_buffer:block": P(new=lambda: __import__(
        "lessons_lib.deploy.tactics", fromlist=["ConcatBlock"]).ConcatBlock(4, 2, 2), kind="module"),
    "deploy.tactics.branches_then_cat:block": P(new=lambda: __import__(
        "lessons_lib.deploy.tactics", fromlist=["ConcatBlock"]).ConcatBlock(4, 2, 2), kind="module"),
    "deploy.tactics.concat_bytes:block": P(new=lambda: __import__(
        "lessons_lib.deploy.tactics", fromlist=["ConcatBlock"]).ConcatBlock(4, 2, 2), kind="module"),
    "deploy.ort.make_session:level": P("ORT_DISABLE_ALL", kind="choice", bad=("O3",)),
    "deploy.ort.load_session:path": P(new=tiny_onnx_path, kind="path"),
    "deploy.ort.intermediate_outputs:names": P(["y"], kind="seq", bad=(["nope"], []), wrong=("y", 7)),
    "deploy.ort.accuracy:x": P(new=lambda: rnd(2, 4, 6, 6), kind="tensor"),
    "deploy.onnx_export.simplify:level": P("raw", kind="choice", bad=("fast",)),
    "devices.estimate_ms:gflops": P("RTX 3080", kind="real", bad=(0, "TPU"), wrong=(True, [1.0])),
    "distill.indexed_objective:alpha": P(0.0, kind="real", bad=(1.5, -0.1)),
    "distill.pairwise_distances:e": P(new=lambda: rnd(4, 3), kind="tensor"),
    "distill.indexed_objective:T": P(4.0, kind="real", bad=(0,)),
    "guidelines.g2_cases:groups": P((1, 2), kind="seq", bad=([0],)),
    "guidelines.g3_cases:fragments": P((1, 2), kind="seq", bad=([0], [3])),
    "guidelines.Bottleneck:c": P(8, kind="int", bad=(0, 6)),
    "guidelines.mac_1x1:groups": P(1, kind="int", bad=(0, 3)),
    "lowrank.low_rank:rank": P(2, kind="int", bad=(0, 4)),
    "lowrank.predicted_error:rank": P(2, kind="int", bad=(0, 100)),
    "lowrank.factorize_linear:rank": P(2, kind="int", bad=(0, 4)),
    "lowrank.factorize_conv:rank": P(2, kind="int", bad=(0, 100)),
    "models.build:name": P("teacher", kind="choice", bad=("resnet",)),
    "prune.keep_indices_for_counts:counts": P([1] * 6, kind="seq", bad=([0] * 6, [1])),
    "prune.recalibrate_bn:X": P(new=lambda: rnd(4, 4, 6, 6), kind="tensor", bad=(torch.zeros(1, 4, 6, 6),)),
    "quant.affine.check_bits:name": P("num_bits", kind="str"),
    "quant.affine.check_finite:name": P("x", kind="str"),
    "quant.affine.dequantize:scale": P(0.1, kind="scale", bad=(0, INF)),
    "quant.affine.dequantize:zero_point": P(0, kind="int", bad=(2**40,)),
    "quant.affine.fake_quantize:axis": P(None, kind="int", bad=(5,)),
    "quant.affine.quant_error:axis": P(None, kind="int", bad=(5,)),
    "quant.affine.quantize_per_channel:scales": P(new=lambda: torch.full((2,), 0.1), kind="scale", bad=([0.1, 0.0],)),
    "quant.affine.quantize_per_channel:zero_points": P(new=lambda: torch.zeros(2, dtype=torch.int64), kind="scale",
                                                        bad=([0, 1, 2],)),
    "quant.affine.dequantize_per_channel:scales": P(new=lambda: torch.full((2,), 0.1), kind="scale", bad=([0.1, -1.0],)),
    "quant.affine.dequantize_per_channel:zero_points": P(new=lambda: torch.zeros(2), kind="scale", bad=([0],)),
    "quant.aggressive.kmeans_quantize:num_bits": P(2, kind="int", bad=(0, 13)),
    "quant.aggressive.log2_quantize:num_bits": P(4, kind="int", bad=(1, 17)),
    "quant.aggressive.binarize_reconstruct:alpha": P(new=lambda: torch.ones(4), kind="tensor"),
    "quant.aggressive.ternarize:delta_factor": P(0.7, kind="real", bad=(-0.1, 2.0, NAN)),
    "quant.aggressive.ternarize:axis": P(None, kind="int", bad=(5,)),
    "quant.aggressive.ternarize_reconstruct:codes": P(new=lambda: torch.ones(4, 3, dtype=torch.int8), kind="tensor"),
    "quant.aggressive.ternarize_reconstruct:alpha": P(new=lambda: torch.ones(1), kind="tensor"),
    "quant.aggressive.ternarize_reconstruct:axis": P(None, kind="int", bad=(5,)),
    "activations.quantize_max_calibrated:num_bits": P(8, kind="int", bad=(1, 17)),
    "activations.quantization_rmse:num_bits": P(8, kind="int", bad=(1, 17)),
    "quant.thresholds.calibrate:num_bins": P(16, kind="int", bad=(1,)),
    "quant.thresholds.calibrate:num_quantized_bins": P(None, kind="int", bad=(1,)),
    "quant.thresholds.calibrate:method": P("max", kind="choice", bad=("kl",)),
    "quant.thresholds.calibrate:x": P(new=lambda: rnd(64), kind="tensor"),
    "quant.thresholds.Histogram.update:x": P(new=lambda: rnd(64), kind="tensor"),
    "quant.thresholds.Histogram.update:self": P(new=lambda: __import__(
        "lessons_lib.quant", fromlist=["Histogram"]).Histogram(16), kind="any"),
    "quant.thresholds.mse_threshold:num_bits": P(8, kind="int", bad=(1, 17)),
    "quant.floats.float_bits:fmt": P("bf16", kind="choice", bad=("fp8",)),
    "quant.halfprec.cast_stats:scale": P(1.0, kind="real", bad=(0, INF)),
    "quant.intarith.IntegerConv2d.from_float:bias": P(None, kind="tensor"),
    "quant.intarith.IntegerConv2d.from_float:padding": P(0, kind="int", bad=(-1,)),
    "quant.intarith.IntegerConv2d.from_float:x_zp": P(0, kind="int", bad=(1000,)),
    "quant.intarith.IntegerConv2d.from_float:relu": P(False, kind="bool"),
    "quant.lowbit.quantize_tensor:w": P(new=lambda: rnd(4, 3, 3, 3), kind="tensor"),
    "quant.lowbit.quantize_tensor:method": P("int", kind="choice", bad=("ternary",)),
    "quant.lowbit.quantize_tensor:num_bits": P(4, kind="int", bad=(0, 17)),
    "quant.lowbit.quantize_weights:method": P("int", kind="choice", bad=("ternary",)),
    "quant.lowbit.kmeans_compression:n": P(100, kind="int", bad=(0,)),
    "quant.lowbit.kmeans_compression:num_bits": P(2, kind="int", bad=(0, 17)),
    "quant.lowbit.weight_storage:num_bits": P(2, kind="int", bad=(0, 17)),
    "quant.lowbit.shift_multiply:q": P(new=lambda: torch.arange(6), kind="tensor"),
    "quant.qat.WeightFakeQuant:num_bits": P(8, kind="int", bad=(1, 17)),
    "quant.qat.prepare_qat:w_bits": P(8, kind="int", bad=(0, 17)),
    "quant.qat.prepare_qat:a_bits": P(8, kind="int", bad=(0, 17)),
    "quant.qat.prepare_qat:input_bits": P(None, kind="int", bad=(0, 17)),
    "quant.qat.prepare_qat:fold_bn": P(False, kind="bool"),
    "quant.qat.observe_ranges:model": P(new=_qat_model, kind="module"),
    "quant.x86int8.int8_conv2d:stride": P(1, kind="pair", bad=(0,)),
    "quant.x86int8.int8_conv2d:padding": P(1, kind="pair", bad=(-1,)),
    "quant.x86int8.int8_conv2d:dilation": P(1, kind="pair", bad=(0,)),
    "quant.x86int8.run_qdq_model:x": P(new=lambda: rnd(2, 4, 6, 6), kind="tensor"),
    "quant.x86int8.accuracy:x": P(new=lambda: rnd(2, 4, 6, 6), kind="tensor"),
    "stats.paired_difference:confidence": P(0.95, kind="real", bad=(0.8, 1.5)),
    "train.progress:total": P(None, kind="int", bad=(-1,)),
    "profile.measure_side_by_side:inputs": P(new=lambda: rnd(1, 4), kind="inputs"),
}
#: parameters that take an ONNX model (proto or path) rather than an nn.Module
for _f in ("deploy.onnx_export.as_model", "deploy.onnx_export.simplify", "deploy.onnx_export.check",
           "deploy.onnx_export.node_counts", "deploy.onnx_export.node_table", "deploy.onnx_export.io_signature",
           "deploy.ort.make_session", "deploy.ort.intermediate_outputs", "quant.x86int8.run_qdq_model",
           "quant.x86int8.accuracy"):
    OVERRIDES[f"{_f}:model"] = P(new=tiny_onnx, kind="onnx")
for _f in ("deploy.qdq.quantizable_inputs", "deploy.qdq.activation_histograms", "deploy.qdq.calibrate_activations",
           "deploy.qdq.weight_scales", "deploy.qdq.insert_qdq", "deploy.qdq.to_fp16", "deploy.qdq.weight_bytes",
           "deploy.qdq.qdq_summary", "deploy.qdq.scales_of", "deploy.int8.qdq_tensor_names",
           "deploy.int8.quantize_onnx"):
    OVERRIDES[f"{_f}:model"] = P(new=conv_onnx, kind="onnx")
for _f in ("deploy.qdq.activation_histograms", "deploy.qdq.calibrate_activations"):
    OVERRIDES[f"{_f}:names"] = P(["x"], kind="seq", bad=(["nope"], []), wrong=("x", 7))
    OVERRIDES[f"{_f}:batches"] = P(new=lambda: [rnd(2, 4, 6, 6)], kind="iter")
for _f in ("deploy.qdq.scales_from_histograms", "deploy.int8.quantize_onnx"):
    OVERRIDES[f"{_f}:hists"] = P(new=_hists, kind="map")
for _f in ("checkpoints.build", "checkpoints.load_state", "checkpoints.pretrained"):
    OVERRIDES[f"{_f}:directory"] = P(None, kind="path")
for _f in ("checkpoints.command", "checkpoints.load_state", "checkpoints.pretrained"):
    OVERRIDES[f"{_f}:name"] = P("shapes_teacher", kind="choice", bad=("gelu",))
OVERRIDES.update({
    "checkpoints.build:names": P(None, kind="seq", bad=(["gelu"], []), wrong=("shapes_teacher", 7)),
    "checkpoints.sha256:path": P(new=tiny_onnx_path, kind="path"),
    "checkpoints.expected_command:file_name": P("shapes_teacher.pt", kind="str", bad=("", "notes.txt")),
    "checkpoints.verify:directory": P(None, kind="path"),
    "data.labelled_split:dataset": P(new=lambda: __import__("torch").utils.data.TensorDataset(
        rnd(8, 1, 4, 4), torch.tensor([0, 1] * 4)), kind="data"),
    "data.labelled_split:fraction": P(0.5, kind="real", bad=(0, 1.5)),
    "stats.verdict:a": P([0.9, 0.91, 0.89], kind="array", bad=([0.9], [0.9, NAN])),
    "stats.verdict:b": P([0.8, 0.81, 0.79], kind="array", bad=([0.8],)),
    "stats.verdict:higher_is_better": P(True, kind="bool"),
    "stats.verdict:paired": P(False, kind="bool"),
    "stats.verdict:unit": P("", kind="str"),
    "stats.verdict:names": P(("A", "B"), kind="seq", bad=(("A",), ("A", "B", "C"))),
    "stats.best_of:samples": P({"a": [1.0, 2.0], "b": [3.0, 4.0]}, kind="map", bad=({"a": [1.0, 2.0]}, {})),
    "stats.best_of:higher_is_better": P(True, kind="bool"),
    "stats.best_of:paired": P(False, kind="bool"),
    "deploy.qdq.weight_scales:names": P(["w"], kind="seq", bad=(["nope"],), wrong=("w", 7)),
    "deploy.qdq.weight_scales:reduce_range": P(False, kind="bool"),
    "deploy.qdq.insert_qdq:activation_scales": P({"x": 0.1}, kind="map", bad=({"x": 0.0}, {"x": NAN})),
    "deploy.qdq.insert_qdq:weight_scales": P(None, kind="map", bad=({"w": -1.0},)),
    "deploy.int8.quantize_onnx:reduce_range": P(False, kind="bool"),
    "deploy.int8.qdq_tensor_names:conv_outputs": P(True, kind="bool"),
    "fold.fold_batchnorm:conv": P(new=conv3, kind="module"),
    "fold.fold_batchnorm:bn": P(new=lambda: nn.BatchNorm2d(4).eval(), kind="module"),
    "fold.count_modules:kind": P(nn.BatchNorm2d, kind="types"),
})
for _f in ("blocks.mobilenet.tiny_mobilenet", "blocks.mobilenet.TinyMobileNet"):
    OVERRIDES[f"{_f}:in_ch"] = P(3, kind="int", bad=(0,))
for _f in ("blocks.inception.ResNeXtBranches", "blocks.inception.ResNeXtGrouped"):
    OVERRIDES[f"{_f}:out_ch"] = P(4, kind="int", bad=(0, 5))
for _f in ("roofline.attainable_gflops", "roofline.ridge_intensity", "roofline.bound", "roofline.roofline_ms"):
    OVERRIDES[f"{_f}:peak"] = P(100.0, kind="real", bad=(0, -1.0, INF))
    OVERRIDES[f"{_f}:bandwidth"] = P(10.0, kind="real", bad=(0, NAN))
for _f in ("roofline.attainable_gflops", "roofline.bound"):
    OVERRIDES[f"{_f}:intensity"] = P(2.0, kind="real", bad=(-1.0, NAN))
OVERRIDES["roofline.roofline_ms:flops"] = P(2e9, kind="real", bad=(-1.0, INF))
OVERRIDES["roofline.roofline_ms:mem_bytes"] = P(1e8, kind="real", bad=(-1.0, NAN))
for _f in ("roofline.peak_gflops", "roofline.bandwidth_gbs"):
    OVERRIDES[f"{_f}:sizes"] = P((8, 16), kind="seq", bad=((16, 8), (), (0, 8)), wrong=(8, "8"))
OVERRIDES["activations.time_side_by_side:impl"] = P("torch", kind="choice", bad=("fused",))
OVERRIDES["activations.time_side_by_side:baseline"] = P("torch.clone", kind="choice", bad=("copy",))


def _two_latencies():
    from lessons_lib.profile import Latency

    return {n: Latency(1.0, 1.0, 1.0, 2, "cpu", "test", (1.0, 1.1)) for n in ("base", "op")}


OVERRIDES["activations.cost_vs_baseline:latencies"] = P(new=_two_latencies, kind="map", bad=({},))
OVERRIDES["activations.cost_vs_baseline:baseline"] = P("base", kind="str", bad=("nope",))


def spec_for(fname: str, p: inspect.Parameter) -> P | None:
    if f"{fname}:{p.name}" in OVERRIDES:
        return OVERRIDES[f"{fname}:{p.name}"]
    if p.name in SPECS:
        s = SPECS[p.name]
        if p.default is not inspect.Parameter.empty and s.new is None and s.good is None:
            return dataclasses.replace(s, good=p.default)  # an optional parameter: its default is valid
        return s
    return None


def _params(fn: Callable) -> list[inspect.Parameter]:
    sig = inspect.signature(fn)
    return [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@dataclass(frozen=True)
class Case:
    fname: str
    param: str
    value: Any
    expect: type

    @property
    def id(self) -> str:
        v = repr(self.value) if not isinstance(self.value, (torch.Tensor, np.ndarray)) else type(self.value).__name__
        return f"{self.fname}:{self.param}={v[:30]}:{self.expect.__name__}"


def build_cases() -> list[Case]:
    cases = []
    for fname, fn in public_callables().items():
        if fname in SKIP:
            continue
        for p in _params(fn):
            s = spec_for(fname, p)
            if s is None or p.name == "self":
                continue
            for v in (s.wrong if s.wrong is not None else WRONG[s.kind]):
                cases.append(Case(fname, p.name, v, TypeError))
            for v in s.bad:
                cases.append(Case(fname, p.name, v, ValueError))
    return cases


CASES = build_cases()
CALLABLES = public_callables()


def call_with(fname: str, param: str, value: Any):
    fn = CALLABLES[fname]
    args, kwargs = [], {}
    for p in _params(fn):
        s = spec_for(fname, p)
        v = value if p.name == param else s.value()
        if p.kind is p.POSITIONAL_ONLY:
            args.append(v)
        else:
            kwargs[p.name] = v
    result = fn(*args, **kwargs)
    if inspect.isgenerator(result):
        next(result)
    return result


_NAME_RE = "(?<![\\w.'\"]){}(\\[[^\\]]*\\])?="


def _raised_in_package(tb) -> bool:
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PKG_DIR)


# ----------------------------------------------------------------------------------------- tests
def test_the_walk_makes_enough_bad_calls():
    per_kind = collections.Counter(c.expect.__name__ for c in CASES)
    walked = {c.fname for c in CASES}
    print(f"\nerror-contract walk: {len(CASES)} bad calls ({per_kind['TypeError']} wrong types, "
          f"{per_kind['ValueError']} values not allowed) over {len(walked)} callables of "
          f"{len(core_modules())} core modules; {len(SKIP)} skipped with a reason")
    assert len(CASES) >= 150


def test_every_public_callable_is_walked_or_skipped_with_a_reason():
    walked = {c.fname for c in CASES}
    no_params = {f for f, fn in CALLABLES.items() if f not in SKIP and not [p for p in _params(fn) if p.name != "self"]}
    missing = sorted(set(CALLABLES) - walked - set(SKIP) - no_params)
    assert not missing, f"public callables neither walked nor in SKIP: {missing}"
    assert all(reason.strip() for reason in SKIP.values())
    stale = sorted(set(SKIP) - set(CALLABLES))
    assert not stale, f"SKIP names callables that no longer exist: {stale}"


def test_every_parameter_has_a_spec():
    missing = [f"{f}:{p.name}" for f, fn in CALLABLES.items() if f not in SKIP
               for p in _params(fn) if p.name != "self" and spec_for(f, p) is None]
    assert not missing, f"give these parameters a good value in SPECS / OVERRIDES: {missing}"
    no_bad = [f"{f}:{p.name}" for f, fn in CALLABLES.items() if f not in SKIP for p in _params(fn)
              if p.name != "self" and spec_for(f, p).kind in NEEDS_BAD and not spec_for(f, p).bad]
    assert not no_bad, f"numeric / choice parameters without a not-allowed value: {no_bad}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_argument_raises_the_contract_error(case: Case):
    with pytest.raises(Exception) as info:
        call_with(case.fname, case.param, case.value)
    err = info.value
    where = "" if _raised_in_package(info.tb) else " (raised outside lessons_lib: a leak)"
    assert type(err) is case.expect or (isinstance(err, case.expect) and not isinstance(err, (KeyError, IndexError))), \
        f"{case.fname}({case.param}={case.value!r}) raised {type(err).__name__}: {err}{where}; want {case.expect.__name__}"
    assert re.search(_NAME_RE.format(re.escape(case.param)), str(err)), \
        f"{case.fname}({case.param}=...) message does not name {case.param}=: {type(err).__name__}: {err}"
    assert not where, f"{case.fname}({case.param}=...) {type(err).__name__} was raised outside lessons_lib: {err}"
