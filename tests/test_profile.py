"""lessons_lib.profile against fvcore, ptflops and torchvision's published numbers; per-layer rows by hand."""
from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torchvision
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info
from torch import nn

from lessons_lib import profile

MODELS = {
    "mobilenet_v2": (torchvision.models.mobilenet_v2, torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1),
    "shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0,
                           torchvision.models.ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1),
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
}
SHAPE = (1, 3, 224, 224)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {name: build(weights=None).eval() for name, (build, _) in MODELS.items()}


@pytest.fixture(scope="module")
def reports(nets):
    return {name: profile.profile_model(net, SHAPE) for name, net in nets.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_totals_match_fvcore_conv_plus_linear(name, nets, reports):
    fca = FlopCountAnalysis(nets[name], torch.randn(*SHAPE))
    ops = fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).by_operator()
    fv = sum(ops.get(k, 0) for k in ("conv", "linear", "addmm"))
    assert reports[name].total_macs == fv
    assert reports[name].total_params == sum(p.numel() for p in nets[name].parameters())


def test_totals_match_ptflops_aten_backend(nets, reports):
    # the aten backend counts aten.convolution and Linear's aten.addmm only -- plus one add per output of
    # the addmm bias (the classifier's 1000 outputs), which our convention (and torchvision's) leaves out
    macs, params = get_model_complexity_info(nets["mobilenet_v2"], SHAPE[1:], as_strings=False,
                                             print_per_layer_stat=False, backend="aten")
    fc = nets["mobilenet_v2"].classifier[1]
    assert reports["mobilenet_v2"].total_macs == macs - fc.out_features
    assert reports["mobilenet_v2"].total_params == params


@pytest.mark.parametrize("name", list(MODELS))
def test_totals_match_torchvision_published_metadata(name, reports):
    meta = MODELS[name][1].meta  # metadata only: nothing is downloaded
    assert reports[name].total_params == meta["num_params"]
    assert round(reports[name].total_macs / 1e9, 3) == meta["_ops"]


def test_known_exact_totals(reports):
    # conv + linear MACs, computed layer by layer (the convention of fvcore and ptflops: multiply-accumulates of conv and linear layers, bias excluded)
    assert reports["mobilenet_v2"].total_macs == 300_774_272
    assert reports["shufflenet_v2_x1_0"].total_macs == 144_907_992
    assert reports["resnet18"].total_macs == 1_814_073_344


def _small():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 5))


def test_per_layer_rows_by_hand():
    rep = profile.profile_model(_small(), (1, 3, 8, 8))
    # (type, out_shape, params, MACs, other ops, memory bytes = 4 x (weights + input + output elements))
    want = [
        ("Conv2d", (1, 8, 8, 8), 216, 216 * 64, 0, 4 * (216 + 192 + 512)),
        ("BatchNorm2d", (1, 8, 8, 8), 16, 0, 512, 4 * (16 + 512 + 512)),
        ("ReLU", (1, 8, 8, 8), 0, 0, 512, 4 * (512 + 512)),
        ("Conv2d", (1, 8, 8, 8), 8 * 9 + 8, 512 * 9, 0, 4 * (80 + 512 + 512)),
        ("AdaptiveAvgPool2d", (1, 8, 1, 1), 0, 0, 512, 4 * (512 + 8)),
        ("Flatten", (1, 8), 0, 0, 8, 4 * (8 + 8)),
        ("Linear", (1, 5), 45, 40, 0, 4 * (45 + 8 + 5)),
    ]
    got = [(r.type, r.out_shape, r.params, r.macs, r.other_ops, r.mem_bytes) for r in rep.rows]
    assert got == want
    assert [r.name for r in rep.rows] == [str(i) for i in range(7)]
    assert rep.rows[0].intensity == pytest.approx(2 * 13824 / 3680)   # FLOPs per byte
    assert rep.rows[1].intensity == pytest.approx(512 / 4160)          # non-MAC layers: other ops per byte
    assert (rep.total_params, rep.total_macs, rep.total_flops) == (357, 13824 + 4608 + 40, 2 * 18472)
    assert rep.other_ops == 512 * 3 + 8 and rep.mem_bytes == sum(w[-1] for w in want)
    assert rep.input_shape == (1, 3, 8, 8)
    # batch 2 doubles MACs and activations, not weights
    rep2 = profile.profile_model(_small(), (2, 3, 8, 8))
    assert rep2.total_macs == 2 * rep.total_macs and rep2.rows[0].mem_bytes == 4 * (216 + 2 * 704)


