"""Exercises of lesson 15 (from PyTorch to an inference engine)."""
from __future__ import annotations

import math
import numbers

import torch

from ..checks import exercise
from ...deploy.tactics import ConcatBlock, concat_bytes

#: a one-channel conv weight and bias followed by an eval-mode BatchNorm (gamma, beta, mean, var, eps)
FOLD_CASE = {"w": 0.5, "b": 0.1, "gamma": 2.0, "beta": -1.0, "mean": 0.3, "var": 3.0, "eps": 1e-5}


def _folded() -> tuple[float, float]:
    c = FOLD_CASE
    k = c["gamma"] / math.sqrt(c["var"] + c["eps"])
    return c["w"] * k, (c["b"] - c["mean"]) * k + c["beta"]


def _check_fold(answer) -> tuple[bool, str]:
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in answer)):
        return False, "expected a pair of numbers (w_folded, b_folded)."
    want = _folded()
    ok = all(abs(float(a) - w) <= 1e-3 * max(1.0, abs(w)) for a, w in zip(answer, want))
    return ok, f"(w', b') = ({float(answer[0]):.4f}, {float(answer[1]):.4f})" + ("" if ok else " is not it.")


fold_bn = exercise(
    "15.fold_bn",
    prompt=(f"Fold BatchNorm into a 1x1, one-channel conv: conv weight w={FOLD_CASE['w']}, bias b={FOLD_CASE['b']}; "
            f"BN gamma={FOLD_CASE['gamma']}, beta={FOLD_CASE['beta']}, running mean={FOLD_CASE['mean']}, "
            f"running var={FOLD_CASE['var']}, eps={FOLD_CASE['eps']}. Give (w', b')."),
    solution=_folded,
    hint="k = gamma / sqrt(var + eps); w' = w * k; b' = (b - mean) * k + beta.",
)(_check_fold)


def _concat_kib() -> float:
    block = ConcatBlock(in_ch=64, branch_ch=48, branches=4)
    return concat_bytes(block, torch.empty(1, 64, 28, 28)) / 1024


def _check_concat(answer) -> tuple[bool, str]:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        return False, f"expected a number of KiB, got {type(answer).__name__}."
    want = _concat_kib()
    ok = abs(float(answer) - want) <= 0.01 * want
    return ok, f"{float(answer):.1f} KiB" + ("" if ok else " is off by more than 1%.")


concat_traffic = exercise(
    "15.concat_traffic",
    prompt=("Four branches of 48 channels each, fp32, batch 1, 28x28, are concatenated on channels. How many KiB "
            "does a copying concat move (read every branch output once, write the result once) that a "
            "concat-free engine saves?"),
    solution=_concat_kib,
    hint="output elements = 1 x (4 x 48) x 28 x 28; 4 bytes each; read + write = 2x; 1 KiB = 1024 bytes.",
)(_check_concat)
