"""lessons_lib.validate: the shared argument check names the parameter, the value and the rule."""
import numpy as np
import pytest

from lessons_lib.validate import int_at_least


@pytest.mark.parametrize("value, minimum", [(1, 1), (7, 2), (np.int64(3), 1), (0, 0)])
def test_accepts_integers_at_or_above_the_minimum(value, minimum):
    out = int_at_least("n", value, minimum)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, err", [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("4", TypeError),
                                        (True, TypeError), (None, TypeError)])
def test_rejects_with_a_message_naming_parameter_value_and_rule(value, err):
    with pytest.raises(err) as info:
        int_at_least("groups", value)
    assert str(info.value) == f"groups={value!r} must be an int >= 1"
