"""Checkpoints the project trains itself, verified by sha256 before loading.

They ship inside the package (package data ``lessons_lib/weights/``, found with :mod:`importlib.resources`
through :func:`lessons_lib.paths.weights_dir`), so ``pretrained("shapes_teacher")`` works from any folder
after ``pip install``. Every file there is listed in ``MANIFEST.json`` with its sha256, its size and the
command that rebuilds it. :func:`load_state` checks the hash and loads with ``torch.load(weights_only=True)``;
a missing or corrupt file raises :class:`DataFileError` naming that command.

Rebuild with ``python -m lessons_lib.checkpoints build [NAME ...]`` (a few minutes on a 2-core CPU). In a
source checkout it rewrites the shipped files and manifest; in an installed package it writes to the user
cache (:func:`lessons_lib.paths.writable_weights_dir`), never into site-packages; load from there with
``load_state(name, directory=...)``.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import data, models, paths, train
from . import validate as V

WEIGHTS_DIR = paths.weights_dir()


class DataFileError(RuntimeError):
    """A data file is missing or does not match its manifest entry."""


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB chunks).

    Args:
        path: an existing file, a non-empty ``str`` or an ``os.PathLike`` (``pathlib.Path``).

    Returns:
        ``str``: the 64-character lower-case hex digest.
    """
    path = V.path("path", path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _folder(directory: Path | str | None) -> Path:
    if directory is None:
        return WEIGHTS_DIR
    return Path(V.path("directory", directory))


def _manifest(folder: Path) -> dict:
    path = folder / "MANIFEST.json"
    if not path.exists():
        raise DataFileError(f"MANIFEST.json is missing in {folder.name}/; rebuild with: "
                            "python -m lessons_lib.checkpoints build")
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------ the recipes
def _shapes_model(name: str, width: int, epochs: int) -> nn.Module:
    train.seed_everything(0)
    splits = data.shapes_splits(seed=0, difficulty=0.5)
    model = models.build(name, width=width)
    train.fit(model, splits.train, epochs=epochs, lr=3e-3, batch_size=128, seed=0)
    return model


def _shapes_train():
    return data.shapes_splits(seed=0, difficulty=0.5).train


def _digits_train():
    """The labelled half of the digits training split: the other half is lesson 14's unlabelled data."""
    return data.labelled_split(data.digits_splits().train, 0.5, seed=0)[0]


def _digits_teacher() -> nn.Module:
    train.seed_everything(0)
    model = models.TeacherCNN(in_ch=1, width=16)
    train.fit(model, _digits_train(), epochs=40, lr=3e-3, batch_size=32, seed=0)
    return model


@dataclass(frozen=True)
class Recipe:
    """How a shipped checkpoint is made, and on which images (the no-leakage rule checks ``trained_on``).

    Args:
        arch: builds the untrained architecture (``pretrained`` loads the weights into it).
        train: builds and trains the model (``python -m lessons_lib.checkpoints build NAME``).
        description: one line stored in the manifest; :func:`verify` checks the file was built by it.
        trained_on: returns the exact training ``TensorDataset``.
    """

    arch: Callable[[], nn.Module]
    train: Callable[[], nn.Module]
    description: str
    trained_on: Callable[[], object]
    """Returns the exact training ``TensorDataset``; no lesson may evaluate on, or pseudo-label, any of it."""


RECIPES: dict[str, Recipe] = {
    "shapes_teacher": Recipe(lambda: models.TeacherCNN(width=32), lambda: _shapes_model("teacher", 32, 12),
                             "TeacherCNN(width=32) trained 12 epochs on shapes_splits(seed=0, difficulty=0.5).train",
                             _shapes_train),
    "digits_teacher": Recipe(lambda: models.TeacherCNN(in_ch=1, width=16), _digits_teacher,
                             "TeacherCNN(in_ch=1, width=16) trained 40 epochs on the labelled half of "
                             "digits_splits().train (data.labelled_split(..., 0.5, seed=0)[0]); the other "
                             "half is never seen", _digits_train),
}


def _check_name(name: object) -> str:
    return V.choice("name", name, sorted(RECIPES))


def command(name: str) -> str:
    """The shell command that rebuilds checkpoint ``name`` (a key of :data:`RECIPES`).

    Args:
        name: a key of :data:`RECIPES` (``"digits_teacher"``, ``"shapes_teacher"``).

    Returns:
        ``str``: ``"python -m lessons_lib.checkpoints build <name>"``.
    """
    return f"python -m lessons_lib.checkpoints build {_check_name(name)}"


def load_state(name: str, *, directory: Path | str | None = None) -> dict:
    """The verified state dict of checkpoint ``name`` (see :data:`RECIPES`).

    Args:
        name: a key of :data:`RECIPES` (``"shapes_teacher"``, ``"digits_teacher"``).
        directory: folder holding ``{name}.pt`` and ``MANIFEST.json``; ``None`` = the shipped weights.

    Returns:
        ``dict[str, Tensor]``, loaded on the CPU with ``weights_only=True``.
    """
    name, folder = _check_name(name), _folder(directory)
    entry = _manifest(folder).get("files", {}).get(f"{name}.pt")
    path = folder / f"{name}.pt"
    if entry is None:
        raise DataFileError(f"{name}.pt is not in MANIFEST.json; rebuild with: {command(name)}")
    if not path.exists():
        raise DataFileError(f"{name}.pt is missing; rebuild with: {entry['command']}")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise DataFileError(f"{name}.pt is corrupt (sha256 {digest[:12]}... != manifest "
                            f"{entry['sha256'][:12]}...); rebuild with: {entry['command']}")
    return torch.load(path, map_location="cpu", weights_only=True)


def pretrained(name: str, *, directory: Path | str | None = None) -> nn.Module:
    """The architecture of ``name`` with its verified trained weights, in eval mode.

    Args:
        name: a key of :data:`RECIPES`.
        directory: as in :func:`load_state`.

    Returns:
        ``nn.Module`` in eval mode (input ``Tensor[N, C, 32, 32]`` for the shapes teacher, ``[N, 1, 8, 8]`` digits).
    """
    name = _check_name(name)
    model = RECIPES[name].arch()
    model.load_state_dict(load_state(name, directory=directory))
    return model.eval()


def build(names: list[str] | None = None, *, directory: Path | str | None = None) -> Path:
    """Train the named checkpoints (all by default), save them and rewrite the manifest.

    Args:
        names: keys of :data:`RECIPES`; ``None`` = all.
        directory: where to write; ``None`` = :func:`lessons_lib.paths.writable_weights_dir` (the shipped
            folder in a source checkout, the user cache for an installed package).

    Returns:
        The folder written.
    """
    names = sorted(RECIPES) if names is None else V.sequence("names", names, lambda n, v: V.choice(n, v, sorted(RECIPES)))
    folder = paths.writable_weights_dir() if directory is None else _folder(directory)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "MANIFEST.json"
    man = json.loads(manifest.read_text()) if manifest.exists() else {"files": {}}
    man.setdefault("files", {})
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for name in names:
        t0 = time.perf_counter()
        model = RECIPES[name].train()
        path = folder / f"{name}.pt"
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, path)
        man["files"][f"{name}.pt"] = _entry(path, command(name), RECIPES[name].description)
        print(f"{name}: trained in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1024:.0f} KiB")
    manifest.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    return folder


