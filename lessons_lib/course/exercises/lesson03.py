"""Exercises of lesson 03 (ReLU6 vs h-swish and other activations)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import exercise, numeric_checker


def _hsig_solution():
    return lambda x: torch.clamp(x + 3, 0, 6) / 6


def _check_fn(answer):
    if not callable(answer):
        return False, f"expected a function of a tensor, got {type(answer).__name__}."
    g = torch.Generator().manual_seed(3)
    x = torch.cat([torch.randn(1000, generator=g) * 5, torch.tensor([-3.0, 0.0, 3.0, -6.0, 6.0])])
    y = answer(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return False, "your function must return a tensor of the same shape as its input."
    err = float((y.float() - F.hardsigmoid(x)).abs().max())
    if err <= 1e-6:
        return True, "equals F.hardsigmoid on 1005 points (max |diff| < 1e-6)."
    return False, f"max |diff| from F.hardsigmoid is {err:.3g}."


hard_sigmoid_fn = exercise(
    "03.hard_sigmoid_fn",
    prompt="Write h-sigmoid with plain torch ops (no F.hardsigmoid): a function Tensor -> Tensor.",
    solution=_hsig_solution,
    hint="h-sigmoid(x) = ReLU6(x + 3) / 6, and ReLU6(v) = min(max(0, v), 6) = v.clamp(0, 6).",
)(_check_fn)


def _relu6_step() -> float:
    return 6.0 / 255.0


relu6_step = exercise(
    "03.relu6_step",
    prompt="ReLU6 outputs quantised to unsigned 8 bits with a max-calibrated scale: what is the step S (one level)?",
    solution=_relu6_step,
    hint="S = max / (2^bits - 1); the max of ReLU6 is 6.",
)(numeric_checker(_relu6_step, rtol=0.01))
