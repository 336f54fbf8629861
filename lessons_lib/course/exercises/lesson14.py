"""Exercises of lesson 14 (knowledge distillation)."""
from __future__ import annotations

import math

from ..checks import exercise, numeric_checker

LOGITS = (4.0, 1.0, 0.0)


def _p_second(T: float = 2.0) -> float:
    e = [math.exp(z / T) for z in LOGITS]
    return e[1] / sum(e)


soft_probability = exercise(
    "14.soft_probability",
    prompt=f"A teacher outputs logits {LOGITS}. With temperature T = 2, what probability does the softened "
           "softmax give the second class?",
    solution=_p_second,
    hint="p_i = exp(z_i / T) / sum_j exp(z_j / T); divide every logit by 2 first.",
)(numeric_checker(_p_second, rtol=1e-3))


def _kd_value() -> float:
    T = 2.0
    s, t = (1.0, 2.0, 3.0), (3.0, 2.0, 1.0)
    def soft(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]
    ps, pt = soft(s), soft(t)
    return T * T * sum(b * math.log(b / a) for a, b in zip(ps, pt))


kd_value = exercise(
    "14.kd_value",
    prompt="Student logits (1, 2, 3), teacher logits (3, 2, 1), T = 2, batch of one: what is "
           "kd_loss = T^2 * KL(p_teacher || p_student)?",
    solution=_kd_value,
    hint="soften both with T = 2, then sum p_t * (log p_t - log p_s) and multiply by T^2 = 4.",
)(numeric_checker(_kd_value, rtol=1e-3))
