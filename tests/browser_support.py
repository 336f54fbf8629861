"""Helpers for ``tests/test_browser.py``: JupyterLab server, Chromium, page scripts, checks.

The browser test proves in a real browser what headless runs cannot: that every notebook runs in
JupyterLab, that its widgets render as controls, and that moving the lesson's first control really
redraws its output. Everything here runs offline:

* JupyterLab is started from this environment with a temporary root (copies of the notebooks), a
  random token, temporary runtime/config/data/workspace/settings directories (nothing is written to
  the user's home or to the repository) and ``PYTHONPATH`` starting with ``tests/_netguard``, so the
  server and its kernels refuse non-loopback connections;
* Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright with background networking off
  and a host-resolver rule that fails every name lookup; the page routes every request that is not
  to the loopback server to an abort and records it (the test fails if there is any).

Run as a script to make the negative check's broken notebook copy::

    python tests/browser_support.py break notebooks/00_how_to_use_this_workbook.ipynb /tmp/broken [frozen|raise]
    BROWSER_NOTEBOOKS_DIR=/tmp/broken python -m pytest tests/test_browser.py   # must fail
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD_DIR = ROOT / "tests" / "_netguard"

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    # no traffic of the browser's own: no background fetches, component updates, sync, QUIC
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--no-default-browser-check", "--disable-default-apps",
    # every host-name lookup fails except 127.0.0.1, the only host the test talks to
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1280, "height": 1600}

# JupyterLab settings for the test: render every cell (no virtual scrolling), so that checks over
# the DOM see the whole notebook.
LAB_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}

# A widget shown as its plain-text repr means the widget front end did not render it.
PLAIN_WIDGET_RE = re.compile(
    r"\b(?:Int|Float|FloatLog)(?:Range)?Slider\(|\b(?:Dropdown|Checkbox|ToggleButtons|RadioButtons|"
    r"SelectionSlider|Select|IntText|FloatText)\((?:value|options|description)=|\binteractive\(children="
    r"|\b[VH]Box\(children=|Error displaying widget|Loading widget\.\.\.")
# JupyterLab 4.6 renders error outputs with the stderr renderer (data-mime-type
# application/vnd.jupyter.stderr, like ordinary stderr); inside widget outputs only the text tells.
TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\s*Cell In\[\d*\], line \d+", re.M)


# ----------------------------------------------------------------------------------------------
# Chromium / Playwright availability
# ----------------------------------------------------------------------------------------------
def find_chromium() -> str | None:
    """Debian's Chromium (or ``$BROWSER_CHROMIUM``); never a downloaded browser."""
    env = os.environ.get("BROWSER_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for cand in CHROMIUM_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable_reason() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"Playwright for Python cannot be imported ({type(exc).__name__}: {exc}); pip install playwright"
    if find_chromium() is None:
        log = ROOT / "build" / "apt-chromium.log"
        hint = f"; see {log.relative_to(ROOT)}" if log.exists() else ""
        where = os.environ.get("BROWSER_CHROMIUM") or " or ".join(CHROMIUM_CANDIDATES)
        return f"no Chromium at {where} (run `make browser-deps`, or apt-get install chromium{hint})"
    return None


# ----------------------------------------------------------------------------------------------
# Notebooks
# ----------------------------------------------------------------------------------------------
def notebooks_dir() -> Path:
    """``$BROWSER_NOTEBOOKS_DIR`` (e.g. a folder with a deliberately broken copy) or notebooks/."""
    env = os.environ.get("BROWSER_NOTEBOOKS_DIR")
    return Path(env).resolve() if env else ROOT / "notebooks"


def discover_notebooks() -> list[Path]:
    return sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def fast_mode() -> bool:
    return os.environ.get("BROWSER_FAST", "1").lower() not in ("0", "false", "no")


def copy_for_lab(src: Path, dst_dir: Path, fast: bool) -> Path:
    """Copy a notebook into the server's temporary root; with ``fast``, add ``FAST = True`` after
    the cell tagged ``parameters`` (as papermill does), so the run is quick. The original is untouched."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    if fast:
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
                nb["cells"].insert(i + 1, {
                    "cell_type": "code", "execution_count": None, "id": "browser-test-fast",
                    "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                    "source": ["# injected by tests/test_browser.py\n", "FAST = True"]})
                break
    dst = dst_dir / src.name
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return dst


def break_copy(src: Path, out_dir: Path, mode: str = "frozen") -> Path:
    """Write a copy of ``src`` into ``out_dir`` whose panel callback is broken on purpose.

    The copy wraps the function given to ``interactive_panel``. ``mode="frozen"``: its first
    control's argument stays at the value of the first call, so moving the control re-runs the
    function with the old value. ``mode="raise"``: the function works once, then raises when the
    control moves. The browser test must fail on both.
    """
    if mode not in ("frozen", "raise"):
        raise ValueError(f"mode={mode!r} must be 'frozen' or 'raise'")
    nb = json.loads(src.read_text(encoding="utf-8"))
    pat = re.compile(r"interactive_panel\(\s*([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*)\s*=")
    for cell in nb["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        m = pat.search(text)
        if cell["cell_type"] != "code" or not m:
            continue
        fn, kw = m.group(1), m.group(2)
        wrapper = (
            f"# BROKEN ON PURPOSE by tests/browser_support.py (mode {mode!r})\n"
            "import functools as _ft\n"
            "def _browser_test_broken(fn, name):\n"
            "    _first = {}\n"
            "    @_ft.wraps(fn)\n"
            "    def wrapper(**kw):\n"
            + ("        kw[name] = _first.setdefault(name, kw[name])\n" if mode == "frozen" else
               "        if _first.setdefault(name, kw[name]) != kw[name]:\n"
               "            raise RuntimeError('broken on purpose: ' + name + ' moved')\n") +
            "        return fn(**kw)\n"
            "    return wrapper\n\n")
        text = wrapper + text[:m.start()] + f"interactive_panel(_browser_test_broken({fn}, {kw!r}), {kw}=" + text[m.end():]
        cell["source"] = text
        cell["outputs"], cell["execution_count"] = [], None
        break
    else:
        raise ValueError(f"{src.name}: no `interactive_panel(fn, name=...)` call found to break")
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / src.name
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return dst


# ----------------------------------------------------------------------------------------------
# JupyterLab server
# ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``python -m jupyter lab`` on a free loopback port with a random token, in a temp sandbox."""

    def __init__(self, root_dir: Path, sandbox: Path):
        self.root_dir, self.sandbox = root_dir, sandbox
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = sandbox / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {k: self.sandbox / k.lower() for k in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR")}
        for key, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[key] = str(path)
        # the network guard first, then the repository (lessons_lib imports even without the editable install)
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in (str(GUARD_DIR), str(ROOT))]
        env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), *parts, str(ROOT)])
        env["LESSONS_QUIET"] = "1"
        # the tests set MPLBACKEND=Agg for headless runs; a browser kernel must show figures inline
        env.pop("MPLBACKEND", None)
        env.pop("JUPYTER_PATH", None)
        return env

    def start(self, timeout: float = 90.0) -> None:
        settings = self.sandbox / "lab-settings"
        for rel, value in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(value))
        (self.sandbox / "workspaces").mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root_dir}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={self.sandbox / 'workspaces'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer /api/status within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str, timeout: float = 10):
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.base}{path}{sep}token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def shutdown_sessions(self) -> None:
        for s in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{s['id']}", timeout=30)
            except (OSError, urllib.error.URLError):
                pass

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def blocked_network(self) -> list[str]:
        """Lines where the network guard refused a connection of the server or a kernel."""
        return [l for l in self.log_text().splitlines() if "network access blocked" in l]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:  # shuts down every kernel, then the server
            self.api("POST", "/api/shutdown", timeout=10)
            self.proc.wait(timeout=20)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the server's own process group only
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


