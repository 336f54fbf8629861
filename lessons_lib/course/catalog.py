"""The course map: every lesson (planned ones included) with the source documents and topics it covers.

:data:`LESSONS` is the list; :func:`available` says which notebooks exist in the checkout's ``notebooks/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..paths import source_checkout


def notebooks_dir() -> Path:
    """The checkout's ``notebooks/`` folder (or ``./notebooks`` when the package is installed)."""
    root = source_checkout()
    return (root if root is not None else Path.cwd()) / "notebooks"


@dataclass(frozen=True)
class Lesson:
    number: str
    slug: str
    title: str
    documents: tuple[str, ...]
    topics: str

    @property
    def filename(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson("00", "how_to_use_this_workbook", "How to use this workbook; cloud vs edge compute", ("001",),
           "parameters, widgets, show_source, exercises, headless runs; RTX 3080 / 2080 Ti / Raspberry Pi 4B estimates vs measured latency"),
    Lesson("01", "grouped_depthwise_conv", "Grouped, depthwise and separable convolution maths", ("001", "004"),
           "params and MACs, 1/c2 + 1/k^2, memory access vs FLOPs, dilated and 5x1+1x5 convs"),
    Lesson("02", "mobilenet_v1_v3", "MobileNet v1 -> v2 -> v3", ("001", "000"),
           "depthwise separable, inverted residual, linear bottleneck, SE, h-swish, tail and head changes"),
    Lesson("03", "activations", "ReLU6 vs h-swish and other activations", ("001", "000", "003"),
           "ReLU, ReLU6, LeakyReLU, PReLU, SELU, swish, Mish, h-sigmoid, h-swish; bounded activations and int8"),
    Lesson("04", "squeeze_excitation", "Squeeze-and-Excitation", ("001", "000"),
           "squeeze, excitation, scale; 2C^2/r overhead; accuracy vs latency"),
    Lesson("05", "shufflenet_guidelines", "ShuffleNet v1/v2 and the four speed guidelines", ("001", "004"),
           "group pointwise conv, channel shuffle, split/concat, memory access cost"),
    Lesson("06", "inception_resnext_igc_ghost", "Inception, Xception, ResNeXt, IGC, GhostNet", ("001",),
           "factorised kernels, split-transform-merge, interleaved group convs, Ghost module"),
    Lesson("07", "quantization_fundamentals", "Quantisation fundamentals", ("001", "003"),
           "affine mapping, symmetric/asymmetric, per-channel, fixed point, integer-only arithmetic"),
    Lesson("08", "kl_calibration", "KL-divergence saturation thresholds", ("003", "000"),
           "TensorRT entropy calibration, max / percentile / MSE thresholds"),
    Lesson("09", "bfloat16_fp16", "bfloat16 and fp16", ("003", "000"),
           "bit layouts, truncation vs round-to-nearest-even, underflow, loss scaling"),
    Lesson("10", "aggressive_quantization", "Aggressive quantisation", ("001", "003", "000"),
           "k-means weight sharing, binary, log2, INT4"),
    Lesson("11", "qat_int8_inference", "QAT and real int8 inference", ("003", "002"),
           "fake quantisation, straight-through estimator, onnxruntime int8"),
    Lesson("12", "low_rank", "Low-rank factorisation (SVD)", ("000",),
           "singular-value spectra, rank vs error vs latency"),
    Lesson("13", "pruning", "Pruning", ("000", "002", "004"),
           "magnitude and channel pruning, sensitivity, network slimming"),
    Lesson("14", "knowledge_distillation", "Knowledge distillation", ("000", "002", "004"),
           "softmax with temperature, response / feature / relation KD, data distillation"),
    Lesson("15", "onnx_tensorrt_deploy", "From PyTorch to an inference engine", ("000",),
           "ONNX export, fusion, engine serialisation, fp16/int8, TensorRT 11"),
)


def available() -> list[Path]:
    """Notebooks present in ``notebooks/``, sorted (``NN_topic.ipynb``)."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def course_map() -> str:
    """A markdown table of every lesson, marking which notebooks exist."""
    have = {p.name for p in available()}
    lines = ["| # | lesson | documents | topics | status |", "| --- | --- | --- | --- | --- |"]
    for l in LESSONS:
        status = "ready" if l.filename in have else "planned"
        lines.append(f"| {l.number} | {l.title} | {', '.join(l.documents)} | {l.topics} | {status} |")
    return "\n".join(lines)


def readme_table() -> str:
    """The README's notebook table (notebooks on disk only); paste it into README.md."""
    have = {p.name for p in available()}
    lines = ["| notebook | topic | source documents |", "| --- | --- | --- |"]
    for l in LESSONS:
        if l.filename in have:
            lines.append(f"| [notebooks/{l.filename}](notebooks/{l.filename}) | {l.title}: {l.topics} | {', '.join(l.documents)} |")
    return "\n".join(lines)
