"""Static checks of every notebook: the lesson template, sources in sync, README listing."""
from __future__ import annotations

import json
import re

import jupytext
import nbformat
import pytest

from conftest import ROOT, notebook_paths
from lessons_lib import course

ABS_PATH = re.compile(r"(?<![\w.])/(root|work|tmp|home|farm|opt)/")


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_lesson_template(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert re.search(r"^FAST\s*=", params[0].source, re.M), "the parameters cell defines FAST"
    src = "\n".join(c.source for c in code)
    assert "lessons_lib" in src
    assert "interactive_panel(" in src, "a widget panel built with lessons_lib.course.widgets.interactive_panel"
    assert ".check(" in src, "at least one exercise checker call"
    assert src.count("NBVAL_CHECK_OUTPUT") >= 2, "several cells of verified facts marked # NBVAL_CHECK_OUTPUT"
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^#+ .*Summary", md, re.M), "a Summary section"
    assert re.search(r"^#+ .*Glossary", md, re.M) and re.search(r"[\u4e00-\u9fff]", md), "a glossary with 中文 terms"


#: phrases that betray a typed, remembered measurement instead of one computed in this run
REMEMBERED = re.compile(r"in the builds here|across the builds|on the build machine|on this (2-core )?CPU(?!'s)\b|"
                        r"on this machine, not", re.I)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_summary_and_verdicts_are_computed(path):
    """Rule 1 of CONTRIBUTING: the Summary's bullets are rendered by a code cell from this run's variables, and
    no Markdown cell states a measurement remembered from an earlier build or a claim about "this CPU"."""
    nb = nbformat.read(path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and re.search(r"^#+ .*Summary", c.source, re.M))
    head = nb.cells[i].source
    summary_md = head[re.search(r"^#+ .*Summary.*$", head, re.M).end():].split("\n#")[0]
    assert not re.search(r"^\s*[*-] ", summary_md, re.M), "the Summary's bullets must come from a code cell"
    nxt = nb.cells[i + 1]
    assert nxt.cell_type == "code" and "display(Markdown(" in nxt.source, \
        "the cell after '## Summary' renders the bullets: display(Markdown(f'...')) from this run's variables"
    bad = [line.strip()[:100] for c in nb.cells if c.cell_type == "markdown"
           for line in c.source.splitlines() if REMEMBERED.search(line)]
    assert not bad, f"Markdown states remembered measurements or facts about this CPU: {bad}"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path, caplog):
    """`papermill --help-notebook` lists each parameter with its type and comment; a second '=' on a
    line (e.g. in the comment) makes papermill skip that parameter with a warning."""
    from papermill.inspection import inspect_notebook

    nb = nbformat.read(path, as_version=4)
    with caplog.at_level("WARNING", logger="papermill"):
        found = set(inspect_notebook(str(path)))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assigned = set(re.findall(r"^([A-Za-z_]\w*)\s*=", _params_source(nb), re.M))
    assert assigned and found == assigned, f"papermill sees {sorted(found)}, the cell assigns {sorted(assigned)}"


def _params_source(nb) -> str:
    return next(c.source for c in _code(nb) if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_committed_executed_in_order_without_errors_or_paths(path):
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in _code(nb) if c.source.strip()]
    assert counts and None not in counts, "commit the notebook executed (tools/build_notebooks.py)"
    assert counts == list(range(1, len(counts) + 1)), "executed once, top to bottom, from a fresh kernel"
    for c in _code(nb):
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error"
            text = json.dumps(o.get("text", "")) + json.dumps(o.get("data", {}).get("text/plain", ""))
            assert not ABS_PATH.search(text), f"an output shows an absolute path: {text[:120]}"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_source_script_in_sync(path):
    src = ROOT / "notebooks" / "src" / (path.stem + ".py")
    assert src.exists(), f"notebooks/src/{src.name} (the reviewable source) is missing"
    want = [c.source for c in jupytext.read(src).cells]
    have = [c.source for c in nbformat.read(path, as_version=4).cells]
    assert want == have, f"{path.name} differs from notebooks/src/{src.name}: run make notebooks NB={path.stem[:2]}"


def test_readme_and_course_map_list_exactly_the_notebooks():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"notebooks/(\d\d_[a-z0-9_]+\.ipynb)", readme))
    on_disk = {p.name for p in notebook_paths()}
    assert listed == on_disk, f"README lists {sorted(listed)}, disk has {sorted(on_disk)}"
    known = {l.filename for l in course.LESSONS}
    assert on_disk <= known, f"notebooks missing from lessons_lib.course.LESSONS: {sorted(on_disk - known)}"
