"""Authoring tool: turn ``notebooks/src/NN_topic.py`` into the executed ``notebooks/NN_topic.ipynb``.

The ``.py`` files are jupytext "percent" scripts (``# %%`` code cells, ``# %% [markdown]`` text
cells, ``# %% tags=["parameters"]`` for the papermill cell): easy to review and diff. This tool
converts one, runs it top to bottom in a fresh kernel (cwd ``notebooks/``, headless settings, no
network) and writes the notebook with its outputs, as readers see it. It refuses to write a
notebook whose outputs contain an error or an absolute path.

    python tools/build_notebooks.py            # every source
    python tools/build_notebooks.py 01 03      # the ones whose number starts with these
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from lessons_lib.course import runner as course

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
ABS_PATH = re.compile(r"(?<![\w.])/(root|work|tmp|home|farm|opt|usr|var)/")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def build(src: Path) -> float:
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("jupytext", None)
    os.environ["LESSONS_QUIET"] = "1"
    os.environ["PYTHONPATH"] = str(ROOT / "tests" / "_netguard") + os.pathsep + os.environ.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(OUT)}},
                   store_widget_state=True, extra_arguments=course.KERNEL_ARGS).execute()
    seconds = time.perf_counter() - t0
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                raise SystemExit(f"{src.name}: cell {i} raised {o['ename']}: {o['evalue']}")
            text = str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
            if ABS_PATH.search(text):
                raise SystemExit(f"{src.name}: cell {i} prints an absolute path: {ABS_PATH.search(text).group(0)}...")
    nbformat.write(nb, OUT / (src.stem + ".ipynb"))
    return seconds


def main(args: list[str]) -> None:
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if args:
        sources = [s for s in sources if any(s.name.startswith(a) for a in args)]
    if not sources:
        raise SystemExit(f"no notebook source matches {args}")
    for s in sources:
        print(f"{s.stem}: executed in {build(s):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
