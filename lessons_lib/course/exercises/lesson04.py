"""Exercises of lesson 04 (Squeeze-and-Excitation)."""
from __future__ import annotations

from ..checks import exercise
from ..checks import integer_checker


def _se_params() -> int:
    from ...blocks.se import se_param_count

    c, r = 64, 4
    return se_param_count(c, c // r)  # the library's formula, itself tested against SqueezeExcite's parameters


se_params = exercise(
    "04.se_params",
    prompt="How many parameters has an SE block on C = 64 channels with reduction r = 4 (both FC layers with biases)?",
    solution=_se_params,
    hint="squeeze to s = C/r = 16: fc1 has C*s weights and s biases, fc2 has s*C weights and C biases.",
)(integer_checker(_se_params))


def _overhead_pct() -> float:
    # SE on the 240 expanded channels of InvertedResidual(40, 40, expanded 240): squeeze 64 (make_divisible(60, 8))
    e, s, cin, cout, k = 240, 64, 40, 40, 5
    se = 2 * e * s + s + e
    block = (cin * e + 2 * e) + (k * k * e + 2 * e) + (e * cout + 2 * cout)
    return 100.0 * se / block


def _check_pct(answer):
    from ..checks import numeric_checker
    return numeric_checker(_overhead_pct, rtol=0.02, unit="%")(answer)


se_overhead = exercise(
    "04.se_overhead",
    prompt="By what percent does SE (squeeze 64, hard-sigmoid) grow the parameters of "
           "InvertedResidual(40, 40, expanded 240, kernel 5)?",
    solution=_overhead_pct,
    hint="block without SE: 40*240 + 2*240 (expand) + 25*240 + 2*240 (depthwise) + 240*40 + 2*40 (project); "
         "SE: 2*240*64 + 64 + 240. Percent = 100 * SE / block.",
)(_check_pct)
