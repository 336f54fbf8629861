"""Exercises of lesson 11 (QAT and real int8 inference)."""
from __future__ import annotations

import torch

from ..checks import exercise, numeric_checker
from ...quant import fake_quantize

#: the values of the gradient exercise and their quantiser (unsigned 4 bits, S = 0.1, Z = 3)
X = (-0.5, -0.31, -0.2, 0.0, 0.4, 1.1, 1.2, 1.26, 1.3, 2.0)
S, Z, BITS = 0.1, 3, 4


def _passing() -> int:
    x = torch.tensor(X, requires_grad=True)
    fake_quantize(x, S, Z, BITS).sum().backward()
    return int(x.grad.sum())


ste_count = exercise(
    "11.ste_count",
    prompt=f"x = {X}; fake_quantize(x, S={S}, Z={Z}, 4 bits, unsigned). How many entries get gradient 1 (the rest 0)?",
    solution=_passing,
    hint="the straight-through gradient is 1 where qmin <= round(x/S) + Z <= qmax, here 0 <= round(x/0.1) + 3 <= 15.",
)(numeric_checker(_passing, rtol=0.0))


def _scale() -> float:
    return 6.35 / 127


int8_scale = exercise(
    "11.int8_scale",
    prompt="A calibrated threshold T = 6.35 for a symmetric int8 activation: what scale goes into QuantizeLinear?",
    solution=_scale,
    hint="symmetric int8 uses the narrow range [-127, 127]: S = T / 127.",
)(numeric_checker(_scale, rtol=0.001))
