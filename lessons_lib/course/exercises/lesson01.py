"""Exercises of lesson 01 (grouped, depthwise and separable convolution maths)."""
from __future__ import annotations

from ..checks import exercise, integer_checker, numeric_checker
from ...conv import conv2d_params, receptive_field, separable_ratio


def _grouped_params() -> int:
    return conv2d_params(96, 192, 3, groups=4)


grouped_params = exercise(
    "01.grouped_params",
    prompt="How many weights has nn.Conv2d(96, 192, kernel_size=3, groups=4, bias=False)?",
    solution=_grouped_params,
    hint="each of the 192 filters sees 96 / 4 channels through a 3x3 window: h1*w1*(c1/g)*c2.",
)(integer_checker(_grouped_params, "weights"))


def _ratio() -> float:
    return separable_ratio(128, 3)


separable_cost = exercise(
    "01.separable_ratio",
    prompt="A 3x3 conv 64 -> 128 channels is replaced by depthwise 3x3 + pointwise 1x1. "
           "What fraction of the standard conv's MACs remains?",
    solution=_ratio,
    hint="1/c2 + 1/(h1*w1): c1 and the output size cancel.",
)(numeric_checker(_ratio, rtol=0.01))


def _rf() -> int:
    return receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])[0]


dilated_rf = exercise(
    "01.dilated_rf",
    prompt="Three stacked 3x3 convs (stride 1) with dilations 1, 2 and 4: how many input pixels wide is "
           "the receptive field of one output pixel?",
    solution=_rf,
    hint="each layer adds d*(k-1) pixels to the width, starting from 1.",
)(integer_checker(_rf, "pixels"))
