"""stats.paired_difference against a direct computation and against simulated coverage."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib import stats


def test_matches_the_paired_formula_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.9, rng.random(500) < 0.85
    d = stats.paired_difference(a, b)
    diffs = a.astype(int) - b.astype(int)
    se = np.std(diffs, ddof=1) / math.sqrt(500)
    assert d.diff == pytest.approx(a.mean() - b.mean())
    assert d.lo == pytest.approx(d.diff - 1.959963984540054 * se) and d.hi == pytest.approx(d.diff + 1.959963984540054 * se)
    assert d.discordant == int((a != b).sum()) and d.n == 500


def test_verdicts():
    same = np.ones(100, bool)
    assert stats.paired_difference(same, same).verdict == stats.TIE  # no disagreement: interval [0, 0]
    worse = same.copy()
    worse[:30] = False
    assert stats.paired_difference(worse, same).verdict == "B better"
    assert stats.paired_difference(same, worse).verdict == "A better"
    one = same.copy()
    one[0] = False
    assert stats.paired_difference(one, same).verdict == stats.TIE  # one image of 100
    assert "int8 better" in stats.paired_difference(same, worse).text("x", "int8", "fp32")


def test_coverage_near_nominal():
    # two models with a true difference of 2 points; the 95% interval must cover it ~95% of the time
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(400):
        u = rng.random(1000)
        a, b = u < 0.92, u < 0.90  # paired: A right whenever B is, plus 2 % more
        flip = rng.random(1000) < 0.05  # some images where they disagree the other way
        b = np.where(flip & a, ~b, b)
        d = stats.paired_difference(a, b)
        # P(b) of this construction: b = (u < 0.90), flipped where flip & a: 0.90 - 0.05 * 0.90 + 0.05 * 0.02
        p_b = 0.90 + 0.05 * (0.92 - 0.90) - 0.05 * 0.90
        hits += d.lo <= 0.92 - p_b <= d.hi
    assert 0.92 <= hits / 400 <= 0.98


@pytest.mark.parametrize("args, kw, err, words", [
    (([True], [True, False]), {}, ValueError, "must be non-empty 1-D arrays of one length"),
    (([], []), {}, ValueError, "non-empty"),
    (([1, 0], [1, 1]), {}, TypeError, "boolean arrays"),
    (([True], [True]), {"confidence": 0.8}, ValueError, "confidence=0.8"),
])
def test_bad_inputs(args, kw, err, words):
    with pytest.raises(err, match=words):
        stats.paired_difference(*args, **kw)
