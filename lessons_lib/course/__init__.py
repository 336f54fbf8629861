"""Course scaffolding, separate from the reusable core (the core never imports this package).

* :mod:`.catalog`   -- the course map: :data:`LESSONS`, :func:`available`, :func:`course_map`;
* :mod:`.runner`    -- headless runs with papermill (``python -m lessons_lib.course run``);
* :mod:`.checks`    -- :func:`compare` verdicts and the :func:`exercise` registry;
* :mod:`.exercises` -- one module of exercise checkers per lesson;
* :mod:`.widgets`   -- the ipywidgets controls and panel the browser test drives;
* :mod:`.plotting`  -- the house style and figure helpers (matplotlib);
* :mod:`.source`    -- :func:`show_source`, a library function's code inside a lesson.

Needs the ``course`` extra (``pip install "cnn-compression-workbook[course]"``): jupyterlab, ipywidgets,
matplotlib, papermill. Sub-modules are imported on first use, so ``from lessons_lib.course import
show_source`` does not import matplotlib or ipywidgets.
"""
from __future__ import annotations

import importlib

from .catalog import LESSONS, Lesson, available, course_map, notebooks_dir, readme_table
from .source import show_source, source_of

_SUBMODULES = ("checks", "exercises", "plotting", "runner", "widgets")

__all__ = ["LESSONS", "Lesson", "available", "course_map", "notebooks_dir", "readme_table", "show_source",
           "source_of", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
