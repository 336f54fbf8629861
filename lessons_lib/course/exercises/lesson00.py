"""Exercises of lesson 00 (how to use the workbook; cloud vs edge compute)."""
from __future__ import annotations

from ..checks import exercise, numeric_checker
from ...devices import estimate_ms

#: MACs of torchvision's mobilenet_v2 at 1x3x224x224 (conv + linear), as lessons_lib.profile counts them
MOBILENET_V2_MACS = 300_774_272


def _pi_ms() -> float:
    return estimate_ms(MOBILENET_V2_MACS, "Raspberry Pi 4B")


pi_time = exercise(
    "00.pi_time",
    prompt="Best-case ms for one 224x224 image through mobilenet_v2 on a Raspberry Pi 4B (13.5 GFLOPS peak).",
    solution=_pi_ms,
    hint="time = FLOPs / peak, with FLOPs = 2 x MACs; 300.8 M MACs; convert seconds to ms.",
)(numeric_checker(_pi_ms, rtol=0.01, unit="ms"))


def _speedup() -> float:
    return estimate_ms(MOBILENET_V2_MACS, "Raspberry Pi 4B") / estimate_ms(MOBILENET_V2_MACS, "RTX 3080")


cloud_vs_edge = exercise(
    "00.cloud_vs_edge",
    prompt="By what factor is the RTX 3080's peak estimate faster than the Raspberry Pi 4B's for the same model?",
    solution=_speedup,
    hint="the MACs cancel: it is the ratio of the two peak GFLOPS numbers.",
)(numeric_checker(_speedup, rtol=0.01, unit="x"))
