"""The example scripts run outside Jupyter."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script):
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                         cwd=ROOT, env=os.environ, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "accuracy" in out.stdout or "MACs" in out.stdout
