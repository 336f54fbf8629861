"""Uncertainty of accuracy comparisons: is model A better than model B *on this test set*, or can we not tell?

Two models evaluated on the same images are compared **paired**: per image, ``d_i = correct_A(i) -
correct_B(i)`` is -1, 0 or +1, and the accuracy difference is ``mean(d)``. Its standard error
``sd(d) / sqrt(n)`` counts only the images on which the two disagree, so it is far smaller than
comparing two independent accuracies would suggest. The interval is the normal approximation
``mean(d) +- z * se`` (McNemar's setting; with fewer than ~10 discordant images it is only indicative).

    d = stats.paired_difference(pred_int8 == y, pred_fp32 == y)
    print(d.text("int8 vs fp32"))   # "int8 vs fp32: -0.40 points (95% CI -0.93 to +0.13, 1000 images): cannot tell apart"
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_Z = {0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}


@dataclass(frozen=True)
class PairedDifference:
    """``diff = acc_A - acc_B`` (fractions), its interval ``[lo, hi]``, ``n`` images, ``discordant`` images."""

    diff: float
    lo: float
    hi: float
    n: int
    discordant: int
    confidence: float

    @property
    def verdict(self) -> str:
        """"A better", "B better" or "cannot tell apart" (the interval contains 0)."""
        if self.lo > 0:
            return "A better"
        if self.hi < 0:
            return "B better"
        return "cannot tell apart"

    def text(self, label: str, a: str = "A", b: str = "B") -> str:
        v = self.verdict.replace("A better", f"{a} better").replace("B better", f"{b} better")
        return (f"{label}: {100 * self.diff:+.2f} points ({round(100 * self.confidence)}% CI {100 * self.lo:+.2f} to "
                f"{100 * self.hi:+.2f}, {self.n} images, {self.discordant} disagree): {v}")


def paired_difference(correct_a, correct_b, *, confidence: float = 0.95) -> PairedDifference:
    """Paired accuracy difference of two models on the same ``n`` images (boolean arrays, True = correct)."""
    if confidence not in _Z:
        raise ValueError(f"confidence={confidence!r} must be one of {sorted(_Z)}")
    a = np.asarray(correct_a)
    b = np.asarray(correct_b)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be non-empty 1-D arrays of one length")
    if a.dtype != bool or b.dtype != bool:
        raise TypeError(f"correct_a and correct_b must be boolean arrays, got {a.dtype} and {b.dtype}")
    d = a.astype(np.float64) - b.astype(np.float64)
    n = d.size
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
    half = _Z[confidence] * se
    return PairedDifference(mean, mean - half, mean + half, n, int((d != 0).sum()), confidence)
