"""PyTorch on an NVIDIA GPU: eager fp32 / tf32 / fp16 / bf16, channels_last, and ``torch.compile``.

Run as a script on a GPU machine (``python -m lessons_lib.deploy.gpu``) to print the table the
lesson cannot measure on a CPU-only machine. On an H100 a small CNN is launch-bound: halving the
precision barely moves eager latency, fusing kernels does (``research/deploy-toolchain.md`` §7).
``mode="max-autotune"`` is torch.compile's kernel auto-tuning: it benchmarks Triton candidates per
layer and keeps the fastest -- the same idea as TensorRT's tactic selection, and slow to compile
(minutes even for the 6-conv teacher; pass ``compile_mode="default"`` for a quick run).
"""
from __future__ import annotations

import copy
import time
from typing import Sequence

import torch
from torch import nn

from ..machine import describe
from ..profile import measure_side_by_side


def gpu_variants(model: nn.Module, *, compile_mode: str | None = "max-autotune") -> dict[str, nn.Module]:
    """Copies of ``model`` on CUDA: eager fp32 / fp16 / bf16 / fp16 channels_last, and compiled fp16."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be a torch.nn.Module")
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU: gpu_variants needs one (see gpu_benchmark for a guarded call)")
    base = copy.deepcopy(model).eval().cuda()
    out = {"eager fp32": base,
           "eager fp16": copy.deepcopy(base).half(),
           "eager bf16": copy.deepcopy(base).to(torch.bfloat16),
           "eager fp16 channels_last": copy.deepcopy(base).half().to(memory_format=torch.channels_last)}
    if compile_mode is not None:
        out[f"compile {compile_mode} fp16"] = torch.compile(copy.deepcopy(base).half(), mode=compile_mode)
    return out


def gpu_benchmark(model: nn.Module, batch_sizes: Sequence[int] = (1, 64), *, hw: int = 32, in_ch: int = 3,
                  repeats: int = 50, compile_mode: str | None = "max-autotune") -> dict:
    """``{"device", "rows": [{"variant", "batch", "ms"}], "compile_s"}`` or ``{"skipped": reason}``.

    Each batch size times all variants side by side (median of ``repeats``); tf32 is switched on for
    one extra ``eager tf32`` row. The first call of the compiled model (its compile time) is reported.
    """
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU on this machine: PyTorch GPU latencies (fp32/fp16/bf16/torch.compile) not measured"}
    variants = gpu_variants(model, compile_mode=compile_mode)
    rows, compile_s = [], None
    for b in batch_sizes:
        x = torch.randn(b, in_ch, hw, hw, device="cuda")
        inputs = {name: (x.half().to(memory_format=torch.channels_last) if "channels_last" in name
                         else x.to(next(m.parameters()).dtype) if name.startswith("eager") else x.half())
                  for name, m in variants.items()}
        if compile_s is None and compile_mode is not None:
            t0 = time.perf_counter()
            with torch.inference_mode():
                variants[f"compile {compile_mode} fp16"](inputs[f"compile {compile_mode} fp16"])
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - t0
        lat = measure_side_by_side(variants, inputs, warmup=5, repeats=repeats)
        prev = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            tf32 = measure_side_by_side({"eager tf32": variants["eager fp32"]}, x, warmup=5, repeats=repeats)
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev
        for name, l in {**lat, **tf32}.items():
            rows.append({"variant": name, "batch": b, "ms": l.median_ms})
    return {"device": describe("cuda"), "rows": rows, "compile_s": compile_s}


def format_table(result: dict) -> str:
    """A markdown table (variant x batch size, ms) of :func:`gpu_benchmark`'s result."""
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    batches = sorted({r["batch"] for r in result["rows"]})
    names = list(dict.fromkeys(r["variant"] for r in result["rows"]))
    ms = {(r["variant"], r["batch"]): r["ms"] for r in result["rows"]}
    lines = [f"measured on: {result['device']}", "", "| variant | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "| --- |" + " --- |" * len(batches)]
    lines += [f"| {n} | " + " | ".join(f"{ms[(n, b)]:.3f} ms" for b in batches) + " |" for n in names]
    if result.get("compile_s") is not None:
        lines.append(f"\ntorch.compile first call (compilation): {result['compile_s']:.1f} s")
    return "\n".join(lines)


def main() -> None:  # python -m lessons_lib.deploy.gpu
    """Print the PyTorch GPU table, then build and time fp32 / fp16 / int8 TensorRT engines if possible."""
    from ..checkpoints import pretrained
    from ..course import BUILD
    from ..data import shapes_splits
    from . import export_onnx, insert_qdq, qdq, to_fp16
    from . import tensorrt as trt_helpers
    import onnx

    model = pretrained("shapes_teacher").eval()
    print(format_table(gpu_benchmark(model)))
    ok, why = trt_helpers.tensorrt_available()
    if not ok:
        print(f"TensorRT skipped: {why}")
        return
    out = BUILD / "deploy" / "trt"
    out.mkdir(parents=True, exist_ok=True)
    splits = shapes_splits()
    x_test, y_test = splits.test.tensors
    fp32 = export_onnx(model, x_test[:2], out / "teacher_fp32.onnx")
    onnx.save(to_fp16(fp32), out / "teacher_fp16.onnx")
    acts, weights = qdq.quantizable_inputs(fp32)
    calib = [splits.train.tensors[0][i:i + 128] for i in range(0, 512, 128)]
    q8 = insert_qdq(fp32, qdq.calibrate_activations(fp32, acts, calib), qdq.weight_scales(fp32, weights))
    onnx.save(q8, out / "teacher_int8_qdq.onnx")
    files = {k: out / f"teacher_{k}.onnx" for k in ("fp32", "fp16", "int8_qdq")}
    res = trt_helpers.build_and_run(files, x_test[:64].cuda(), out)
    with torch.inference_mode():
        ref = model(x_test[:64])
    for label, r in res.items():
        agree = float((r["output"].argmax(1) == ref.argmax(1)).float().mean())
        print(f"TensorRT {label}: {r['ms']:.3f} ms at batch 64, plan {r['plan_bytes'] / 2**10:.0f} KiB, "
              f"top-1 agreement with PyTorch {agree:.3f}, {len(r['layers'])} layers: {r['layers'][:6]}")


if __name__ == "__main__":
    main()
