"""Shared test set-up: offline guard, headless settings, and the list of notebooks on disk."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD_DIR = ROOT / "tests" / "_netguard"

# Every process the tests start (papermill / nbval kernels, JupyterLab, examples) inherits these:
# progress bars off, and the network guard installed by tests/_netguard/sitecustomize.py.
os.environ["LESSONS_QUIET"] = "1"
if str(GUARD_DIR) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p)
os.environ.setdefault("MPLBACKEND", "Agg")

from lessons_lib import netguard  # noqa: E402

netguard.install()  # already done by tests/_netguard/sitecustomize.py when PYTHONPATH has it; idempotent


def notebook_paths() -> list[Path]:
    """Every lesson notebook on disk (a new notebook is tested without editing any test)."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT

