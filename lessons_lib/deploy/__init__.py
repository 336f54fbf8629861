"""From PyTorch to an inference engine (document 000's TensorRT workflow), one module per step:

* :mod:`.onnx_export` -- ``export_onnx``, ``simplify``, ``node_counts``, ``node_table`` (parse input);
* :mod:`lessons_lib.fold` -- ``fold_batchnorm`` / ``fold_model`` (Conv+BN fusion by hand; shared with QAT);
* :mod:`.ort` -- onnxruntime sessions per optimisation level, serialise / deserialise, batch sweeps;
* :mod:`.tactics` -- kernel auto-tuning and concat elimination, illustrated on the CPU;
* :mod:`.qdq` -- fp16 graphs, the one calibration pipeline (histograms -> scales) and Q/DQ insertion;
* :mod:`.int8` -- where onnxruntime runs int8 kernels (Q/DQ on Conv outputs too) and the x86 ``reduce_range`` default;
* :mod:`.tensorrt` -- the guarded TensorRT 11 build / load / run helpers;
* :mod:`.gpu` -- PyTorch eager fp32/fp16/bf16 and ``torch.compile`` on a GPU (``python -m lessons_lib.deploy.gpu``).
"""
from ..fold import fold_batchnorm, fold_model
from .onnx_export import EXPORT_LEVELS, check, export_onnx, io_signature, node_counts, node_table, simplify
from .ort import ORT_LEVELS, accuracy, batch_sweep, load_session, make_session, optimized_graph, run, run_batched
from .qdq import calibrate_activations, insert_qdq, quantizable_inputs, qdq_summary, to_fp16, weight_scales
from .tensorrt import tensorrt_available

__all__ = [
    "fold_batchnorm", "fold_model", "EXPORT_LEVELS", "check", "export_onnx", "io_signature", "node_counts",
    "node_table", "simplify", "ORT_LEVELS", "accuracy", "batch_sweep", "load_session", "make_session",
    "optimized_graph", "run", "run_batched", "calibrate_activations", "insert_qdq", "quantizable_inputs", "qdq_summary",
    "to_fp16", "weight_scales", "tensorrt_available",
]
