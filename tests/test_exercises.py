"""Every registered exercise checker accepts its reference answer and rejects wrong ones without raising."""
from __future__ import annotations

import pytest

import lessons_lib.course.exercises  # noqa: F401  (registers every lesson's exercises)
from lessons_lib.course.checks import EXERCISES, FAIL, PASS


def test_there_are_exercises():
    assert len(EXERCISES) >= 2


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
def test_reference_answer_passes(ex_id, capsys):
    ex = EXERCISES[ex_id]
    assert ex.check(ex.solution())
    assert PASS in capsys.readouterr().out


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
@pytest.mark.parametrize("wrong", [None, ..., "nonsense", -123456.789, object()])
def test_wrong_answers_print_a_hint_and_never_raise(ex_id, wrong, capsys):
    ex = EXERCISES[ex_id]
    assert not ex.check(wrong)
    out = capsys.readouterr().out
    assert FAIL in out and "Hint" in out


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
def test_every_exercise_belongs_to_a_lesson_and_has_a_prompt(ex_id):
    ex = EXERCISES[ex_id]
    assert ex_id[:2].isdigit() and ex.prompt and ex.hint


def test_numeric_checker_names_its_tolerance():
    from lessons_lib.course.checks import numeric_checker

    check = numeric_checker(lambda: 100.0, rtol=0.001, unit="ms")
    ok, msg = check(101.0)
    assert not ok and "off by more than 0.1 %" in msg and "100" not in msg.replace("101", "")  # no answer leaked
    assert check(100.05)[0] and numeric_checker(lambda: 5.0, rtol=0.02)(6.0)[1].endswith("more than 2 %.")
