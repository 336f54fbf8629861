"""Exercises of lesson 10 (aggressive quantisation)."""
from __future__ import annotations

from ..checks import exercise, numeric_checker
from ...quant.lowbit import kmeans_compression

#: weights of the teacher's last 3x3 conv (128 -> 128 channels)
N_WEIGHTS = 128 * 128 * 3 * 3


def _ratio() -> float:
    return kmeans_compression(N_WEIGHTS, 4)


kmeans_ratio = exercise(
    "10.kmeans_ratio",
    prompt="Storage ratio of 4-bit k-means weight sharing for a layer of 128*128*3*3 float32 weights, codebook included.",
    solution=_ratio,
    hint="r = n*32 / (n*bits + 2^bits*32): one index per weight plus one float per codebook entry.",
)(numeric_checker(_ratio, rtol=0.001, unit="x"))


def _levels() -> int:
    return 2 * (2 ** (4 - 1) - 1) + 1  # symmetric 4-bit: -7..7


int4_levels = exercise(
    "10.int4_levels",
    prompt="At most how many distinct values can one output channel of a symmetric per-channel INT4 weight have?",
    solution=_levels,
    hint="symmetric b-bit codes run from -(2^(b-1) - 1) to 2^(b-1) - 1, zero included.",
)(numeric_checker(_levels, rtol=0.0))
