"""Exercises of lesson 08 (KL-divergence saturation thresholds)."""
from __future__ import annotations

import numpy as np

from ..checks import exercise, numeric_checker
from ...quant import expand_candidate

EX_P = [3, 0, 1, 4, 2, 2, 0, 6]


def _expanded_q() -> list[float]:
    return expand_candidate(np.array(EX_P, dtype=float), len(EX_P), 2)[1].tolist()


def _check_q(answer) -> tuple[bool, str]:
    try:
        a = [float(v) for v in answer]
    except (TypeError, ValueError):
        return False, "expected a list of 8 numbers."
    if len(a) != 8:
        return False, f"expected 8 numbers, got {len(a)}."
    ok = bool(np.allclose(a, _expanded_q(), atol=1e-3))
    return ok, "" if ok else "the expanded Q does not match."


expanded_q = exercise(
    "08.expanded_q",
    prompt=f"Merge P = {EX_P} into 2 quantised levels and expand back to 8 bins (the GTC slide's rule). Give Q (unnormalised).",
    solution=_expanded_q,
    hint="groups of 4 bins; each non-empty bin gets (group sum) / (number of non-empty bins in the group); empty bins stay 0.",
)(_check_q)


def _scale() -> float:
    return 2.54 / 127


int8_scale = exercise(
    "08.int8_scale",
    prompt="Entropy calibration returned the threshold T = 2.54 for a layer. What is the symmetric int8 scale S?",
    solution=_scale,
    hint="symmetric int8 uses the levels -127..127, and T maps to 127.",
)(numeric_checker(_scale, rtol=1e-3))
