"""Every notebook in a real browser: JupyterLab + ipywidgets, driven by Playwright in Chromium.

Headless runs (papermill, nbval) cannot show that a widget renders or that moving a slider redraws a
plot; this test can. One JupyterLab server and one Chromium serve the whole session; per notebook
(discovered from disk, ``$BROWSER_NOTEBOOKS_DIR`` overrides notebooks/) it

1. opens a temporary copy in JupyterLab (``FAST = True`` injected after the parameters cell unless
   ``BROWSER_FAST=0``), clears outputs, restarts the kernel and runs all cells;
2. waits until the kernel is idle and every code cell has an execution count, and checks the counts
   are 1..N (a fresh kernel ran every cell) and that no cell has an error output (nor any output,
   widget outputs included, shows a traceback);
3. checks that widgets rendered as controls (no ``IntSlider(value=...`` text, a ``.lesson-primary``
   control exists);
4. changes the first ``.lesson-primary`` control (slider one step right, or left at its maximum;
   dropdown to the next option; checkbox toggled) and requires that the ``.lesson-output`` of the same
   ``.lesson-panel`` changes, shows no traceback, and -- when it has text -- mentions the new value;
5. saves a screenshot to ``build/browser/NN_name.png``, scrolled to the panel (cells far from it hidden:
   see ``browser_support.JS_SCREENSHOT_VIEW``).

No network: see ``tests/browser_support.py``. Skipped, with the reason, where Playwright or
Chromium cannot be used. Times per notebook are printed at the end of the session and written to
``build/browser/times.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

import browser_support as bs

NOTEBOOKS = bs.discover_notebooks()
SHOTS = bs.ROOT / "build" / "browser" / ("" if "BROWSER_NOTEBOOKS_DIR" not in os.environ else "custom")
RUN_TIMEOUT = float(os.environ.get("BROWSER_RUN_TIMEOUT", "300"))   # s for "run all" of one notebook
CHANGE_TIMEOUT = 30.0                                               # s for the output to react
TIMES: dict[str, dict[str, float]] = {}
SPAN: dict[str, float] = {}   # monotonic end of the last browser test (the report runs at session end)


@pytest.fixture(scope="session")
def browser_report(request):
    """Prints and saves the per-notebook and total browser times at the end of the session."""
    t0 = time.monotonic()
    yield TIMES
    if not TIMES:
        return
    total = SPAN.get("end", time.monotonic()) - t0   # server + browser start and every notebook, not later tests
    lines = [f"{name:<40} {t['total_s']:6.1f} s  (open {t['open_s']:.1f}, run all {t['run_s']:.1f}, "
             f"widget change {t['change_s']:.1f})" for name, t in TIMES.items()]
    lines.append(f"{'browser test total (incl. server + browser start)':<40} {total:6.1f} s")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "times.json").write_text(json.dumps({"notebooks": TIMES, "total_s": round(total, 1)}, indent=2))
    rep = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if rep is None or capman is None:
        print("\n".join(lines))
        return
    with capman.global_and_fixture_disabled():  # teardown output is captured otherwise
        rep.ensure_newline()
        rep.section("browser test times", sep="-")
        for line in lines:
            rep.write_line(line)


def _unavailable(reason: str) -> None:
    """Skip only when the user asked for it (``BROWSER=0``, e.g. ``make test BROWSER=0``); otherwise fail
    with the reason, so that a ``make test`` that could not drive a browser never looks green."""
    if os.environ.get("BROWSER") == "0":
        pytest.skip(f"browser test skipped on request (BROWSER=0): {reason}")
    pytest.fail(f"browser test cannot run: {reason} (install it with `make browser-deps`, "
                "or skip explicitly with BROWSER=0)", pytrace=False)


def _require_browser() -> None:
    if os.environ.get("BROWSER") == "0":
        pytest.skip("browser test skipped on request (BROWSER=0)")
    reason = bs.unavailable_reason()
    if reason:
        _unavailable(reason)


@pytest.fixture(scope="session")
def lab(browser_report):
    """One JupyterLab for the session, rooted at a temp dir holding copies of the notebooks."""
    _require_browser()
    sandbox = Path(tempfile.mkdtemp(prefix="browser-test-"))
    root = sandbox / "notebooks"
    root.mkdir()
    for nb in NOTEBOOKS:
        bs.copy_for_lab(nb, root, fast=bs.fast_mode())
    server = bs.LabServer(root, sandbox)
    t = time.monotonic()
    try:
        server.start()
        server.start_s = time.monotonic() - t
        yield server
    finally:
        server.stop()
        blocked = server.blocked_network()
        shutil.rmtree(sandbox, ignore_errors=True)
    assert not blocked, "JupyterLab or a kernel tried to reach the network:\n" + "\n".join(blocked)


@pytest.fixture(scope="session")
def browser(browser_report):
    """One Chromium (Debian's, never a downloaded one) with a new empty profile."""
    _require_browser()   # before importing Playwright; and executable_path is never None
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="browser-test-profile-"))
    pw = sync_playwright().start()
    try:
        try:
            context = pw.chromium.launch_persistent_context(
                str(profile), executable_path=bs.find_chromium(), headless=True, args=bs.CHROMIUM_ARGS,
                viewport=bs.VIEWPORT, service_workers="block")
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _unavailable(f"Chromium at {bs.find_chromium()} cannot be started by Playwright ({first})")
        context.outside = []  # requests that were not to the loopback server: recorded and aborted

        def guard(route):
            context.outside.append(route.request.url)
            route.abort()

        context.route(lambda url: urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", None)
                      and not url.startswith(("data:", "blob:")), guard)
        yield context
        context.close()
    finally:
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(cond, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _run_all(page, name: str) -> dict:
    """Clear outputs, restart the kernel (accepting the dialog), run all; return the final state."""
    page.wait_for_function(bs.JS_KERNEL_READY, timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    state = page.evaluate(bs.JS_STATE)
    assert all(c is None for c in state["counts"]), f"{name}: clearing outputs left execution counts {state['counts']}"
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:restart-run-all'); }")
    page.wait_for_selector(".jp-Dialog .jp-Dialog-button.jp-mod-accept", timeout=30_000)
    page.click(".jp-Dialog .jp-Dialog-button.jp-mod-accept")   # "Restart"
    idle_with_error = 0
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        state = page.evaluate(bs.JS_STATE)
        idle = state["status"] == "idle" and state["connection"] == "connected"
        if idle and all(c is not None for c in state["counts"]):
            return state
        idle_with_error = idle_with_error + 1 if idle and state["errors"] else 0
        if idle_with_error >= 3:   # run-all stopped at the error
            return state
        if state["status"] == "dead":
            raise AssertionError(f"{name}: the kernel died during run-all")
        if time.monotonic() > deadline:
            pending = [i for i, c in enumerate(state["counts"]) if c is None]
            raise AssertionError(f"{name}: run-all did not finish within {RUN_TIMEOUT:.0f} s; kernel "
                                 f"{state['status']}, code cells not executed: {pending}")
        time.sleep(0.5)


def _settled_output(page, timeout: float = CHANGE_TIMEOUT, quiet: float = 1.5) -> str:
    """innerHTML of the panel's output once the kernel is idle and the output stopped changing."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        html = page.inner_html("[data-browser-test=output]")
        idle = page.evaluate(bs.JS_STATE)["status"] == "idle"
        if html != last or not idle:
            last, since = html, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return html
        if time.monotonic() > deadline:
            return html
        time.sleep(0.25)


def _change_primary(page, kind: str) -> str:
    """Change the primary control one step; return a description of what was done."""
    if kind == "slider":
        handle = page.locator("[data-browser-test=primary] .noUi-handle").first
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        key = "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"
        handle.focus()
        page.keyboard.press(key)
        return f"slider {key} (was {now}, max {top})"
    if kind == "dropdown":
        select = page.locator("[data-browser-test=primary] select").first
        n = select.evaluate("s => s.options.length")
        assert n >= 2, "the primary dropdown has a single option: nothing to change"
        i = select.evaluate("s => s.selectedIndex")
        select.select_option(index=(i + 1) % n)
        return f"dropdown option {i} -> {(i + 1) % n}"
    if kind == "checkbox":
        page.locator("[data-browser-test=primary] input[type=checkbox]").first.click()
        return "checkbox toggled"
    raise AssertionError(f"the first .lesson-primary is not a slider, dropdown or checkbox ({kind}); "
                         "use the controls of lessons_lib.course.widgets")


@pytest.mark.browser
@pytest.mark.timeout(RUN_TIMEOUT + 240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_browser(path, browser, lab):
    name = path.name
    page = browser.new_page()
    errors_in_console: list[str] = []
    page.on("pageerror", lambda exc: errors_in_console.append(str(exc)))
    t0 = time.monotonic()
    try:
        page.goto(lab.url(f"/lab/workspaces/bt-{path.stem}/tree/{urllib.parse.quote(name)}"),
                  wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(bs.JS_PANEL, timeout=120_000)
        t_open = time.monotonic()

        # 1-2. restart and run all; every cell ran in a fresh kernel, no error output
        state = _run_all(page, name)
        t_run = time.monotonic()
        assert not state["errors"], f"{name}: error output in the browser run:\n" + "\n".join(
            f"  code cell {e['cell']}: {e['ename']}: {e['evalue']}\n    {e['source']}" for e in state["errors"])
        assert state["counts"] == list(range(1, len(state["counts"]) + 1)), (
            f"{name}: execution counts {state['counts']} are not 1..N: not a full run in a fresh kernel")

        # 3. widgets are controls, not text
        kind = _wait(lambda: page.evaluate(bs.JS_MARK_PANEL), 30,
                     f"{name}: a .lesson-primary control (build the panel with lessons_lib.course.widgets.interactive_panel)",
                     poll=0.5)
        assert kind not in ("no-panel", "no-output"), f"{name}: the first .lesson-primary has {kind} (.lesson-panel / .lesson-output)"
        texts = page.evaluate(bs.JS_OUTPUT_TEXTS)
        plain = [t.strip()[:160] for t in texts if bs.PLAIN_WIDGET_RE.search(t)]
        assert not plain, f"{name}: widgets shown as text, not rendered as controls: {plain}"
        raised = [t.strip()[-800:] for t in texts if bs.looks_like_traceback(t)]   # e.g. inside a widget output
        assert not raised, f"{name}: a traceback is shown after run-all:\n" + "\n---\n".join(raised)

        # 4. the first control drives its output
        before = _settled_output(page)
        shown_before = page.evaluate(bs.JS_SHOWN_VALUE, kind)
        action = _change_primary(page, kind)
        _wait(lambda: page.evaluate(bs.JS_SHOWN_VALUE, kind) != shown_before, 10,
              f"{name}: the control to take the new value ({action}; shows {shown_before!r})")
        shown = page.evaluate(bs.JS_SHOWN_VALUE, kind)
        t_change = time.monotonic()
        changed = _wait(lambda: page.inner_html("[data-browser-test=output]") != before, CHANGE_TIMEOUT,
                        f"{name}: .lesson-output to change after {action} ({shown_before!r} -> {shown!r})")
        after = _settled_output(page)
        t_done = time.monotonic()
        out_text = page.inner_text("[data-browser-test=output]")
        assert changed and after != before, f"{name}: .lesson-output did not change after {action}"
        assert not bs.looks_like_traceback(out_text), f"{name}: the panel raised after {action}:\n{out_text[-1500:]}"
        has_text = bool(out_text.strip())
        if kind != "checkbox" and has_text:
            assert bs.output_mentions(shown, out_text), (
                f"{name}: after {action} the control shows {shown!r} but the panel's text does not mention it "
                f"(the output changed only by itself, e.g. a timing?):\n{out_text.strip()[:600]}")

        # 5. screenshot, scrolled to the panel, once its images are decoded
        page.evaluate("() => document.querySelector('[data-browser-test=panel]').scrollIntoView({block: 'center'})")
        images = page.evaluate(bs.JS_DECODE_PANEL_IMAGES)
        assert all(w > 0 for w in images), f"{name}: an image in the panel's output did not load ({images})"
        page.evaluate(bs.JS_SCREENSHOT_VIEW)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{path.stem}.png"), full_page=True)
        (SHOTS / f"{path.stem}.FAILED.png").unlink(missing_ok=True)
        assert not browser.outside, f"the page tried to reach the network: {browser.outside}"
        TIMES[name] = {"open_s": round(t_open - t0, 1), "run_s": round(t_run - t_open, 1),
                       "change_s": round(t_done - t_change, 1), "total_s": round(time.monotonic() - t0, 1),
                       "control": action, "value": f"{shown_before} -> {shown}",
                       "output": f"{len(images)} image(s), {len(out_text.strip())} characters of text"}
    except Exception:
        try:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{path.stem}.FAILED.png"), full_page=True)
        except Exception:
            pass
        if errors_in_console:
            print("page errors:", *errors_in_console[:5], sep="\n  ")
        raise
    finally:
        page.close()
        lab.shutdown_sessions()
        SPAN["end"] = time.monotonic()


# ---- the helpers' own checks (no browser needed) ----------------------------------------------
@pytest.mark.parametrize("shown, text, ok", [
    ("256", "mobilenet_v2 at 256x256: 392.5 M MACs", True),
    ("256", "mobilenet_v2 at 224x224: 300.8 M MACs; measured here 2.56 ms", False),
    ("0.50", "keep 0.5 of the weights", True),
    ("0.50", "sparsity 50%", True),
    ("0.50", "sparsity 5%", False),
    ("1.00e-3", "lr = 0.001", True),
    ("1024", "1,024 channels", True),
    ("mobilenet_v2", "Model: MobileNet V2, 3.5 M params", True),
    ("resnet18", "mobilenet_v2 at 224x224", False),
])
def test_output_mentions(shown, text, ok):
    assert bs.output_mentions(shown, text) is ok


def test_traceback_and_plain_widget_patterns():
    assert bs.looks_like_traceback("----\nZeroDivisionError   Traceback (most recent call last)\nCell In[3], line 1")
    assert not bs.looks_like_traceback("UserWarning: something is deprecated")
    assert bs.PLAIN_WIDGET_RE.search("interactive(children=(IntSlider(value=224, description='resolution'")
    assert bs.PLAIN_WIDGET_RE.search("IntSlider(value=3, max=10)")
    assert not bs.PLAIN_WIDGET_RE.search("Text(0.5, 1.0, 'title')")


@pytest.mark.parametrize("mode", ["frozen", "raise"])
def test_break_copy_wraps_the_panel_function(tmp_path, mode):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from lessons_lib.course.widgets import int_slider, interactive_panel\n"
        "def show(n=1):\n    print(f'n = {n}')\n"
        "panel = interactive_panel(show, n=int_slider('n', 1, 0, 5))")]
    src = tmp_path / "00_x.ipynb"
    nbformat.write(nb, src)
    dst = bs.break_copy(src, tmp_path / "broken", mode)
    code = nbformat.read(dst, as_version=4).cells[0].source
    assert "BROKEN ON PURPOSE" in code and "_browser_test_broken(show, 'n')" in code
    ns: dict = {}
    exec(compile(code, "broken", "exec"), ns)
    broken = ns["_browser_test_broken"](lambda n=1: n, "n")
    assert broken(n=2) == 2                      # the first call passes through
    if mode == "frozen":
        assert broken(n=3) == 2                  # later calls ignore the new value
    else:
        with pytest.raises(RuntimeError, match="broken on purpose"):
            broken(n=3)
    with pytest.raises(ValueError, match="mode='sideways'"):
        bs.break_copy(src, tmp_path / "b2", "sideways")


def test_copy_for_lab_injects_fast_after_parameters(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("FAST = False")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 00"), p, nbformat.v4.new_code_cell("print(FAST)")]
    src = tmp_path / "src" / "00_x.ipynb"
    src.parent.mkdir()
    nbformat.write(nb, src)
    before = src.read_bytes()
    out = nbformat.read(bs.copy_for_lab(src, tmp_path, fast=True), as_version=4)
    assert [c.source.splitlines()[-1] for c in out.cells] == ["# 00", "FAST = False", "FAST = True", "print(FAST)"]
    assert src.read_bytes() == before
