"""Uncertainty of comparisons: is A better than B, or can we not tell at this budget?

Two kinds of evidence, one verdict vocabulary ("A better", "B better", :data:`TIE`):

* **Per-image, paired** (:func:`paired_difference`): two models evaluated on the same images. Per image,
  ``d_i = correct_A(i) - correct_B(i)`` is -1, 0 or +1, and the accuracy difference is ``mean(d)``. Its
  standard error ``sd(d) / sqrt(n)`` counts only the images on which the two disagree, so it is far smaller
  than comparing two independent accuracies would suggest. The interval is the normal approximation
  ``mean(d) +- z * se`` (McNemar's setting; with fewer than ~10 discordant images it is only indicative).

    d = stats.paired_difference(pred_int8 == y, pred_fp32 == y)
    print(d.text("int8 vs fp32"))
    # int8 vs fp32: -0.40 points (95% CI -0.93 to +0.13, 1000 images, 12 disagree): cannot tell apart at this budget

* **Replicates** (:func:`verdict`, :func:`best_of`): a number measured several times per setting --
  accuracy over training seeds, milliseconds over interleaved timing rounds -- compared with Student's *t*
  interval on the mean difference (Welch's, or paired when replicate ``i`` of both shares a seed / round).

    v = stats.verdict(acc_kd, acc_ce, names=("CE+KD", "CE"))       # accuracies over 3 seeds each
    print(v.text())   # CE+KD - CE: +0.012 (95% CI -0.020 to +0.044, 3 vs 3 replicates): cannot tell apart ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import validate as V

_Z = {0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}
TIE = "cannot tell apart at this budget"
"""The verdict when an interval contains 0: more seeds, images or repeats might separate the two, or not."""


@dataclass(frozen=True)
class PairedDifference:
    """``diff = acc_A - acc_B`` (fractions), its interval ``[lo, hi]``, ``n`` images, ``discordant`` images."""

    diff: float
    lo: float
    hi: float
    n: int
    discordant: int
    confidence: float

    @property
    def verdict(self) -> str:
        """"A better", "B better" or :data:`TIE` (the interval contains 0)."""
        if self.lo > 0:
            return "A better"
        if self.hi < 0:
            return "B better"
        return TIE

    def text(self, label: str, a: str = "A", b: str = "B") -> str:
        """One line: the difference in points, its interval, ``n``, the discordant count and the verdict.

        Args:
            label: the text before the colon.
            a, b: the names of models A and B in the verdict.

        Returns:
            ``str``.
        """
        v = self.verdict.replace("A better", f"{a} better").replace("B better", f"{b} better")
        return (f"{label}: {100 * self.diff:+.2f} points ({round(100 * self.confidence)}% CI {100 * self.lo:+.2f} to "
                f"{100 * self.hi:+.2f}, {self.n} images, {self.discordant} disagree): {v}")


def paired_difference(correct_a, correct_b, *, confidence: float = 0.95) -> PairedDifference:
    """Paired accuracy difference of two models on the same ``n`` images (boolean arrays, True = correct).

    Args:
        correct_a: per-image correctness of model A, a non-empty 1-d boolean array (``ndarray``, list or tensor).
        correct_b: the same for model B, for the same images in the same order.
        confidence: the interval's confidence level, one of 0.9, 0.95 and 0.99.

    Returns:
        :class:`PairedDifference` of ``acc_A - acc_B`` (fractions) with its interval (infinite when ``n == 1``).
    """
    V.choice("confidence", confidence, sorted(_Z))
    a = V.array("correct_a", correct_a, dtype=None)
    b = V.array("correct_b", correct_b, dtype=None)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"correct_a={V.show(a)} and correct_b={V.show(b)} must be non-empty 1-D arrays of one length")
    if a.dtype != bool or b.dtype != bool:
        raise TypeError(f"correct_a={V.show(a)} and correct_b={V.show(b)} must be boolean arrays, "
                        f"got {a.dtype} and {b.dtype}")
    d = a.astype(np.float64) - b.astype(np.float64)
    n = d.size
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
    half = _Z[confidence] * se
    return PairedDifference(mean, mean - half, mean + half, n, int((d != 0).sum()), confidence)


# ------------------------------------------------------------------------------ replicates: seeds, timings


@dataclass(frozen=True)
class Verdict:
    """``mean(a) - mean(b)`` over replicates (seeds, interleaved timing rounds) with its interval.

    ``better`` is the name of the better side or ``None`` when the interval contains 0 (a tie at this
    budget: more seeds or repeats might separate them, or not).
    """

    a: str
    b: str
    diff: float
    lo: float
    hi: float
    confidence: float
    n_a: int
    n_b: int
    paired: bool
    higher_is_better: bool
    unit: str = ""

    @property
    def better(self) -> str | None:
        if self.lo > 0:
            return self.a if self.higher_is_better else self.b
        if self.hi < 0:
            return self.b if self.higher_is_better else self.a
        return None

    @property
    def verdict(self) -> str:
        """``"<a> better"``, ``"<b> better"`` or :data:`TIE`."""
        return TIE if self.better is None else f"{self.better} better"

    def text(self, digits: int = 2) -> str:
        """One line: the difference, its interval, the replicates and the verdict."""
        u = f" {self.unit}" if self.unit else ""
        how = f"{self.n_a} paired replicates" if self.paired else f"{self.n_a} vs {self.n_b} replicates"
        return (f"{self.a} - {self.b}: {self.diff:+.{digits}f}{u} ({round(100 * self.confidence)}% CI "
                f"{self.lo:+.{digits}f} to {self.hi:+.{digits}f}, {how}): {self.verdict}")


def _samples(name: str, values: object) -> np.ndarray:
    arr = V.array(name, values, ndim=1, non_empty=True).astype(np.float64)
    if len(arr) < 2:
        raise ValueError(f"{name}={V.show(values)} must hold at least 2 replicates (seeds or repeats) "
                         "to estimate their spread")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}={V.show(values)} must hold finite values")
    return arr


def verdict(a, b, *, names: tuple[str, str] = ("A", "B"), higher_is_better: bool = True, paired: bool = False,
            confidence: float = 0.95, unit: str = "") -> Verdict:
    """Which of two settings is better, from replicates of each, or "cannot tell apart at this budget".

    The interval is Student's *t* on the mean difference: Welch's (unequal variances) for independent
    replicates, the paired *t* for ``paired=True`` (replicate ``i`` of ``a`` and of ``b`` share a seed or a
    timing round). Both are ``scipy.stats``' own (``ttest_ind(equal_var=False)`` / ``ttest_rel``
    ``.confidence_interval``). A setting is "better" only when the whole interval is on its side of 0.
    Identical replicates (zero spread) give a zero-width interval: any difference then decides.

    Args:
        a, b: 1-D sequences (list, array, tensor) of >= 2 finite replicates each: accuracies over seeds,
            milliseconds over interleaved rounds ...; equal lengths when ``paired``.
        names: display names of ``a`` and ``b``.
        higher_is_better: True for accuracies, False for latencies / losses.
        paired: replicates are matched one to one (same seed, same timing round).
        confidence: 0.9, 0.95 or 0.99.
        unit: appended to the numbers in :meth:`Verdict.text` (``"points"``, ``"ms"``).

    Returns:
        :class:`Verdict` with ``diff = mean(a) - mean(b)``, its interval and ``verdict``.
    """
    from scipy import stats as sps

    x, y = _samples("a", a), _samples("b", b)
    names = V.sequence("names", names, V.string)
    if len(names) != 2:
        raise ValueError(f"names={names!r} must be two names (for a and b)")
    V.boolean("higher_is_better", higher_is_better)
    V.boolean("paired", paired)
    V.choice("confidence", confidence, sorted(_Z))
    V.string("unit", unit)
    if paired and len(x) != len(y):
        raise ValueError(f"paired=True needs replicates of equal length, got len(a)={len(x)} and len(b)={len(y)}")
    d = x - y if paired else None
    diff = float(d.mean()) if paired else float(x.mean() - y.mean())
    spread = float(d.std()) if paired else float(x.std() + y.std())
    if spread == 0.0:  # scipy returns NaN for zero variance; the difference is then exact
        lo = hi = diff
    else:
        res = sps.ttest_rel(x, y) if paired else sps.ttest_ind(x, y, equal_var=False)
        ci = res.confidence_interval(confidence_level=confidence)
        lo, hi = float(ci.low), float(ci.high)
    return Verdict(names[0], names[1], diff, lo, hi, confidence, len(x), len(y), paired, higher_is_better, unit)


def best_of(samples, *, higher_is_better: bool = True, paired: bool = False,
            confidence: float = 0.95) -> tuple[str, list[str]]:
    """The setting with the best mean, and the others that cannot be told apart from it.

    Each setting is compared with the best by :func:`verdict` (no multiple-comparison correction: a tie
    here means "not shown different", which is the cautious reading for a lesson).

    Args:
        samples: ``{name: replicates}`` with >= 2 settings, each as in :func:`verdict`.
        higher_is_better, paired, confidence: as in :func:`verdict`.

    Returns:
        ``(best, tied)``: the best name and the list of names tied with it (empty when it wins outright).
    """
    V.mapping("samples", samples, non_empty=True)
    if len(samples) < 2:
        raise ValueError(f"samples={V.show(samples)} must hold at least 2 settings to compare")
    arrays = {V.string("samples key", k): _samples(f"samples[{k!r}]", v) for k, v in samples.items()}
    V.boolean("higher_is_better", higher_is_better)
    sign = 1.0 if higher_is_better else -1.0
    best = max(arrays, key=lambda k: sign * arrays[k].mean())
    tied = [k for k in arrays if k != best and verdict(arrays[best], arrays[k], names=(best, k),
                                                       higher_is_better=higher_is_better, paired=paired,
                                                       confidence=confidence).better is None]
    return best, tied
