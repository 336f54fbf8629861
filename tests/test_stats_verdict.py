"""stats.verdict / stats.best_of: the verdict helper the lessons use instead of max() over a tie.

Checked on constructed cases whose answer is known (a clear win, an exact tie, pure noise), against the
textbook Welch / paired t intervals computed here by hand, and for its false-alarm rate on noise."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from lessons_lib import stats


def welch_interval(a, b, conf=0.95):
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    t = sps.t.ppf(0.5 + conf / 2, dof)
    d = a.mean() - b.mean()
    return d - t * se, d + t * se


def test_interval_is_welchs_and_paired_ts():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.9, 0.02, 5), rng.normal(0.88, 0.03, 4)
    v = stats.verdict(a, b)
    lo, hi = welch_interval(a, b)
    assert v.lo == pytest.approx(lo, rel=1e-9) and v.hi == pytest.approx(hi, rel=1e-9)
    assert v.diff == pytest.approx(a.mean() - b.mean())
    c = a[:4] + rng.normal(0, 0.001, 4)
    p = stats.verdict(c, b, paired=True)
    d = c - b
    half = sps.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (p.lo, p.hi) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-9)


def test_clear_win_tie_and_direction():
    better = [0.95, 0.951, 0.949, 0.950]
    worse = [0.90, 0.902, 0.899, 0.901]
    v = stats.verdict(better, worse, names=("KD", "CE"))
    assert v.better == "KD" and v.verdict == "KD better" and "KD better" in v.text()
    assert stats.verdict(worse, better, names=("CE", "KD")).better == "KD"
    ms_fast, ms_slow = [1.0, 1.01, 0.99], [2.0, 2.02, 1.98]
    assert stats.verdict(ms_fast, ms_slow, names=("int8", "fp32"), higher_is_better=False).better == "int8"
    overlap = stats.verdict([0.90, 0.95, 0.85], [0.91, 0.86, 0.93], names=("A", "B"))
    assert overlap.better is None and overlap.verdict == stats.TIE and stats.TIE in overlap.text()
    same = stats.verdict([0.5, 0.5], [0.5, 0.5])
    assert same.better is None and same.lo == same.hi == 0.0
    exact = stats.verdict([0.6, 0.6], [0.5, 0.5])  # no spread at all: the difference is exact
    assert exact.better == "A"


def test_noise_rarely_declares_a_winner():
    """Two settings drawn from one distribution: a 95 % interval calls a winner in about 5 % of trials."""
    rng = np.random.default_rng(1)
    wins = sum(stats.verdict(rng.normal(0, 1, 5), rng.normal(0, 1, 5)).better is not None for _ in range(2000))
    assert 0.02 < wins / 2000 < 0.08


def test_best_of_lists_the_settings_tied_with_the_best():
    samples = {"max": [0.80, 0.81, 0.79], "entropy": [0.90, 0.92, 0.88], "mse": [0.91, 0.89, 0.90],
               "percentile": [0.85, 0.851, 0.849]}
    best, tied = stats.best_of(samples)
    assert best in ("entropy", "mse") and set(tied) == {"entropy", "mse"} - {best}
    best, tied = stats.best_of({"fast": [1.0, 1.01], "slow": [3.0, 3.1]}, higher_is_better=False)
    assert (best, tied) == ("fast", [])


@pytest.mark.parametrize("call, err, words", [
    (lambda: stats.verdict([1.0], [1.0, 2.0]), ValueError, "at least 2 replicates"),
    (lambda: stats.verdict([1.0, float("nan")], [1.0, 2.0]), ValueError, "finite"),
    (lambda: stats.verdict("ab", [1.0, 2.0]), TypeError, "a="),
    (lambda: stats.verdict([1.0, 2.0], [1.0, 2.0, 3.0], paired=True), ValueError, "paired=True"),
    (lambda: stats.verdict([1.0, 2.0], [1.0, 2.0], names=("A",)), ValueError, "names="),
    (lambda: stats.verdict([1.0, 2.0], [1.0, 2.0], confidence=0.8), ValueError, "confidence=0.8"),
    (lambda: stats.best_of({"a": [1.0, 2.0]}), ValueError, "at least 2 settings"),
    (lambda: stats.best_of([1, 2]), TypeError, "samples="),
])
def test_bad_inputs(call, err, words):
    with pytest.raises(err, match=None) as info:
        call()
    assert words in str(info.value)
