"""PyTorch on an NVIDIA GPU: eager fp32 / tf32 / fp16 / bf16, channels_last, and ``torch.compile``.

Run as a script on a GPU machine (``python -m lessons_lib.deploy.gpu``) to print the table the
lesson cannot measure on a CPU-only machine. Expect a small CNN on a big GPU to be bound by kernel
launches: halving the precision barely moves eager latency, fusing kernels (``torch.compile``, an engine
builder) does -- the table this script prints is the evidence, recorded with its GPU and date.
``mode="max-autotune"`` is torch.compile's kernel auto-tuning: it benchmarks Triton candidates per
layer and keeps the fastest -- the same idea as TensorRT's tactic selection, and slow to compile
(minutes even for the 6-conv teacher; pass ``compile_mode="default"`` for a quick run).
"""
from __future__ import annotations

import copy
import datetime
import json
import time
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .. import checkpoints, paths
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


# Read from the shipped weights folder; ``--record`` writes there in a source checkout (the user cache otherwise).
RECORD = checkpoints.WEIGHTS_DIR / "gpu_recorded.json"


def save_record(result: dict, path: str | Path | None = None, *,
                command: str = checkpoints.DATA_FILES["gpu_recorded.json"]) -> Path:
    """Write a *measured* :func:`gpu_benchmark` result (never a skipped one) as JSON, with the date,
    the torch version and the command that produced it, so a lesson can show it on CPU-only machines."""
    if not isinstance(result, dict) or "rows" not in result or "device" not in result:
        raise ValueError(f"result={result!r:.120} is not a measured gpu_benchmark result (it has no 'rows'/'device')")
    rec = {**result, "recorded": datetime.date.today().isoformat(), "torch": torch.__version__, "command": command}
    path = paths.writable_weights_dir() / RECORD.name if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2) + "\n")
    if path.resolve().parent == checkpoints.WEIGHTS_DIR.resolve():   # every shipped file is in the manifest
        checkpoints.register(path, command, f"PyTorch GPU latencies measured on {result['device']}")
    return path


def load_record(path: str | Path = RECORD) -> dict | None:
    """The recorded GPU result, or ``None`` when no GPU run has been recorded yet."""
    path = Path(path)
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    if "rows" not in rec or "device" not in rec:
        raise ValueError(f"{path.name} is not a gpu_benchmark record (no 'rows'/'device'); rebuild it with "
                         "python -m lessons_lib.deploy.gpu --record on a GPU machine")
    return rec


def format_record(rec: dict | None) -> str:
    """:func:`format_table` of a recorded result, headed by where and when it was measured."""
    if rec is None:
        return ("no GPU result recorded yet: on a machine with an NVIDIA GPU run\n"
                "  python -m lessons_lib.deploy.gpu --record\n"
                f"which writes lessons_lib/weights/{RECORD.name} for this cell to show")
    trt = format_trt(rec["tensorrt"]) if rec.get("tensorrt") else f"TensorRT: {rec.get('tensorrt_skipped', 'not run')}"
    return (f"RECORDED on {rec['recorded']} with torch {rec['torch']} (`{rec['command']}`), not measured on this "
            f"machine:\n" + format_table(rec) + "\n" + trt)


def main(argv: Sequence[str] | None = None) -> None:  # python -m lessons_lib.deploy.gpu [--record [PATH]]
    """Print the PyTorch GPU table, then build and time fp32 / fp16 / int8 TensorRT engines if possible;
    ``--record`` saves both (default ``lessons_lib/weights/gpu_recorded.json`` in a checkout)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lessons_lib.deploy.gpu", description=main.__doc__)
    ap.add_argument("--record", nargs="?", const="", default=None, metavar="PATH",
                    help=f"save the measured table as JSON (default lessons_lib/weights/{RECORD.name})")
    args = ap.parse_args(argv)
    model = checkpoints.pretrained("shapes_teacher").eval()
    result = gpu_benchmark(model)
    print(format_table(result))
    trt = tensorrt_rows(model)
    print(format_trt(trt["tensorrt"]) if "tensorrt" in trt else f"TensorRT skipped: {trt['tensorrt_skipped']}")
    if args.record is not None and "skipped" not in result:
        print(f"recorded: {save_record({**result, **trt}, args.record or None)}")


def tensorrt_rows(model: nn.Module) -> dict:
    """``{"tensorrt": [one row per fp32 / fp16 / int8 engine]}`` or ``{"tensorrt_skipped": why}``."""
    from ..data import shapes_splits
    from . import export_onnx, insert_qdq, qdq, to_fp16
    from . import tensorrt as trt_helpers
    import onnx

    ok, why = trt_helpers.tensorrt_available()
    if not ok:
        return {"tensorrt_skipped": why}
    out = paths.build_dir() / "deploy" / "trt"
    out.mkdir(parents=True, exist_ok=True)
    splits = shapes_splits()
    x_test, _ = splits.test.tensors
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
    return {"tensorrt": [{"engine": label, "batch": 64, "ms": r["ms"], "plan_kib": r["plan_bytes"] / 2**10,
                          "agreement": float((r["output"].argmax(1) == ref.argmax(1)).float().mean()),
                          "layers": r["layers"]} for label, r in res.items()]}


def format_trt(rows: list[dict]) -> str:
    """One line per TensorRT engine: latency, plan size, agreement with PyTorch, the fused layers."""
    return "\n".join(f"TensorRT {r['engine']}: {r['ms']:.3f} ms at batch {r['batch']}, plan {r['plan_kib']:.0f} KiB, "
                     f"top-1 agreement with PyTorch {r['agreement']:.3f}, {len(r['layers'])} engine layers: "
                     f"{r['layers'][:6]}" for r in rows)


if __name__ == "__main__":
    main()
