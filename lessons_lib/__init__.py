"""lessons_lib: the code behind the CNN compression and acceleration workbook.

The reusable core is one module (or sub-package) per concept family: ``profile``, ``conv``, ``blocks``,
``quant``, ``fold``, ``deploy``, ``prune``, ``lowrank``, ``distill``, ``data``, ``models``, ``train``,
``checkpoints``, ``machine``, ``validate`` ... Course scaffolding (exercises, widgets, plots, the
notebook runner) lives in :mod:`lessons_lib.course`, which the core never imports.

Nothing is imported eagerly: ``import lessons_lib.validate`` does not import torch. Sub-modules load on
first attribute access (``lessons_lib.profile``) or with ``from lessons_lib import profile``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY_FUNCTIONS = {"seed_everything": "train"}


def __getattr__(name: str):
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_FUNCTIONS[name]}"), name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = ["seed_everything", "__version__"]
