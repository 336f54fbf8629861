"""Every notebook in notebooks/ runs headless with papermill and its FAST parameters.

Discovered from disk: a new notebook is tested without editing this file. A notebook fails when a
cell errors or when its cells did not really execute. Per-notebook wall times go to
``build/notebook-times.json``. (nbval, configured in pyproject.toml, separately re-runs each notebook
with its committed parameters and compares the cells marked ``# NBVAL_CHECK_OUTPUT``.)
"""
from __future__ import annotations

import json

import nbformat
import pytest

from conftest import ROOT, notebook_paths
from lessons_lib.course import runner as course

TIMES = ROOT / "build" / "notebook-times.json"


@pytest.mark.notebook
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_headless(path):
    out = ROOT / "build" / "test-executed" / path.name
    res = course.execute(path, out, {"FAST": True})
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[path.name] = {"seconds": res["seconds"], "status": res["status"], "parameters": {"FAST": True}}
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text(json.dumps(times, indent=2, sort_keys=True))
    assert res["status"] == "ok", res["error"]
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "FAST = True" in injected[0].source, "papermill did not inject FAST = True"
    assert res["cells"] >= 5


def test_there_are_notebooks():
    assert notebook_paths(), "notebooks/ holds no NN_topic.ipynb"


def test_did_it_really_run_guard_catches_unexecuted_cells(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print(x)")]
    nb.cells[0].execution_count = 1
    with pytest.raises(course.NotebookRunError, match="did not execute"):
        course.check_really_ran(nb)
    nb.cells[1].execution_count = 2
    assert course.check_really_ran(nb) == 2


def test_failing_notebook_is_reported(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell("FAST = False")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    src = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, src)
    res = course.execute(src, tmp_path / "out.ipynb", {"FAST": True})
    assert res["status"] == "FAILED" and "boom" in res["error"]
