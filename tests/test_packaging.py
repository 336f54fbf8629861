"""lessons_lib as a library: torch-free imports stay torch-free, the layers import in one direction only,
and a non-editable install works outside the checkout without writing into site-packages."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "lessons_lib"


def _run(code: str, cwd: Path | None = None, exe: str = sys.executable, timeout: int = 120) -> str:
    out = subprocess.run([exe, "-c", code], capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("module", ["lessons_lib", "lessons_lib.validate", "lessons_lib.netguard", "lessons_lib.paths"])
def test_torch_free_modules_do_not_import_torch(module):
    out = _run(f"import sys, {module}; print('torch' in sys.modules, 'numpy' in sys.modules)")
    assert out.split() == ["False", "False"], f"importing {module} pulled in torch/numpy: {out}"


# ------------------------------------------------------------------ the dependency rule (CONTRIBUTING.md)
def _unit(path: Path) -> str:
    """The architectural unit of a file: a top-level module or sub-package of lessons_lib."""
    rel = path.relative_to(PKG).with_suffix("")
    return rel.parts[0] if rel.parts[0] != "__init__" else "__init__"


def _imports(path: Path) -> set[str]:
    """Units of lessons_lib that ``path`` imports (absolute or relative; lazy imports inside functions too)."""
    tree = ast.parse(path.read_text())
    pkg_parts = ("lessons_lib",) + path.relative_to(PKG).parent.parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                full = base + tuple(node.module.split(".")) if node.module else base
            else:
                full = tuple((node.module or "").split("."))
            if full[:1] != ("lessons_lib",):
                continue
            if len(full) >= 2:
                found.add(full[1])
            else:  # from lessons_lib import a, b
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "lessons_lib" and len(parts) >= 2:
                    found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for f in PKG.rglob("*.py"):
        u = _unit(f)
        g.setdefault(u, set()).update(x for x in _imports(f) if x != u)
    return g


def test_the_core_never_imports_the_course():
    offenders = {u: sorted(d) for u, d in _graph().items() if u != "course" and "course" in d}
    assert not offenders, f"core units importing lessons_lib.course: {offenders}"


def test_no_import_cycles_between_units():
    g = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(g.get(u, ())):
            if state.get(v) == 1:
                pytest.fail(f"import cycle: {' -> '.join(stack[stack.index(v):] + [v])}")
            if v in g and not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(g):
        if not state.get(u):
            visit(u)
    assert "quant" not in g.get("fold", set()) and "deploy" not in g["quant"]


def test_course_dependencies_are_not_core_dependencies():
    """matplotlib / ipywidgets / papermill / IPython are imported only under lessons_lib/course (or lazily)."""
    course_only = {"matplotlib", "ipywidgets", "papermill", "nbformat", "IPython", "fvcore"}
    bad = []
    for f in PKG.rglob("*.py"):
        if _unit(f) == "course":
            continue
        for node in ast.parse(f.read_text()).body:  # module level only: a lazy import inside a function is fine
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{f.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in course_only]
    assert not bad, bad


# -------------------------------------------------------------------------- a non-editable install
@pytest.mark.timeout(900)
def test_wheel_installs_and_works_outside_the_checkout(tmp_path):
    """Build the wheel, install it (no deps) into a fresh venv that borrows this environment's third-party
    packages, then from an unrelated folder: pretrained(), profile_model() and the example script."""
    wheels = tmp_path / "wheels"
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(wheels.glob("cnn_compression_workbook-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run("import sysconfig; print(sysconfig.get_paths()['purelib'])", exe=str(py)).strip())
    here = [p for p in sys.path if p.endswith("site-packages")]
    # borrowed third-party packages come *after* the venv's own site-packages, and .pth files there
    # (this checkout's editable-install finder) are not processed: only the wheel provides lessons_lib
    (site / "zz_borrowed.pth").write_text("\n".join(here) + "\n")
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before = sorted(p.relative_to(site) for p in (site / "lessons_lib").rglob("*") if "__pycache__" not in p.parts)
    work = tmp_path / "elsewhere"
    work.mkdir()
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": "", "LESSONS_CACHE_DIR": str(cache), "LESSONS_QUIET": "1"}
    env.pop("LESSONS_BUILD_DIR", None)
    code = (
        "import lessons_lib, torch\n"
        "from lessons_lib import checkpoints, paths, profile, models\n"
        f"assert lessons_lib.__file__.startswith({str(site)!r}), lessons_lib.__file__\n"
        "assert paths.source_checkout() is None\n"
        "m = checkpoints.pretrained('shapes_teacher')\n"
        "print('teacher params', sum(p.numel() for p in m.parameters()))\n"
        "rep = profile.profile_model(models.StudentCNN(), (1, 3, 32, 32))\n"
        "print('student MACs', rep.total_macs)\n"
        "print('build', paths.build_dir())\n"
        "print('writes to', paths.writable_weights_dir())\n")
    res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "teacher params" in res.stdout and "student MACs" in res.stdout
    assert f"build {work / 'build'}" in res.stdout
    assert f"writes to {cache.resolve() / 'weights'}" in res.stdout
    script = work / "profile_and_train.py"
    script.write_text((ROOT / "examples" / "profile_and_train.py").read_text())
    res = subprocess.run([str(py), str(script), "--quick"], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "MACs" in res.stdout
    after = sorted(p.relative_to(site) for p in (site / "lessons_lib").rglob("*") if "__pycache__" not in p.parts)
    assert after == before, "something was written into site-packages/lessons_lib"
