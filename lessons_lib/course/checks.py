"""Verdicts against trusted references, and exercise checkers.

Two kinds of check live here:

* :func:`compare` prints a one-line verdict such as
  ``SE params: ours 2128, torchvision 2128, match: True`` and returns the boolean. Lessons use it
  to check a formula against torch / torchvision / onnxruntime.
* :class:`Exercise` wraps a reader's answer check. A checker prints ✔ or ✘ with a hint and
  returns a bool; it **never raises**, whatever the reader passes in. Every exercise is registered
  in :data:`EXERCISES` with a reference solution, and ``tests/test_exercises.py`` feeds each
  checker its reference answer.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

PASS, FAIL = "✔", "✘"


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}".replace(",", "_") if abs(int(x)) >= 10**6 else str(int(x))
    if isinstance(x, numbers.Real):
        return f"{float(x):.6g}"
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return _fmt(x.item())
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__}{tuple(x.shape)}"
    return repr(x)


def close(ours: Any, ref: Any, *, rtol: float = 0.0, atol: float = 0.0) -> tuple[bool, float]:
    """(match, max abs difference) for numbers, tuples, arrays or tensors."""
    if isinstance(ours, (torch.Tensor, np.ndarray)) or isinstance(ref, (torch.Tensor, np.ndarray)):
        a = torch.as_tensor(np.asarray(ours) if isinstance(ours, np.ndarray) else ours).detach().double().cpu()
        b = torch.as_tensor(np.asarray(ref) if isinstance(ref, np.ndarray) else ref).detach().double().cpu()
        if a.shape != b.shape:
            return False, math.inf
        diff = (a - b).abs()
        ok = bool(torch.all(diff <= atol + rtol * b.abs()))
        return ok, float(diff.max()) if diff.numel() else 0.0
    if isinstance(ours, (list, tuple)) and isinstance(ref, (list, tuple)):
        if len(ours) != len(ref):
            return False, math.inf
        pairs = [close(o, r, rtol=rtol, atol=atol) for o, r in zip(ours, ref)]
        return all(p[0] for p in pairs), max((p[1] for p in pairs), default=0.0)
    if isinstance(ours, numbers.Real) and isinstance(ref, numbers.Real):
        d = abs(float(ours) - float(ref))
        return d <= atol + rtol * abs(float(ref)), d
    return ours == ref, 0.0 if ours == ref else math.inf


FLOAT_RTOL = 1e-6  # two implementations of one float formula agree to this on every CPU (not bit for bit)


def _is_exact(x: Any) -> bool:
    """Values whose printed form is the same on every machine: bools, ints, strings, and sequences of them."""
    if isinstance(x, (bool, str, numbers.Integral)) or x is None:
        return True
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return not x.is_floating_point() and not x.is_complex()
    if isinstance(x, (list, tuple)):
        return all(_is_exact(v) for v in x)
    return False


def _tol_text(rtol: float, atol: float) -> str:
    parts = [f"rtol {rtol:g}" if rtol else "", f"atol {atol:g}" if atol else ""]
    return "within " + " + ".join(p for p in parts if p) if (rtol or atol) else "exactly equal"


def compare(label: str, ours: Any, reference: Any, *, ref_name: str = "reference",
            rtol: float = 0.0, atol: float = 0.0, show_values: bool = False) -> bool:
    """Print a one-line verdict and return the match.

    The line prints only what is identical on every CPU, thread count and supported version, so that
    cells of verdicts can be checked by nbval:

    * exact values (ints, bools, strings, tuples of them) print both sides:
      ``SE params: ours 2128, torchvision 2128, match: True``;
    * floats print the tolerance and the verdict, not the values (their last digits depend on the
      CPU's kernels): ``KL: ours vs scipy within rtol 1e-09, match: True``. Without ``rtol``/``atol``
      two floats are compared within ``rtol=FLOAT_RTOL``; ``show_values=True`` prints them too (for
      values exact in binary, such as ``2**-24``, or in cells whose output is not checked);
    * tensors print their shape and the tolerance (``exactly equal`` without one), not the difference.
    """
    tensor = isinstance(ours, (torch.Tensor, np.ndarray)) and getattr(ours, "ndim", 0) > 0
    floats = not tensor and not (_is_exact(ours) and _is_exact(reference))
    if floats and not rtol and not atol and isinstance(ours, numbers.Real) and isinstance(reference, numbers.Real):
        rtol = FLOAT_RTOL
    ok, _ = close(ours, reference, rtol=rtol, atol=atol)
    if tensor:
        print(f"{label}: ours {_fmt(ours)} vs {ref_name}, {_tol_text(rtol, atol)}, match: {ok}")
    elif floats and not show_values:
        print(f"{label}: ours vs {ref_name} {_tol_text(rtol, atol)}, match: {ok}")
    else:
        tail = f" ({_tol_text(rtol, atol)})" if floats else ""
        print(f"{label}: ours {_fmt(ours)}, {ref_name} {_fmt(reference)}{tail}, match: {ok}")
    return ok


# --------------------------------------------------------------------------------------- exercises
class CheckResult:
    """The outcome of an exercise check: truthy when correct, displays nothing in Jupyter
    (the checker already printed its ✔/✘ line)."""

    __slots__ = ("ok",)

    def __init__(self, ok: bool):
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return self.ok == bool(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"CheckResult(ok={self.ok})"

    def _ipython_display_(self) -> None:
        pass


@dataclass
class Exercise:
    """An exercise: its id (``"00.pi_time"``), a checker and a reference solution.

    ``check(answer)`` returns a truthy/falsy :class:`CheckResult`, prints ✔/✘ with the hint, and never raises.
    ``solution()`` returns the reference answer (used by the tests, and by readers who give up).
    """

    id: str
    prompt: str
    checker: Callable[[Any], tuple[bool, str]]
    solution: Callable[[], Any]
    hint: str = ""
    attempts: list = field(default_factory=list, repr=False)

    def check(self, answer: Any) -> CheckResult:
        try:
            if answer is None or answer is Ellipsis:
                ok, msg = False, "no answer yet: replace the ... / None with your answer"
            else:
                ok, msg = self.checker(answer)
        except Exception as err:  # a checker must never raise at the reader
            ok, msg = False, f"could not check that answer ({type(err).__name__}: {err})"
        self.attempts.append(ok)
        if ok:
            print(f"{PASS} {self.id}: correct. {msg}".rstrip())
        else:
            print(f"{FAIL} {self.id}: not yet. {msg} Hint: {self.hint}".rstrip())
        return CheckResult(ok)

    __call__ = check


EXERCISES: dict[str, Exercise] = {}


def exercise(id: str, *, prompt: str, solution: Callable[[], Any], hint: str = ""):
    """Decorator registering ``checker(answer) -> (ok, message)`` as an :class:`Exercise`."""

    def wrap(checker: Callable[[Any], tuple[bool, str]]) -> Exercise:
        if id in EXERCISES:
            raise ValueError(f"exercise id={id!r} is registered twice")
        ex = Exercise(id=id, prompt=prompt, checker=checker, solution=solution, hint=hint)
        EXERCISES[id] = ex
        return ex

    return wrap


def numeric_checker(expected: Callable[[], float], *, rtol: float = 0.01, unit: str = ""):
    """A checker for a single number within a relative tolerance."""

    def check(answer: Any) -> tuple[bool, str]:
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if not isinstance(answer, numbers.Real) or isinstance(answer, bool):
            return False, f"expected a number, got {type(answer).__name__}."
        want = float(expected())
        ok = abs(float(answer) - want) <= rtol * abs(want) + 1e-12
        return ok, (f"{float(answer):.6g} {unit}".strip() + ("" if ok else f" is off by more than {100 * rtol:g} %."))

    return check


def integer_checker(expected: Callable[[], int], unit: str = ""):
    """A checker for an exact whole number (a float with an integral value is accepted)."""
    unit_s = f" {unit}" if unit else ""

    def check(answer: Any) -> tuple[bool, str]:
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
            return False, f"expected a whole number{unit_s}, got {type(answer).__name__}."
        if not math.isfinite(float(answer)) or float(answer) != int(float(answer)):
            return False, f"{answer} is not a whole number{unit_s}."
        want = int(expected())
        if int(answer) == want:
            return True, f"{int(answer):,}{unit_s}."
        return False, f"{int(answer):,}{unit_s} is {'too high' if answer > want else 'too low'}."

    return check