def test_profile_restores_mode_and_counts_shared_modules_per_call():
    relu = nn.ReLU()
    net = nn.Sequential(nn.Conv2d(2, 2, 1), relu, nn.Conv2d(2, 2, 1), relu).train()
    rep = profile.profile_model(net, (1, 2, 4, 4))
    assert net.training and [r.type for r in rep.rows] == ["Conv2d", "ReLU", "Conv2d", "ReLU"]
    assert rep.total_params == 12 and rep.total_macs == 2 * 4 * 16


def test_table_view():
    rep = profile.profile_model(_small(), (1, 3, 8, 8))
    text = rep.table()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "output"] and len(lines) == 2 + 7 + 2
    assert "13,824" in lines[2] and lines[-1].startswith("total") and "18,472" in lines[-1] and "357" in lines[-1]
    assert str(rep) == text
    assert "... 4 more rows" in rep.table(max_rows=3)
    only = rep.table(only_macs=True).splitlines()
    assert len(only) == 2 + 3 + 2 and all("ReLU" not in ln for ln in only)


def test_plot_view():
    import matplotlib.pyplot as plt

    rep = profile.profile_model(_small(), (1, 3, 8, 8))
    ax = rep.plot(top=2)
    bars = [p.get_width() for p in ax.patches]
    assert bars == pytest.approx([4608 / 1e6, 13824 / 1e6])  # the two largest, biggest on top
    assert "top 2" in ax.get_title() and "0.0 M" in ax.get_title()
    plt.close(ax.figure)


def test_measure_latency_counts_calls_and_summarises():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return x * 2

    lat = profile.measure_latency(fn, torch.randn(3, 4), warmup=2, repeats=7)
    assert len(calls) == 9 and lat.repeats == 7
    assert lat.p10_ms <= lat.median_ms <= lat.p90_ms and lat.spread_ms == pytest.approx(lat.p90_ms - lat.p10_ms)
    assert lat.device == "cpu" and "CPU" in lat.machine and "ms" in str(lat)
    slow = profile.measure_latency(fn, (torch.randn(2),), warmup=0, repeats=1, min_time_s=0.02)
    assert slow.repeats > 1  # kept repeating until 20 ms were measured


def test_measure_latency_orders_fast_and_slow_work():
    # a sleep has a floor that no load can lower, and a tiny op stays far below it: the timer, not the
    # machine, is under test (speed comparisons live in benchmarks/)
    a = torch.randn(64)
    fast = profile.measure_latency(lambda x: x + 1, a, repeats=15)
    slow = profile.measure_latency(lambda x: time.sleep(0.025), a, repeats=15)
    assert slow.p10_ms >= 25.0 and slow.median_ms < 1000
    assert fast.median_ms < slow.median_ms and fast.repeats == slow.repeats == 15


def test_measure_side_by_side_interleaves():
    order = []
    cands = {"a": lambda x: order.append("a"), "b": lambda x: order.append("b")}
    lat = profile.measure_side_by_side(cands, torch.randn(2), warmup=1, repeats=3)
    assert order == ["a", "b"] * 4 and list(lat) == ["a", "b"] and lat["a"].repeats == 3
    per = profile.measure_side_by_side({"m": nn.Identity()}, {"m": (torch.randn(2),)}, warmup=0, repeats=2)
    assert per["m"].median_ms > 0


def test_budget_stops_repeating_early_with_at_least_one_call():
    # each call sleeps 30 ms; a 0.1 s budget (warm-up included) leaves room for a few calls, never 50
    nap = lambda x: time.sleep(0.03)  # noqa: E731
    lat = profile.measure_latency(nap, torch.ones(1), warmup=1, repeats=50, budget_s=0.1)
    assert 1 <= lat.repeats <= 4
    once = profile.measure_latency(nap, torch.ones(1), warmup=1, repeats=50, budget_s=0.001)
    assert once.repeats == 1  # the budget was spent by the warm-up: still one timed call
    capped = profile.measure_latency(lambda x: x, torch.ones(1), repeats=1, min_time_s=10, budget_s=0.05)
    assert capped.repeats >= 1  # min_time_s does not extend past the budget (the test would take 10 s)
    both = profile.measure_side_by_side({"a": nap, "b": lambda x: x}, torch.ones(1), warmup=0, repeats=50,
                                        budget_s=0.1)
    assert both["a"].repeats == both["b"].repeats and 1 <= both["a"].repeats <= 4
    full = profile.measure_side_by_side({"a": lambda x: x}, torch.ones(1), warmup=0, repeats=5, budget_s=60)
    assert full["a"].repeats == 5  # a budget that is not reached changes nothing


