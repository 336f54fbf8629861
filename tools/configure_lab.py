"""Make JupyterLab in this environment work offline.

Writes two files inside the active environment (``sys.prefix``), so every ``jupyter lab`` started
from it -- by ``make lab`` or by the browser test -- is configured the same way:

* ``etc/jupyter/jupyter_server_config.d/cnn_workbook.json``: server side, no news feed and no
  update check (both would fetch from the internet);
* ``share/jupyter/lab/settings/overrides.json``: client side, never ask about news, never check for
  updates, and no extension manager (it lists packages from PyPI).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SERVER = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
    }
}
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


def _merge_write(path: Path, new: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    for key, value in new.items():
        old.setdefault(key, {}).update(value)
    path.write_text(json.dumps(old, indent=2) + "\n")


def main() -> None:
    prefix = Path(sys.prefix)
    _merge_write(prefix / "etc/jupyter/jupyter_server_config.d/cnn_workbook.json", SERVER)
    _merge_write(prefix / "share/jupyter/lab/settings/overrides.json", OVERRIDES)
    print("JupyterLab configured for offline use (no news, no update checks).")


if __name__ == "__main__":
    main()
