"""Checkpoints the project trains itself, verified by sha256 before loading.

Every file in ``data/`` is listed in ``data/MANIFEST.json`` with its sha256, its size and the
command that rebuilds it. :func:`load_state` checks the hash and loads with
``torch.load(weights_only=True)``; a missing or corrupt file raises :class:`DataFileError` naming
that command. Rebuild everything with ``python -m lessons_lib.checkpoints build`` (a few minutes on a
2-core CPU); it rewrites the manifest.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import data, models, train

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MANIFEST = DATA_DIR / "MANIFEST.json"


class DataFileError(RuntimeError):
    """A data file is missing or does not match its manifest entry."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest() -> dict:
    if not MANIFEST.exists():
        raise DataFileError(f"data/MANIFEST.json is missing; rebuild with: python -m lessons_lib.checkpoints build")
    return json.loads(MANIFEST.read_text())


# ------------------------------------------------------------------------------------ the recipes
def _shapes_model(name: str, width: int, epochs: int) -> nn.Module:
    train.seed_everything(0)
    splits = data.shapes_splits(seed=0, difficulty=0.5)
    model = models.build(name, width=width)
    train.fit(model, splits.train, epochs=epochs, lr=3e-3, batch_size=128, seed=0)
    return model


def _digits_teacher() -> nn.Module:
    train.seed_everything(0)
    splits = data.digits_splits()
    model = models.TeacherCNN(in_ch=1, width=16)
    train.fit(model, splits.train, epochs=30, lr=3e-3, batch_size=64, seed=0)
    return model


RECIPES: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module], str]] = {
    # file stem: (how to build the architecture, how to train it, description)
    "shapes_teacher": (lambda: models.TeacherCNN(width=32), lambda: _shapes_model("teacher", 32, 12),
                       "TeacherCNN(width=32) trained 12 epochs on shapes_splits(seed=0, difficulty=0.5)"),
    "digits_teacher": (lambda: models.TeacherCNN(in_ch=1, width=16), _digits_teacher,
                       "TeacherCNN(in_ch=1, width=16) trained 30 epochs on digits_splits()"),
}


def command(name: str) -> str:
    return f"python -m lessons_lib.checkpoints build {name}"


def load_state(name: str) -> dict:
    """The verified state dict of checkpoint ``name`` (see :data:`RECIPES`)."""
    if name not in RECIPES:
        raise ValueError(f"name={name!r} is not a checkpoint; choose one of {sorted(RECIPES)}")
    entry = _manifest().get("files", {}).get(f"{name}.pt")
    path = DATA_DIR / f"{name}.pt"
    if entry is None:
        raise DataFileError(f"data/{name}.pt is not in data/MANIFEST.json; rebuild with: {command(name)}")
    if not path.exists():
        raise DataFileError(f"data/{name}.pt is missing; rebuild with: {entry['command']}")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise DataFileError(f"data/{name}.pt is corrupt (sha256 {digest[:12]}... != manifest "
                            f"{entry['sha256'][:12]}...); rebuild with: {entry['command']}")
    return torch.load(path, map_location="cpu", weights_only=True)


def pretrained(name: str) -> nn.Module:
    """The architecture of ``name`` with its verified trained weights, in eval mode."""
    model = RECIPES[name][0]() if name in RECIPES else None
    state = load_state(name)
    model.load_state_dict(state)
    return model.eval()


def build(names: list[str] | None = None) -> None:
    """Train the named checkpoints (all by default), save them and rewrite the manifest."""
    names = names or sorted(RECIPES)
    man = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"files": {}}
    man.setdefault("files", {})
    DATA_DIR.mkdir(exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for name in names:
        if name not in RECIPES:
            raise ValueError(f"name={name!r} is not a checkpoint; choose one of {sorted(RECIPES)}")
        t0 = time.perf_counter()
        model = RECIPES[name][1]()
        path = DATA_DIR / f"{name}.pt"
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, path)
        man["files"][f"{name}.pt"] = _entry(path, command(name), RECIPES[name][2])
        print(f"{name}: trained in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1024:.0f} KiB")
    MANIFEST.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")


def _entry(path: Path, cmd: str, recipe: str) -> dict:
    return {"sha256": sha256(path), "bytes": path.stat().st_size, "command": cmd, "recipe": recipe}


def register(path: Path | str, cmd: str, recipe: str) -> None:
    """List a file written into ``data/`` (not a checkpoint, e.g. a recorded GPU result) in the manifest,
    with its sha256, size, the command that rebuilds it and what it holds."""
    path = Path(path).resolve()
    if path.parent != DATA_DIR.resolve() or not path.is_file():
        raise ValueError(f"path={str(path)!r} must be an existing file directly inside data/")
    man = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"files": {}}
    man.setdefault("files", {})[path.name] = _entry(path, cmd, recipe)
    MANIFEST.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "build":
        print("usage: python -m lessons_lib.checkpoints build [NAME ...]")
        sys.exit(2)
    build(args[1:] or None)
