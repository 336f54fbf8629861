"""Small core modules: checks, source, machine, devices, widgets, plotting, course."""
from __future__ import annotations

import re

import matplotlib
import pytest
import torch

from lessons_lib import course, devices, machine
from lessons_lib.course import checks, plotting, source, widgets


def test_compare_prints_a_verdict(capsys):
    assert checks.compare("SE params", 2128, 2128, ref_name="torchvision")
    assert capsys.readouterr().out.strip() == "SE params: ours 2128, torchvision 2128, match: True"
    assert not checks.compare("x", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), atol=0.1)
    assert capsys.readouterr().out.strip() == "x: ours Tensor(2,) vs reference, within atol 0.1, match: False"
    assert checks.compare("y", 1.0, 1.0 + 1e-9, rtol=1e-6)
    assert capsys.readouterr().out.strip() == "y: ours vs reference within rtol 1e-06, match: True"


def test_compare_prints_no_float_noise(capsys):
    """Float verdicts print the tolerance, never the values' last digits (they differ between CPUs)."""
    a, b = 0.8784512345, 0.8784899
    checks.compare("kl", a, b, ref_name="scipy", rtol=1e-3)
    checks.compare("kl", a + 1e-12, b, ref_name="scipy", rtol=1e-3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1] == "kl: ours vs scipy within rtol 0.001, match: True"
    # no tolerance given: floats are compared within FLOAT_RTOL, not bit for bit
    assert checks.compare("f", 0.1 + 0.2, 0.3)
    assert not checks.compare("f", 0.3001, 0.3)
    assert "within rtol 1e-06" in capsys.readouterr().out
    assert checks.compare("exact", 2.0**-24, 2.0**-24, ref_name="finfo", show_values=True)
    assert capsys.readouterr().out.strip() == "exact: ours 5.96046e-08, finfo 5.96046e-08 (within rtol 1e-06), match: True"
    assert checks.compare("t", torch.arange(3), torch.arange(3))
    assert capsys.readouterr().out.strip() == "t: ours Tensor(3,) vs reference, exactly equal, match: True"
    assert checks.compare("pair", (1, 2), (1, 2))
    assert capsys.readouterr().out.strip() == "pair: ours (1, 2), reference (1, 2), match: True"


def test_close_handles_shapes_and_sequences():
    assert checks.close((1, 2), (1, 2))[0]
    assert not checks.close(torch.zeros(2), torch.zeros(3))[0]


def test_exercise_decorator_rejects_duplicates():
    ex = checks.exercise("99.tmp_unique", prompt="p", solution=lambda: 1.0, hint="h")(checks.numeric_checker(lambda: 1.0))
    try:
        with pytest.raises(ValueError, match="registered twice"):
            checks.exercise("99.tmp_unique", prompt="p", solution=lambda: 1)(lambda a: (True, ""))
        assert ex.check(1.005) and not ex.check(1.5)
        assert repr(ex.check(1.0)) == "CheckResult(ok=True)"
    finally:
        checks.EXERCISES.pop("99.tmp_unique")


def test_checker_that_raises_is_contained(capsys):
    def bad(answer):
        raise KeyError("boom")
    ex = checks.Exercise("99.x", "p", bad, lambda: 1, hint="h")
    assert not ex.check(3)
    assert "could not check" in capsys.readouterr().out


def test_show_source_prints_module_qualified_header(capsys):
    source.show_source(devices.estimate_ms)
    out = capsys.readouterr().out
    assert out.startswith("# lessons_lib.devices.estimate_ms") and "def estimate_ms" in out
    assert "/" not in out.splitlines()[0]
    with pytest.raises(TypeError, match="no Python source"):
        source.source_of(len)
    with pytest.raises(ValueError, match="lines"):
        source.show_source(devices.estimate_ms, lines=(5, 2))


def test_machine_description_and_device_resolution():
    d = machine.describe("cpu")
    assert d.startswith("CPU: ") and "torch" in d and "cores" in d
    assert machine.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device='tpu'"):
        machine.resolve_device("tpu")
    with pytest.raises(TypeError, match="device=3"):
        machine.resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            machine.resolve_device("cuda")


def test_device_estimates_follow_document_001():
    # 1 GMAC = 2 GFLOP; at 13.5 GFLOPS that is 148.1 ms
    assert devices.estimate_ms(1e9, "Raspberry Pi 4B") == pytest.approx(2 / 13.5 * 1e3)
    assert devices.estimate_ms(1e9, 2.0) == pytest.approx(1000.0)
    assert devices.achieved_gflops(1e9, 1000.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="gflops='TPU'"):
        devices.estimate_ms(1e9, "TPU")
    with pytest.raises(ValueError, match="macs=-1"):
        devices.estimate_ms(-1, 1.0)
    with pytest.raises(TypeError, match="ms=None"):
        devices.achieved_gflops(1.0, None)


def test_interactive_panel_marks_primary_control_and_runs_once():
    calls = []
    panel = widgets.interactive_panel(lambda a=1, b="x": calls.append((a, b)),
                                      a=widgets.int_slider("a", 1, 0, 5), b=widgets.dropdown("b", ["x", "y"]))
    assert calls == [(1, "x")]  # a headless run still executes the function once
    first = panel.children[0]
    assert widgets.PRIMARY_CLASS in first._dom_classes
    assert widgets.OUTPUT_CLASS in panel.out._dom_classes
    first.value = 3
    assert calls[-1] == (3, "x")
    with pytest.raises(ValueError, match="at least one control"):
        widgets.interactive_panel(lambda: None)
    # the browser test moves the first *slider*, wherever it stands among the controls
    later = widgets.interactive_panel(lambda b="x", a=1: None, b=widgets.dropdown("b", ["x", "y"]),
                                      a=widgets.int_slider("a", 1, 0, 5))
    assert [widgets.PRIMARY_CLASS in c._dom_classes for c in later.children[:2]] == [False, True]
    only = widgets.interactive_panel(lambda b="x": None, b=widgets.dropdown("b", ["x", "y"]))
    assert widgets.PRIMARY_CLASS in only.children[0]._dom_classes
    with pytest.raises(TypeError, match="value widget"):
        widgets.interactive_panel(lambda a: None, a=5)


def test_plotting_returns_axes():
    matplotlib.use("Agg")
    plotting.use_house_style()
    assert plotting.bar({"a": 1, "b": 2}).__class__.__name__ == "Axes"
    assert plotting.grouped_bar({"s1": {"a": 1, "b": 2}, "s2": {"a": 2, "b": 1}}).get_legend() is not None
    ax = plotting.lines([1, 2, 3], {"y": [1, 4, 9]}, logy=True)
    assert ax.get_yscale() == "log"
    fig = plotting.image_grid(torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8), list("abcde"), ncols=3)
    assert len(fig.axes) == 6


def test_course_map_lists_every_lesson_once():
    numbers = [l.number for l in course.LESSONS]
    assert numbers == sorted(set(numbers))
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", l.filename) for l in course.LESSONS)
    table = course.course_map()
    assert table.count("\n") == len(course.LESSONS) + 1 and "ready" in table