def _entry(path: Path, cmd: str, recipe: str) -> dict:
    return {"sha256": sha256(path), "bytes": path.stat().st_size, "command": cmd, "recipe": recipe}


DATA_FILES: dict[str, str] = {
    # file name: the one command that (re)builds it -- files shipped next to the checkpoints that are not
    # checkpoints themselves. register() and verify() accept no other command for them.
    "gpu_recorded.json": "python -m lessons_lib.deploy.gpu --record",
}


def expected_command(file_name: str) -> str:
    """The command that must rebuild ``file_name`` of the weights folder.

    Args:
        file_name: ``"<checkpoint>.pt"`` for a key of :data:`RECIPES`, or a key of :data:`DATA_FILES`.

    Returns:
        :func:`command` of the checkpoint, or the data file's command.
    """
    V.string("file_name", file_name, non_empty=True)
    if file_name in DATA_FILES:
        return DATA_FILES[file_name]
    stem = file_name[:-3] if file_name.endswith(".pt") else None
    if stem not in RECIPES:
        raise ValueError(f"file_name={file_name!r} is neither a checkpoint ({sorted(f'{n}.pt' for n in RECIPES)}) "
                         f"nor a known data file ({sorted(DATA_FILES)})")
    return command(stem)


def verify(directory: Path | str | None = None) -> list[str]:
    """Check a weights folder against its manifest: the same files, their sha256 and sizes, for each the
    command that rebuilds it (:func:`expected_command`), and for each checkpoint that it was built by the
    current recipe (its description, training set included, equals ``RECIPES[name].description``).

    Args:
        directory: the folder (``None``: the shipped weights, :data:`WEIGHTS_DIR`).

    Returns:
        One line per problem; an empty list when the folder is consistent.
    """
    folder = WEIGHTS_DIR if directory is None else _folder(directory)
    man = _manifest(folder).get("files", {})
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != "MANIFEST.json"}
    problems = [f"{n}: on disk but not in MANIFEST.json" for n in sorted(on_disk - set(man))]
    problems += [f"{n}: in MANIFEST.json but missing" for n in sorted(set(man) - on_disk)]
    for name in sorted(on_disk & set(man)):
        entry, path = man[name], folder / name
        if sha256(path) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from MANIFEST.json")
        if path.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: size differs from MANIFEST.json")
        try:
            want = expected_command(name)
        except ValueError as err:
            problems.append(str(err))
            continue
        if entry.get("command") != want:
            problems.append(f"{name}: command {entry.get('command')!r} is not {want!r}")
        stem = name[:-3]
        if name.endswith(".pt") and stem in RECIPES and entry.get("recipe") != RECIPES[stem].description:
            problems.append(f"{name}: built by another recipe than RECIPES[{stem!r}] (rebuild: {want})")
    return problems