# ----------------------------------------------------------------------------------------------
# Checks on what the page shows
# ----------------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(\s*%)?")


def _numbers(text: str) -> list[tuple[float, str, bool]]:
    text = re.sub(r"(?<=\d)[,_](?=\d{3}\b)", "", text)  # 1,024 / 11_689_512
    out = []
    for m in _NUM_RE.finditer(text):
        raw = m.group(0).rstrip("% ").strip()
        try:
            out.append((float(raw), raw, bool(m.group(1))))
        except ValueError:
            pass
    return out


def _matches(value: float, raw: str) -> bool:
    """``raw`` (a number as printed) equals ``value`` rounded to the digits ``raw`` shows."""
    try:
        printed = float(raw)
    except ValueError:
        return False
    mant = raw.lower().split("e")[0]
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    scale = 10 ** int(raw.lower().split("e")[1]) if "e" in raw.lower() else 1.0
    tol = 0.5 * 10 ** (-decimals) * scale + 1e-12 * max(abs(value), 1)
    return abs(printed - value) <= tol and (value == 0 or printed != 0)


def output_mentions(shown: str, output_text: str) -> bool:
    """Does the output text mention the control's new value (as its readout or label shows it)?

    Numbers match when the output prints the value at any precision (``0.5`` for a readout ``0.50``,
    ``50%``, ``1e-3`` for ``0.001``); labels match case-insensitively, ``_`` and spaces alike.
    """
    shown = shown.strip()
    if not shown:
        return False
    nums = _numbers(shown)
    if len(nums) == 1 and nums[0][1] == shown.replace(",", "").replace("_", ""):
        value = nums[0][0]
        for printed, raw, pct in _numbers(output_text):
            if _matches(value * 100 if pct else value, raw) or _matches(value, raw):
                return True
        return False
    norm = lambda s: re.sub(r"[\s_\-]+", " ", s.lower()).strip()  # noqa: E731
    return norm(shown) in norm(output_text)


