"""Exercises of lesson 12 (low-rank factorisation with the SVD)."""
from __future__ import annotations

import math

from ..checks import exercise, integer_checker, numeric_checker


def _channel_params() -> int:
    # Conv2d(64, 128, 3, bias=False) -> Conv2d(64, 16, 3) + Conv2d(16, 128, 1): r * (i*k*k + o)
    return 16 * (64 * 3 * 3 + 128)


channel_params = exercise(
    "12.channel_params",
    prompt="How many weights does Conv2d(64, 128, 3, bias=False) have after factorize_conv(conv, rank=16) "
           "(mode='channel')?",
    solution=_channel_params,
    hint="a 3x3 conv from 64 to r channels, then a 1x1 conv from r to 128: r * (64*3*3) + 128 * r.",
)(integer_checker(_channel_params, "weights"))

SINGULAR = (5.0, 3.0, 2.0, 1.0, 0.5)


def _error() -> float:
    return math.sqrt(sum(s * s for s in SINGULAR[2:]))


predicted_error = exercise(
    "12.predicted_error",
    prompt=f"A weight matrix has singular values {SINGULAR}. What is the Frobenius norm of W - W_2, "
           "the error of its best rank-2 approximation?",
    solution=_error,
    hint="Eckart-Young: sqrt of the sum of the squares of the singular values you drop (here the last three).",
)(numeric_checker(_error, rtol=1e-3))
