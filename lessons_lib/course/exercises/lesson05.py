"""Exercises of lesson 05 (ShuffleNet v1/v2 and the four speed guidelines)."""
from __future__ import annotations


import torch

from ...blocks.shuffle import channel_shuffle
from ..checks import exercise, integer_checker, numeric_checker
from ...guidelines import mac_1x1




def _shuffle_source() -> int:
    # label the 12 input channels 0..11 and read the label that lands at output position 5
    x = torch.arange(12, dtype=torch.float32).view(1, 12, 1, 1)
    return int(channel_shuffle(x, 3)[0, 5, 0, 0])


shuffle_source = exercise(
    "05.shuffle_source",
    prompt="channel_shuffle(x, groups=3) on 12 channels: which input channel (0-based) ends up at output position 5?",
    solution=_shuffle_source,
    hint="out[o] = in[(o mod g)·(C/g) + floor(o/g)] with C = 12, g = 3.",
)(integer_checker(_shuffle_source))


def _group_mac() -> int:
    return mac_1x1(28, 28, 256, 256, groups=4)


group_mac = exercise(
    "05.group_mac",
    prompt="Memory access (elements) of a 1x1 group conv 256 -> 256 with g = 4 on a 28x28 map (ShuffleNet v2, Eq. 2).",
    solution=_group_mac,
    hint="MAC = hw(c1 + c2) + c1·c2/g: the input and output maps plus the weights.",
)(numeric_checker(_group_mac, rtol=0.001, unit="elements"))