# JavaScript run in the page (window.jupyterapp is exposed by --LabApp.expose_app_in_browser).
JS_PANEL = "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
JS_KERNEL_READY = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && k.connectionStatus === 'connected' && w.content); }"""
JS_STATE = """() => { const w = window.jupyterapp.shell.currentWidget;
  const s = w.sessionContext.session; const k = s && s.kernel;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return { status: k ? k.status : 'none', connection: k ? k.connectionStatus : 'none',
    counts: cells.map(c => c.model.executionCount),
    errors: cells.flatMap((c, i) => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
      .map(o => ({cell: i, ename: o.ename, evalue: o.evalue,
                  source: c.model.sharedModel.getSource().split('\\n').slice(0, 3).join('\\n')}))) }; }"""
JS_OUTPUT_TEXTS = "() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText)"
JS_MARK_PANEL = """() => { const c = document.querySelector('.lesson-primary'); if (!c) return null;
  const panel = c.closest('.lesson-panel'); if (!panel) return 'no-panel';
  const out = Array.from(panel.querySelectorAll('.lesson-output')).find(o => o.closest('.lesson-panel') === panel);
  if (!out) return 'no-output';
  c.setAttribute('data-browser-test', 'primary'); out.setAttribute('data-browser-test', 'output');
  panel.setAttribute('data-browser-test', 'panel');
  if (c.querySelector('.noUi-handle')) return 'slider';
  if (c.querySelector('select')) return 'dropdown';
  if (c.querySelector('input[type=checkbox]')) return 'checkbox';
  return 'unknown:' + c.className; }"""
JS_SHOWN_VALUE = """(kind) => { const c = document.querySelector('[data-browser-test=primary]');
  if (kind === 'slider') { const r = c.querySelector('.widget-readout');
    return r ? (r.value !== undefined && r.value !== '' ? r.value : r.innerText) : c.querySelector('.noUi-handle').getAttribute('aria-valuetext'); }
  if (kind === 'dropdown') { const s = c.querySelector('select'); return s.options[s.selectedIndex].text; }
  if (kind === 'checkbox') return String(c.querySelector('input[type=checkbox]').checked);
  return ''; }"""

JS_DECODE_PANEL_IMAGES = """async () => { const imgs = Array.from(
    document.querySelectorAll('[data-browser-test=output] img'));
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return imgs.map(i => i.naturalWidth); }"""

# Last step before the screenshot (all checks are done): keep the panel's cell and its neighbours, hide
# the rest. Headless Chromium rasterises in software with a bounded image budget; in a long lesson
# (every cell rendered, dozens of figures) it painted only the top rows of the panel's new figure
# although the <img> had loaded and decoded (seen on lesson 08). A short page paints it whole.
JS_SCREENSHOT_VIEW = """async () => { const panel = document.querySelector('[data-browser-test=panel]');
  const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
  const k = cells.findIndex(c => c.contains(panel));
  cells.forEach((c, j) => { if (j < k - 2 || j > k + 1) c.style.display = 'none'; });
  panel.scrollIntoView({block: 'center'});
  await Promise.all(Array.from(panel.querySelectorAll('img')).map(i => i.decode().catch(() => null)));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); }"""


def looks_like_traceback(text: str) -> bool:
    return bool(TRACEBACK_RE.search(text))


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "break":
        dst = break_copy(Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:])
        print(f"wrote {dst} (panel callback broken: {(sys.argv[4:] or ['frozen'])[0]}); now run:\n"
              f"  BROWSER_NOTEBOOKS_DIR={dst.parent} python -m pytest tests/test_browser.py   # must FAIL")
    else:
        print("usage: python tests/browser_support.py break NOTEBOOK.ipynb OUT_DIR [frozen|raise]", file=sys.stderr)
        sys.exit(2)
