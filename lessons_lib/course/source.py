"""Show library code inside a lesson, so notebooks never redefine it (STYLE habit 8)."""
from __future__ import annotations

import inspect
from typing import Any


def source_of(obj: Any) -> str:
    """The source text of a function, class or module, as ``inspect.getsource`` gives it."""
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"obj={obj!r} has no Python source to show (built-in or C extension?)") from err


def show_source(obj: Any, *, lines: tuple[int, int] | None = None) -> None:
    """Display ``obj``'s source, syntax-highlighted in Jupyter, plain text elsewhere.

    ``lines=(a, b)`` keeps lines a..b (1-based, inclusive) of the source, for long classes.
    The header names the module (``lessons_lib.conv``), never a file path.
    """
    text = source_of(obj)
    if lines is not None:
        a, b = lines
        if not (1 <= a <= b):
            raise ValueError(f"lines={lines!r} must be (a, b) with 1 <= a <= b")
        text = "\n".join(text.splitlines()[a - 1 : b])
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
    header = f"# {module}.{name}" if name and module != name else f"# {module}"
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(header + "\n" + text, language="python"))
            return
    except ImportError:  # pragma: no cover - IPython is a dependency, but scripts may lack it
        pass
    print(header)
    print(text)
