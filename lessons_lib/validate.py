"""Argument checks shared by the public functions of ``lessons_lib``: one error contract (STYLE habit 5).

* A value of the wrong **type** raises ``TypeError``; a value of the right type that is not allowed
  raises ``ValueError``. Nothing else (no ``IndexError``, ``KeyError``, ``AttributeError``, ``'<' not
  supported`` or torch error) should reach the caller of a public function given a bad argument.
* Every message reads ``name=value must be ...``: the parameter, the bad value and what is allowed, e.g.
  ``ValueError("groups=0 must be an int >= 1")``. Numbers, strings and short lists are shown as
  ``repr``; tensors as ``Tensor[2, 3] float32``; other objects by their type name (``model=str``).
* NumPy scalars (``np.int64``, ``np.float32``, ``np.bool_``) are accepted wherever Python numbers and
  bools are; a ``bool`` is never a number.

Each check returns the value in the form the caller should use (``int``, ``float``, ``bool``, a
``torch.device``, a ``list`` ...). This module does not import torch: the tensor, module and device
checks look torch up only when they run (an object can only be a tensor once torch is imported).
"""
from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

__all__ = [
    "show", "int_at_least", "integer", "real", "boolean", "choice", "string", "path", "tensor", "array",
    "device", "function", "module", "instance", "sequence", "iterable", "mapping",
]

_SHORT = 60  # longest repr shown in a message; longer containers are shown by their type name


def _torch():
    return sys.modules.get("torch")


def _np():
    return sys.modules.get("numpy")


def _is_np_scalar(value: object) -> bool:
    np = _np()
    return np is not None and isinstance(value, np.generic)


def show(value: object) -> str:
    """How a value is written after ``name=`` in a message (see the module docstring)."""
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return f"Tensor[{', '.join(str(d) for d in value.shape)}] {str(value.dtype).replace('torch.', '')}"
    np = _np()
    if np is not None and isinstance(value, np.ndarray):
        return f"ndarray[{', '.join(str(d) for d in value.shape)}] {value.dtype}"
    if _is_np_scalar(value):
        return repr(value.item())
    if value is None or isinstance(value, (bool, numbers.Number, str, bytes)):
        text = repr(value)
        return text if len(text) <= 2 * _SHORT else text[:2 * _SHORT] + "..."
    if isinstance(value, (list, tuple, dict, set, frozenset, range)):
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 -- a broken __repr__ must not hide the real error
            text = ""
        if text and len(text) <= _SHORT and "\n" not in text:
            return text
    return type(value).__name__


