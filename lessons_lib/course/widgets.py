"""Thin widget shells over tested functions (STYLE habit 11).

Convention used by the browser test (``tests/test_browser.py``) and the lesson template:

* every lesson builds its main control panel with :func:`interactive_panel`; its **first slider**
  (or, in a panel without sliders, its first control) gets the CSS class ``lesson-primary`` and the
  output it drives the class ``lesson-output``;
* the browser test finds the first ``.lesson-primary`` element of a notebook, changes it (a slider
  one step to the right, a dropdown to its next option, a checkbox toggled) and asserts that the
  ``.lesson-output`` in the same panel changed (text or image).

A headless run (papermill, nbval) still calls the function once with the initial values.
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

PRIMARY_CLASS = "lesson-primary"
OUTPUT_CLASS = "lesson-output"


def int_slider(description: str, value: int, min: int, max: int, step: int = 1, **kw: Any) -> W.IntSlider:
    return W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                       continuous_update=False, style={"description_width": "initial"}, **kw)


def float_slider(description: str, value: float, min: float, max: float, step: float, **kw: Any) -> W.FloatSlider:
    return W.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                         continuous_update=False, style={"description_width": "initial"}, **kw)




def dropdown(description: str, options, value=None, **kw: Any) -> W.Dropdown:
    opts = list(options)
    return W.Dropdown(options=opts, value=opts[0] if value is None else value, description=description,
                      style={"description_width": "initial"}, **kw)


SLIDERS = (W.IntSlider, W.FloatSlider, W.FloatLogSlider, W.SelectionSlider)


def primary_control(controls: dict[str, W.Widget]) -> W.Widget:
    """The first slider in ``controls`` (insertion order), else the first control."""
    if not controls:
        raise ValueError("controls={} is empty: a panel needs at least one control")
    return next((w for w in controls.values() if isinstance(w, SLIDERS)), next(iter(controls.values())))


def interactive_panel(fn: Callable[..., Any], **controls: W.Widget) -> W.VBox:
    """``ipywidgets.interactive(fn, **controls)`` with the browser-test classes applied.

    ``controls`` are keyword arguments of ``fn``. The lesson's primary control -- the one the browser
    test moves -- is the first slider among them, or the first control when there is no slider.
    Returns the panel (display it as the cell's last expression).
    """
    if not controls:
        raise ValueError("interactive_panel needs at least one control (got none)")
    for name, w in controls.items():
        if not isinstance(w, W.ValueWidget):
            raise TypeError(f"control {name}={w!r} must be an ipywidgets value widget (slider, dropdown, ...)")
    panel = W.interactive(fn, **controls)
    primary = primary_control(controls)
    primary.add_class(PRIMARY_CLASS)
    panel.out.add_class(OUTPUT_CLASS)
    panel.add_class("lesson-panel")
    return panel
