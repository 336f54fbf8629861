"""Time lessons_lib.quant.kl_threshold against ONNX Runtime's entropy calibrator, side by side in one run.

    .venv/bin/python benchmarks/bench_kl_threshold.py [--repeats 3]

Both search the same resolution: ours a 2048-bin histogram of |x| over [0, max|x|]; ONNX Runtime's
``HistogramCollector.get_entropy_threshold`` a 4097-bin signed histogram over [-max|x|, max|x|] (the same
bin width, a centred zero bin) with 255 quantised levels (128 per side), as its ``collect_value`` builds
it. The thresholds are printed too: they differ, because the conventions differ (see lesson 08).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import numpy as np
import torch

from lessons_lib import machine
from lessons_lib.quant import Histogram, kl_threshold


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(repeats: int = 3) -> dict:
    from onnxruntime.quantization.calibrate import HistogramCollector

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(size=200_000), rng.normal(0, 8, 50)]).astype(np.float32)
    hist = Histogram(2048).update(torch.from_numpy(x))
    col = HistogramCollector("entropy", True, 4097, 255, 99.99, "same")
    with contextlib.redirect_stdout(io.StringIO()):
        col.collect({"t": x})
    ort_hist = col.get_histogram_dict()["t"]

    ours_T = kl_threshold(hist.counts, hist.edges, 128)
    ort_T = float(col.get_entropy_threshold(ort_hist, 255)[1])
    ours_ms = _median_ms(lambda: kl_threshold(hist.counts, hist.edges, 128), max(20, 10 * repeats))
    ort_ms = _median_ms(lambda: col.get_entropy_threshold(ort_hist, 255), repeats)
    print("measured on:", machine.describe("cpu"))
    print(f"ours (numpy, vectorised, 2048 bins, 1921 candidates): {ours_ms:9.2f} ms  threshold {ours_T:.4f}")
    print(f"onnxruntime get_entropy_threshold (4097 signed bins):  {ort_ms:9.2f} ms  threshold {ort_T:.4f}")
    print(f"speed-up: {ort_ms / ours_ms:.0f}x  (max|x| = {float(np.abs(x).max()):.4f})")
    return {"ours_ms": ours_ms, "ort_ms": ort_ms, "ratio": ort_ms / ours_ms, "ours_T": ours_T, "ort_T": ort_T}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls of the ONNX Runtime function")
    main(ap.parse_args().repeats)
