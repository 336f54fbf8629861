"""Exercises of lesson 06 (Inception, Xception, ResNeXt, IGC, GhostNet)."""
from __future__ import annotations

from ...blocks.ghost import ghost_speedup
from ..checks import exercise, numeric_checker
from ...conv import conv2d_params


def _two3x3_ratio() -> float:
    c = 64
    return 2 * conv2d_params(c, c, 3) / conv2d_params(c, c, 5)


two3x3_ratio = exercise(
    "06.two3x3_ratio",
    prompt="Weights of two stacked 3x3 convs (c -> c -> c) divided by those of one 5x5 conv (c -> c).",
    solution=_two3x3_ratio,
    hint="each 3x3 has 9·c² weights, the 5x5 has 25·c²; c cancels.",
)(numeric_checker(_two3x3_ratio, rtol=0.01))


def _igc_params() -> int:
    L, M = 8, 4
    C = L * M
    return conv2d_params(C, C, 3, groups=L) + conv2d_params(C, C, 1, groups=M)


igc_params = exercise(
    "06.igc_params",
    prompt="Weights of an IGC block with L = 8 primary groups of M = 4 channels (3x3 primary, 1x1 secondary), no bias.",
    solution=_igc_params,
    hint="primary: k²·L·M², secondary: L²·M.",
)(numeric_checker(_igc_params, rtol=0.0, unit="weights"))


def _ghost_ratio() -> float:
    return ghost_speedup(64, 2, k=1, d=3)


ghost_ratio = exercise(
    "06.ghost_ratio",
    prompt="MAC saving of a Ghost module (s = 2, 1x1 primary conv, 3x3 depthwise cheap op) over a 1x1 conv, input c = 64.",
    solution=_ghost_ratio,
    hint="r = c·k²·s / (c·k² + (s-1)·d²) with k = 1, d = 3.",
)(numeric_checker(_ghost_ratio, rtol=0.01, unit="x"))
