"""Exercises of lesson 02 (MobileNet v1 -> v2 -> v3)."""
from __future__ import annotations


from ..checks import exercise, integer_checker


def _ir_params() -> int:
    # InvertedResidual(24, 24, stride 1, t=6): E = 144; expand 1x1 + BN, depthwise 3x3 + BN, project 1x1 + BN
    cin, cout, e, k = 24, 24, 24 * 6, 3
    return (cin * e + 2 * e) + (k * k * e + 2 * e) + (e * cout + 2 * cout)




ir_params = exercise(
    "02.ir_params",
    prompt="How many parameters (weights + BatchNorm gamma/beta, no conv biases) has "
           "InvertedResidual(24, 24, stride=1, expand_ratio=6)?",
    solution=_ir_params,
    hint="E = 24*6 = 144 expanded channels; 1x1 expand C_in*E, 3x3 depthwise 9*E, 1x1 project E*C_out, "
         "and each conv is followed by a BN with 2 parameters per channel.",
)(integer_checker(_ir_params))


def _tail_saved() -> int:
    # a 1x1 conv 960 -> 1280 at 7x7 (before pooling) vs at 1x1 (after pooling)
    return 960 * 1280 * 7 * 7 - 960 * 1280


tail_saved = exercise(
    "02.tail_saved",
    prompt="MobileNet v3 moves the 960 -> 1280 1x1 layer after the 7x7 global pooling. How many MACs does that save?",
    solution=_tail_saved,
    hint="MACs of a 1x1 conv = H * W * C_in * C_out; compute it at 7x7 and at 1x1 and subtract.",
)(integer_checker(_tail_saved))