def register(path: Path | str, cmd: str, recipe: str) -> None:
    """List a file written next to the shipped weights (not a checkpoint, e.g. a recorded GPU result) in
    their manifest, with its sha256, size, the command that rebuilds it and what it holds.

    Args:
        path: an existing file directly inside :data:`WEIGHTS_DIR` whose name is a key of :data:`DATA_FILES`.
        cmd: the command that rebuilds it; must be ``DATA_FILES[name]``.
        recipe: one sentence on what the file holds (non-empty).

    Returns:
        ``None``; ``MANIFEST.json`` is rewritten.
    """
    V.path("path", path)
    V.string("cmd", cmd, non_empty=True)
    V.string("recipe", recipe, non_empty=True)
    path = Path(path).resolve()
    if path.parent != WEIGHTS_DIR.resolve() or not path.is_file():
        raise ValueError(f"path={path.name!r} must be an existing file directly inside lessons_lib/weights/")
    if path.name not in DATA_FILES:
        raise ValueError(f"path={path.name!r} is not a known data file; add it to checkpoints.DATA_FILES "
                         f"with the command that rebuilds it (known: {sorted(DATA_FILES)})")
    if cmd != DATA_FILES[path.name]:
        raise ValueError(f"cmd={cmd!r} must be {DATA_FILES[path.name]!r}, the command registered for {path.name}")
    manifest = WEIGHTS_DIR / "MANIFEST.json"
    man = json.loads(manifest.read_text()) if manifest.exists() else {"files": {}}
    man.setdefault("files", {})[path.name] = _entry(path, cmd, recipe)
    manifest.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "build":
        print("usage: python -m lessons_lib.checkpoints build [NAME ...]")
        sys.exit(2)
    build(args[1:] or None)
