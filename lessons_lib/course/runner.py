"""The headless runner used by ``make run`` and the tests (needs papermill: the ``course`` extra).

:func:`execute` runs one notebook with papermill and checks that it really ran;
``python -m lessons_lib.course run`` executes them all into ``build/executed/`` and writes
``build/report.md`` (status and wall time per notebook, and the total).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from ..paths import PACKAGE_DIR, build_dir
from .catalog import available

BUILD = build_dir()


# ---------------------------------------------------------------------------------- headless runs
class NotebookRunError(RuntimeError):
    pass


def check_really_ran(nb) -> int:
    """Raise :class:`NotebookRunError` unless every code cell of ``nb`` has an execution count.

    Returns the number of executed code cells (the "did it really run" guard).
    """
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    if not code:
        raise NotebookRunError("the notebook has no code cells")
    if missing:
        raise NotebookRunError(f"{len(missing)} of {len(code)} code cells did not execute (first: code cell {missing[0]})")
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise NotebookRunError(f"a cell raised {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return len(code)


# Headless kernels log errors only: ipykernel 7 warns "running over TCP without encryption" at every
# start, noise for a kernel on loopback that the course starts and stops itself.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def execute(path: Path | str, out: Path | str, parameters: dict | None = None, *, timeout: int = 600) -> dict:
    """Run ``path`` with papermill (fresh ``python3`` kernel, cwd = the notebook's folder) into ``out``.

    Returns ``{"notebook", "status", "seconds", "cells", "error"}``; never raises on a failing notebook.
    """
    import nbformat
    import papermill as pm

    path, out = Path(path), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {"notebook": path.name, "status": "ok", "seconds": 0.0, "cells": 0, "error": ""}
    try:
        pm.execute_notebook(str(path), str(out), parameters=parameters or {}, kernel_name="python3",
                            cwd=str(path.parent), progress_bar=False, log_output=False,
                            execution_timeout=timeout, report_mode=False, extra_arguments=KERNEL_ARGS)
        result["cells"] = check_really_ran(nbformat.read(out, as_version=4))
    except Exception as err:  # report, do not raise: the caller decides
        result["status"] = "FAILED"
        result["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"[:300]
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _fingerprint(nb: Path, parameters: dict) -> str:
    h = hashlib.sha256(nb.read_bytes())
    for f in sorted(PACKAGE_DIR.rglob("*.py")) + [PACKAGE_DIR / "weights" / "MANIFEST.json"]:
        if f.exists():
            h.update(f.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    return h.hexdigest()


def run_all(parameters: dict | None = None, *, out_dir: Path = BUILD / "executed", force: bool = False) -> list[dict]:
    """Execute every notebook; skip those unchanged since their last OK run (unless ``force``).

    Writes ``build/report.md`` and ``build/run-cache.json``; returns the per-notebook results.
    """
    parameters = parameters or {}
    cache_file = BUILD / "run-cache.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    results = []
    for nb in available():
        fp = _fingerprint(nb, parameters)
        hit = cache.get(nb.name)
        if not force and hit and hit["fingerprint"] == fp and hit["status"] == "ok" and (out_dir / nb.name).exists():
            res = dict(hit["result"], cached=True)
        else:
            res = execute(nb, out_dir / nb.name, parameters)
            cache[nb.name] = {"fingerprint": fp, "status": res["status"], "result": res}
        results.append(res)
        flag = " (unchanged, cached)" if res.get("cached") else ""
        print(f"{res['notebook']:<44} {res['status']:<7} {res['seconds']:7.1f} s{flag} {res['error']}", flush=True)
    BUILD.mkdir(exist_ok=True)
    cache_file.write_text(json.dumps(cache, indent=2))
    write_report(results, parameters)
    return results


def write_report(results: list[dict], parameters: dict) -> Path:
    from ..machine import describe, describe_cpu_features

    total = sum(r["seconds"] for r in results)
    lines = ["# Headless run of every notebook", "",
             f"Machine: {describe('cpu')}", f"Instruction sets: {describe_cpu_features()}",
             f"Parameters: {parameters or 'notebook defaults'}", "",
             "| notebook | status | wall time (s) | code cells | note |", "| --- | --- | ---: | ---: | --- |"]
    for r in results:
        note = "cached: unchanged since its last OK run" if r.get("cached") else r["error"]
        lines.append(f"| {r['notebook']} | {r['status']} | {r['seconds']:.1f} | {r['cells']} | {note} |")
    ok = sum(r["status"] == "ok" for r in results)
    lines += ["", f"**Total: {total:.1f} s for {len(results)} notebooks, {ok} OK, {len(results) - ok} failed.**", ""]
    path = BUILD / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "run":
        print("usage: python -m lessons_lib.course run [--fast] [--force]")
        return 2
    params = {"FAST": True} if "--fast" in argv else {}
    results = run_all(params, force="--force" in argv)
    total = sum(r["seconds"] for r in results)
    failed = [r["notebook"] for r in results if r["status"] != "ok"]
    print(f"total {total:.1f} s for {len(results)} notebooks; report: build/report.md")
    if failed:
        print("FAILED:", ", ".join(failed))
    return 1 if failed else 0

