"""Exercise checkers, one module per lesson (``lesson00.py`` ...).

Importing this package registers every exercise in :data:`lessons_lib.course.checks.EXERCISES`.
A lesson does ``from lessons_lib.course.exercises import lesson00 as ex`` and calls ``ex.pi_time.check(answer)``.
"""
import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    if _m.name.startswith("lesson"):
        importlib.import_module(f"{__name__}.{_m.name}")