# ------------------------------------------------------------------------------------- numbers
def _int_rule(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an int in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an int >= {minimum}"
    if maximum is not None:
        return f"an int <= {maximum}"
    return "an int"


def integer(name: str, value: object, minimum: int | None = None, maximum: int | None = None, *,
            none_ok: bool = False) -> int | None:
    """``value`` as an ``int`` (bools excluded, NumPy integers accepted) in ``[minimum, maximum]``.

    ``none_ok=True`` lets ``None`` through (returned as ``None``).
    """
    if value is None and none_ok:
        return None
    rule = ("None or " if none_ok else "") + _int_rule(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={show(value)} must be {rule}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name}={show(value)} must be {rule}")
    return int(value)


def int_at_least(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (bools excluded) ``>= minimum``.

    Raises ``TypeError`` for a non-integer and ``ValueError`` for one below ``minimum``.
    """
    return integer(name, value, minimum)


def _real_rule(low, high, low_open: bool, high_open: bool, finite: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    kind = "a finite number" if finite else "a number"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high}"
    return kind


def real(name: str, value: object, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False, finite: bool = True, none_ok: bool = False) -> float | None:
    """``value`` as a ``float``: a real number (ints and NumPy scalars accepted, bools not), never NaN,
    finite unless ``finite=False``, within ``low`` / ``high`` (closed bounds unless ``low_open`` /
    ``high_open``). ``none_ok=True`` lets ``None`` through."""
    if value is None and none_ok:
        return None
    rule = ("None or " if none_ok else "") + _real_rule(low, high, low_open, high_open, finite)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={show(value)} must be {rule}")
    v = float(value)
    bad = (math.isnan(v) or (finite and math.isinf(v))
           or (low is not None and (v <= low if low_open else v < low))
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        raise ValueError(f"{name}={show(value)} must be {rule}")
    return v


# --------------------------------------------------------------------------------- flags, names
def boolean(name: str, value: object, *, none_ok: bool = False) -> bool | None:
    """``value`` as a ``bool``: ``True`` / ``False`` or a NumPy bool (not 0 / 1, not a string)."""
    if value is None and none_ok:
        return None
    np = _np()
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}={show(value)} must be {'None or ' if none_ok else ''}a bool (True or False)")


def choice(name: str, value: object, choices: Iterable, *, none_ok: bool = False):
    """``value`` if it is one of ``choices`` (strings, or numbers), else ``ValueError``.

    A value of another type than the choices (an int where names are expected, a string where numbers
    are) raises ``TypeError``.
    """
    options = list(choices)
    if value is None and none_ok:
        return None
    text = f"{name}={show(value)} must be {'None or ' if none_ok else ''}one of {options}"
    if options and all(isinstance(c, str) for c in options):
        if not isinstance(value, str):
            raise TypeError(text)
    elif options and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in options):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(text)
        value = int(value)
    elif options and all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in options):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(text)
        value = float(value)
    try:
        ok = value in options
    except TypeError:  # an unhashable / incomparable value is simply not one of them
        ok = False
    if not ok:
        raise ValueError(text)
    return value


def string(name: str, value: object, *, non_empty: bool = False, none_ok: bool = False) -> str | None:
    """``value`` if it is a ``str`` (non-empty if asked)."""
    if value is None and none_ok:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name}={show(value)} must be {'None or ' if none_ok else ''}a str")
    if non_empty and not value:
        raise ValueError(f"{name}={value!r} must be a non-empty str")
    return value


def path(name: str, value: object, *, none_ok: bool = False):
    """``value`` if it is a file-system path (a ``str`` or an ``os.PathLike`` such as ``pathlib.Path``)."""
    if value is None and none_ok:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}={show(value)} must be {'None or ' if none_ok else ''}a path (str or pathlib.Path)")
    if isinstance(value, str) and not value:
        raise ValueError(f"{name}='' must be a non-empty path")
    return value


# ------------------------------------------------------------------------------------ tensors
_DTYPE_KINDS = {
    "floating": ("a floating-point dtype (e.g. torch.float32)", lambda t: t.is_floating_point()),
    "integer": ("an integer dtype (e.g. torch.int32)",
                lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != _torch().bool),
    "bool": ("dtype torch.bool", lambda t: t.dtype == _torch().bool),
    "number": ("a real dtype (not bool or complex)", lambda t: not t.is_complex() and t.dtype != _torch().bool),
}


def _ndim_text(ndim, layout: str | None) -> str:
    if layout is not None:
        return f"a {layout}"
    if isinstance(ndim, int):
        return f"a {ndim}-d tensor"
    return f"a tensor with {' or '.join(str(d) for d in ndim)} dimensions"


def tensor(name: str, value: object, *, dtype=None, ndim: int | Sequence[int] | None = None,
           layout: str | None = None, non_empty: bool = False, none_ok: bool = False):
    """``value`` if it is a ``torch.Tensor`` with the asked dtype and number of dimensions.

    ``dtype``: ``None`` (any), a kind -- ``"floating"``, ``"integer"`` (not bool), ``"bool"``,
    ``"number"`` (not bool / complex) -- or a collection of ``torch.dtype``. ``ndim``: an int or the
    allowed ints; ``layout`` (e.g. ``"Tensor[N, C, H, W]"``) names the shape in the message and, without
    ``ndim``, sets it (4 here). A wrong type or dtype raises ``TypeError``; a wrong rank or an empty
    tensor (``non_empty=True``) ``ValueError``.
    """
    if value is None and none_ok:
        return None
    torch = _torch()
    if torch is None or not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}={type(value).__name__} must be {'None or ' if none_ok else ''}a torch.Tensor")
    if dtype is not None:
        if isinstance(dtype, str):
            what, ok = _DTYPE_KINDS[dtype]
            good = ok(value)
        else:
            allowed = tuple(dtype) if isinstance(dtype, (tuple, list, set, frozenset)) else (dtype,)
            what = "dtype " + " or ".join(str(d) for d in allowed)
            good = value.dtype in allowed
        if not good:
            raise TypeError(f"{name}={show(value)} has dtype={value.dtype}; it must have {what}")
    if ndim is None and layout is not None and layout.endswith("]") and "[" in layout:
        ndim = layout[layout.index("[") + 1:-1].count(",") + 1
    if ndim is not None:
        allowed_nd = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed_nd:
            raise ValueError(f"{name}={show(value)} must be {_ndim_text(ndim, layout)}")
    if non_empty and value.numel() == 0:
        raise ValueError(f"{name}={show(value)} is empty; need at least one value")
    return value


def array(name: str, value: object, *, ndim: int | None = None, dtype: str | None = "number",
          non_empty: bool = False):
    """``value`` as a NumPy array: an ``ndarray``, a list / tuple of numbers, or a CPU tensor.

    ``dtype``: ``"number"`` (ints, floats; not bool, not objects), ``"bool"``, or ``None`` (anything but
    objects / strings). A wrong type or dtype raises ``TypeError``; a ragged list, a wrong ``ndim`` or an
    empty array (``non_empty=True``) ``ValueError``.
    """
    import numpy as np

    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
    elif isinstance(value, (np.ndarray, list, tuple)) or _is_np_scalar(value):
        try:
            arr = np.asarray(value)
        except ValueError as err:
            raise ValueError(f"{name}={show(value)} is not a rectangular array ({err})") from None
    else:
        raise TypeError(f"{name}={show(value)} must be an array (numpy array, list or tensor)")
    if arr.dtype.kind in "OSUVc" or (dtype == "number" and arr.dtype.kind == "b" and arr.size):
        raise TypeError(f"{name}={show(value)} has dtype {arr.dtype}; it must hold "
                        f"{'booleans' if dtype == 'bool' else 'real numbers'}")
    if dtype == "bool" and arr.dtype != np.bool_ and arr.size:
        raise TypeError(f"{name}={show(value)} has dtype {arr.dtype}; it must be a boolean array")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}={show(value)} must be {ndim}-d, got shape {arr.shape}")
    if non_empty and arr.size == 0:
        raise ValueError(f"{name}={show(value)} is empty; need at least one value")
    return arr


# ------------------------------------------------------------------------------ devices, objects
def device(name: str, value: object):
    """``value`` as a ``torch.device``: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` or a ``torch.device`` (:func:`lessons_lib.machine.resolve_device`)."""
    from .machine import resolve_device

    try:
        return resolve_device(value)
    except (TypeError, ValueError) as err:
        if name == "device":
            raise
        raise type(err)(str(err).replace("device=", f"{name}=", 1)) from None


def function(name: str, value: object, *, none_ok: bool = False) -> Callable | None:
    """``value`` if it is callable (a function, a lambda, an ``nn.Module`` ...)."""
    if value is None and none_ok:
        return None
    if not callable(value):
        raise TypeError(f"{name}={show(value)} must be {'None or ' if none_ok else ''}callable")
    return value


def instance(name: str, value: object, types: type | tuple[type, ...], what: str, *, none_ok: bool = False):
    """``value`` if ``isinstance(value, types)``; else ``TypeError("name=<type> must be <what>")``."""
    if value is None and none_ok:
        return None
    if not isinstance(value, types):
        raise TypeError(f"{name}={type(value).__name__} must be {'None or ' if none_ok else ''}{what}")
    return value


def module(name: str, value: object, types: type | tuple[type, ...] | None = None, what: str | None = None, *,
           none_ok: bool = False):
    """``value`` if it is a ``torch.nn.Module`` (or one of ``types``, e.g. ``nn.Conv2d``)."""
    if value is None and none_ok:
        return None
    torch = _torch()
    if types is None:
        types, what = (torch.nn.Module if torch is not None else ()), what or "a torch.nn.Module"
    elif what is None:
        names = [t.__name__ for t in (types if isinstance(types, tuple) else (types,))]
        what = " or ".join(f"an nn.{n}" for n in names)
    if torch is None or not isinstance(value, types):
        raise TypeError(f"{name}={type(value).__name__} must be {'None or ' if none_ok else ''}{what}")
    return value


# -------------------------------------------------------------------------------- containers
def sequence(name: str, value: object, item: Callable[[str, Any], Any] | None = None, *, min_len: int = 1,
             what: str = "list") -> list:
    """``value`` as a ``list``: a list, tuple, range, 1-d array or other sequence (not a string or a
    mapping) of at least ``min_len`` items, each passed through ``item(f"{name}[{i}]", v)`` if given."""
    np = _np()
    if isinstance(value, (str, bytes, Mapping)) or not (
            isinstance(value, Sequence) or (np is not None and isinstance(value, np.ndarray) and value.ndim == 1)):
        raise TypeError(f"{name}={show(value)} must be a {what} (list or tuple)")
    items = list(value)
    if len(items) < min_len:
        need = "non-empty" if min_len == 1 else f"at least {min_len}-long"
        raise ValueError(f"{name}={show(value)} must be a {need} {what}")
    if item is not None:
        items = [item(f"{name}[{i}]", v) for i, v in enumerate(items)]
    return items


def iterable(name: str, value: object, *, what: str = "an iterable (a list, a generator, a DataLoader ...)"):
    """``value`` if it can be iterated over (and is not a string); it is not consumed here."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name}={show(value)} must be {what}")
    return value


def mapping(name: str, value: object, *, non_empty: bool = False, what: str = "a mapping (dict)"):
    """``value`` if it is a mapping (a ``dict`` ...), non-empty if asked."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}={show(value)} must be {what}")
    if non_empty and not value:
        raise ValueError(f"{name}={show(value)} must be a non-empty {what.removeprefix('a ')}")
    return value
