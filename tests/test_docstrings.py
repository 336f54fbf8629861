"""Every public callable of the reusable core documents its arguments and result the way torchvision's ops
do: an ``Args:`` section naming each parameter and a ``Returns:`` (or ``Yields:``) section, with tensor shapes
written ``Tensor[N, C, H, W]``. The callables are the ones the error-contract walk visits
(:func:`test_error_contract.public_callables`), so a new public function cannot escape either check."""
from __future__ import annotations

import inspect
import re

import pytest

import test_error_contract as contract

CALLABLES = {k: v for k, v in contract.public_callables().items() if k not in contract.SKIP}


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        doc += "\n" + (inspect.getdoc(obj.__init__) or "")
    return doc


def _section(doc: str, title: str) -> str | None:
    m = re.search(rf"^{title}:\s*$(.*?)(?=^\w[\w ]*:\s*$|\Z)", doc, re.M | re.S)
    return m.group(1) if m else None


@pytest.mark.parametrize("fname", sorted(CALLABLES))
def test_args_and_returns_sections(fname):
    fn = CALLABLES[fname]
    doc = _doc(fn)
    params = [p.name for p in contract._params(fn) if p.name not in ("self", "cls")]
    if params:
        args = _section(doc, "Args")
        assert args is not None, f"{fname}: docstring has no 'Args:' section"
        undocumented = [p for p in params if not re.search(rf"(^|[\s,]){re.escape(p)}\b", args)]
        assert not undocumented, f"{fname}: 'Args:' does not name {undocumented}"
    if not inspect.isclass(fn):
        assert _section(doc, "Returns") is not None or _section(doc, "Yields") is not None, \
            f"{fname}: docstring has no 'Returns:' (or 'Yields:') section"


def test_sources_are_public():
    """Docstrings, lessons and the README cite papers and public sources, never the course authors' private
    notes (``research/*.md``) or the ``../shared`` folder that a clone of this repository does not have."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("lessons_lib/**/*.py"), *root.glob("notebooks/src/*.py"), root / "README.md"]
    bad = [f"{p.relative_to(root)}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"research/[\w-]+\.md|\.\./shared", line)]
    assert not bad, f"private notes cited at {bad}"
