"""pytest plugin loaded in every run (``-p nbmarks``). nbval's items (one per cell of notebooks/*.ipynb) get the
``notebook`` marker, so that ``pytest -m "not notebook"`` really deselects every notebook run."""
import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection
def pytest_collection_modifyitems(config, items):
    for item in items:
        if type(item).__module__.startswith("nbval"):
            item.add_marker(pytest.mark.notebook)


def pytest_configure(config):
    """Under pytest-xdist (``make test JOBS=N``) each worker writes into its own build folder, so that two
    workers executing notebooks that save files (ONNX exports, engines) never write the same path."""
    import os
    from pathlib import Path

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "LESSONS_BUILD_DIR" not in os.environ:
        os.environ["LESSONS_BUILD_DIR"] = str(Path(config.rootpath) / "build" / f"xdist-{worker}")
