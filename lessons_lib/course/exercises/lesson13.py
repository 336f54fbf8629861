"""Exercises of lesson 13 (pruning)."""
from __future__ import annotations

from ..checks import exercise, integer_checker


def _kept() -> int:
    n = 32 * 64 * 3 * 3  # Conv2d(32, 64, 3) weights
    return n - int(round(0.9 * n))


kept_weights = exercise(
    "13.kept_weights",
    prompt="magnitude_masks at sparsity 0.9 (scope='layer') on Conv2d(32, 64, 3): how many weights stay non-zero?",
    solution=_kept,
    hint="the layer has 64 * 32 * 3 * 3 weights; round(0.9 * n) of them are zeroed.",
)(integer_checker(_kept, "weights"))


def _macs() -> int:
    # features.4.0 of TeacherCNN(width=32): 3x3 conv 64 -> 64 on a 16x16 map; keep 32 inputs and 32 outputs
    return 32 * 32 * 3 * 3 * 16 * 16


channel_macs = exercise(
    "13.channel_macs",
    prompt="The teacher's conv features.4.0 (3x3, 64 -> 64 channels, 16x16 output) keeps 32 of its input and "
           "32 of its output channels after channel pruning. How many MACs does it need per image?",
    solution=_macs,
    hint="MACs = out_ch * in_ch * k * k * H_out * W_out; both channel counts halve, so MACs drop 4x.",
)(integer_checker(_macs, "MACs"))