def test_largest_size_within_stops_at_the_first_size_over_budget():
    probed = []

    def make(n):
        return lambda: (probed.append(n), time.sleep(0.01 * n))

    n, t = profile.largest_size_within(make, [1, 2, 4, 8, 16], budget_s=0.05)
    assert n == 4 and probed == [1, 2, 4, 8] and 0.04 <= t < 0.05 + 0.5
    n, t = profile.largest_size_within(make, [16, 32], budget_s=0.05)
    assert n == 16 and t >= 0.16  # the smallest size even when it is over budget


def test_items_within():
    assert profile.items_within(10, 0.02, at_least=100, at_most=1000, multiple_of=100) == 500
    assert profile.items_within(10, 0.001, at_least=100, at_most=1000) == 1000  # clipped above
    assert profile.items_within(1, 0.5, at_least=100, at_most=1000) == 100      # clipped below
    assert profile.items_within(1, 0.3, at_least=1, at_most=10) == 3            # rounded down, never up


@pytest.mark.parametrize("call, err, words", [
    (lambda: profile.items_within(0, 1.0, at_least=1, at_most=2), ValueError, "budget_s=0"),
    (lambda: profile.items_within(1, 1.0, at_least=3, at_most=2), ValueError, "at_least=3"),
    (lambda: profile.items_within(1, 1.0, at_least=1, at_most=2, multiple_of=0), ValueError, "multiple_of=0"),
    (lambda: profile.measure_latency(abs, torch.ones(1), budget_s=0), ValueError, "budget_s=0"),
    (lambda: profile.measure_side_by_side({"a": abs}, torch.ones(1), budget_s=-1.0), ValueError, "budget_s=-1.0"),
    (lambda: profile.largest_size_within(lambda n: abs, [4, 2], 1.0), ValueError, "sizes=[4, 2]"),
    (lambda: profile.largest_size_within(lambda n: abs, [], 1.0), ValueError, "sizes=[]"),
    (lambda: profile.largest_size_within(lambda n: abs, [1], True), TypeError, "budget_s=True"),
    (lambda: profile.profile_model("resnet", (1, 3, 8, 8)), TypeError, "model=str"),
    (lambda: profile.profile_model(nn.Identity(), (0, 3)), ValueError, "input_shape=(0, 3)"),
    (lambda: profile.profile_model(nn.Identity(), (4,)), ValueError, "input_shape=(4,)"),
    (lambda: profile.profile_model(nn.Identity(), (1, 2.5)), TypeError, "input_shape=(1, 2.5)"),
    (lambda: profile.profile_model(nn.Identity(), (True, 3)), TypeError, "input_shape=(True, 3)"),
    (lambda: profile.measure_latency(3, torch.ones(1)), TypeError, "model_or_fn=3"),
    (lambda: profile.measure_latency(nn.Identity(), torch.ones(1), repeats=0), ValueError, "repeats=0"),
    (lambda: profile.measure_latency(nn.Identity(), torch.ones(1), warmup=-1), ValueError, "warmup=-1"),
    (lambda: profile.measure_latency(nn.Identity(), torch.ones(1), repeats=2.5), TypeError, "repeats=2.5"),
    (lambda: profile.measure_latency(nn.Identity(), torch.ones(1), min_time_s=-1), ValueError, "min_time_s=-1"),
    (lambda: profile.measure_side_by_side({}, torch.ones(1)), ValueError, "candidates={}"),
    (lambda: profile.measure_side_by_side({"a": 1}, torch.ones(1)), TypeError, "candidates['a']=1"),
    (lambda: profile.measure_side_by_side({"a": abs}, {"b": torch.ones(1)}), ValueError, "no entry for ['a']"),
])
def test_bad_inputs(call, err, words):
    with pytest.raises(err) as info:
        call()
    assert words in str(info.value)
