"""Argument checks shared by the public functions of ``lessons_lib`` (STYLE habit 5).

Every message names the parameter, the bad value and what is allowed, e.g.
``ValueError("groups=0 must be an int >= 1")``.
"""
from __future__ import annotations

import numbers


def int_at_least(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (bools excluded) ``>= minimum``.

    Raises ``TypeError`` for a non-integer and ``ValueError`` for one below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be an int >= {minimum}")
    return int(value)
