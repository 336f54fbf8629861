"""Where lessons_lib reads shipped files and writes new ones (torch-free).

* :func:`weights_dir` -- the checkpoints and manifest shipped **inside the package** (package data, read
  with :mod:`importlib.resources`); read-only for an installed package.
* :func:`build_dir` -- where lessons, runners and scripts write: ``$LESSONS_BUILD_DIR`` if set, else the
  ``build/`` folder of the source checkout the package is imported from, else ``./build`` in the current
  directory. Never a folder inside site-packages.
* :func:`cache_dir` -- per-user cache (``$LESSONS_CACHE_DIR``, else ``$XDG_CACHE_HOME/lessons_lib``, else
  ``~/.cache/lessons_lib``), where :func:`lessons_lib.checkpoints.build` writes when the package is installed.
* :func:`source_checkout` -- the checkout root when the package is imported from one (an editable install or
  ``PYTHONPATH``), else ``None``.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """The repository root holding this package (it has ``pyproject.toml`` and ``notebooks/``), or ``None``
    for an installed copy (site-packages has neither).

    Returns:
        ``Path | None``: the absolute checkout root, or ``None``.
    """
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def weights_dir() -> Path:
    """The folder of shipped checkpoints and ``MANIFEST.json`` (package data ``lessons_lib/weights``).

    Returns:
        ``Path``: the package's ``weights`` folder (read-only for an installed package).
    """
    return Path(str(resources.files("lessons_lib") / "weights"))


def build_dir() -> Path:
    """Where generated files go (not created here): see the module docstring for the order.

    Returns:
        ``Path``: an absolute path (``$LESSONS_BUILD_DIR``, ``<checkout>/build`` or ``./build``).
    """
    env = os.environ.get("LESSONS_BUILD_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = source_checkout()
    return (root / "build") if root is not None else (Path.cwd() / "build")


def cache_dir() -> Path:
    """The per-user cache folder (not created here).

    Returns:
        ``Path``: an absolute path (``$LESSONS_CACHE_DIR``, ``$XDG_CACHE_HOME/lessons_lib`` or
        ``~/.cache/lessons_lib``).
    """
    env = os.environ.get("LESSONS_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "lessons_lib").resolve()


def writable_weights_dir() -> Path:
    """Where :func:`lessons_lib.checkpoints.build` writes: the shipped folder in a source checkout (authors
    rebuild what ships), else ``cache_dir() / "weights"`` (never site-packages).

    Returns:
        ``Path``: :func:`weights_dir` or ``cache_dir() / "weights"`` (not created here).
    """
    return weights_dir() if source_checkout() is not None else cache_dir() / "weights"
