"""lessons_lib.roofline: the roofline maths on constructed cases, layer points against conv.layer_cost,
and the two measurements on tiny sizes (they must run and report what they timed)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lessons_lib import conv, roofline as R


def test_attainable_is_the_lower_roof():
    # peak 100 GFLOP/s, 10 GB/s: ridge at 10 FLOP/B
    assert R.ridge_intensity(100.0, 10.0) == 10.0
    assert R.attainable_gflops(1.0, 100.0, 10.0) == 10.0      # memory roof: 1 FLOP/B x 10 GB/s
    assert R.attainable_gflops(5.0, 100.0, 10.0) == 50.0
    assert R.attainable_gflops(10.0, 100.0, 10.0) == 100.0    # the ridge: both roofs
    assert R.attainable_gflops(1e6, 100.0, 10.0) == 100.0     # compute roof
    assert R.attainable_gflops(0.0, 100.0, 10.0) == 0.0
    assert R.bound(9.99, 100.0, 10.0) == "memory-bound"
    assert R.bound(10.0, 100.0, 10.0) == "compute-bound"


def test_roofline_time_is_the_larger_of_the_two_bounds():
    # 2e9 FLOPs at 100 GFLOP/s = 20 ms; 1e8 bytes at 10 GB/s = 10 ms -> 20 ms (compute-bound)
    assert R.roofline_ms(2e9, 1e8, 100.0, 10.0) == pytest.approx(20.0)
    # 1e9 bytes at 10 GB/s = 100 ms dominates
    assert R.roofline_ms(2e9, 1e9, 100.0, 10.0) == pytest.approx(100.0)
    # the bound time equals flops / attainable(intensity)
    flops, mem = 3e9, 7e8
    att = R.attainable_gflops(flops / mem, 100.0, 10.0)
    assert R.roofline_ms(flops, mem, 100.0, 10.0) == pytest.approx(flops / (att * 1e9) * 1e3)


def test_ceilings_are_accepted_where_numbers_are():
    lat = None
    peak = R.Ceiling(100.0, "GFLOP/s", 8, "test", lat)
    bw = R.Ceiling(10.0, "GB/s", 8, "test", lat)
    assert R.ridge_intensity(peak, bw) == 10.0 and R.attainable_gflops(2.0, peak, bw) == 20.0


@pytest.mark.parametrize("kind", ["standard", "grouped", "depthwise", "pointwise", "separable"])
def test_layer_point_equals_conv_layer_cost(kind):
    layer = conv.conv_layer(kind, 16, 16, 3, groups=4)
    cost = conv.layer_cost(layer, 12)
    p = R.layer_point(layer, (1, 16, 12, 12))
    assert (p.flops, p.mem_bytes) == (cost.flops, cost.mem_bytes)
    assert p.intensity == pytest.approx(cost.intensity)


def test_layer_point_by_hand():
    # 3x3 conv 4 -> 8 on 6x6 (same padding): MACs 9*4*8*36, bytes 4*(9*4*8 + 4*36 + 8*36)
    p = R.layer_point(nn.Conv2d(4, 8, 3, padding=1, bias=False), (1, 4, 6, 6))
    assert p.flops == 2 * 9 * 4 * 8 * 36
    assert p.mem_bytes == 4 * (9 * 4 * 8 + 4 * 36 + 8 * 36)
    lin = R.layer_point(nn.Linear(10, 5, bias=False), (2, 10))
    assert lin.flops == 2 * 2 * 10 * 5 and lin.mem_bytes == 4 * (50 + 20 + 10)


def test_measurements_run_and_report_their_size():
    p = R.peak_gflops(budget_s=0.2, sizes=(16, 32, 64), repeats=2)
    b = R.bandwidth_gbs(budget_s=0.2, sizes=(1024, 4096), repeats=2)
    assert p.size in (16, 32, 64) and b.size in (1024, 4096)
    for c in (p, b):
        assert math.isfinite(c.value) and c.value > 0 and c.latency.repeats >= 1
    # the value is what the timed kernel did per median second
    assert p.value == pytest.approx(2 * p.size**3 / (p.latency.median_ms * 1e-3) / 1e9)
    assert b.value == pytest.approx(8 * b.size / (b.latency.median_ms * 1e-3) / 1e9)
    assert "GFLOP/s" in p.text() and "GB/s" in b.text()


@pytest.mark.parametrize("call, exc, words", [
    (lambda: R.attainable_gflops(-1.0, 100.0, 10.0), ValueError, "intensity=-1.0"),
    (lambda: R.attainable_gflops(1.0, 0, 10.0), ValueError, "peak=0"),
    (lambda: R.ridge_intensity(100.0, "fast"), TypeError, "bandwidth='fast'"),
    (lambda: R.peak_gflops(sizes=(64, 32)), ValueError, "sizes="),
    (lambda: R.bandwidth_gbs(budget_s=0), ValueError, "budget_s=0"),
    (lambda: R.layer_point(nn.ReLU(), (1, 4, 6, 6)), ValueError, "no conv or linear"),
    (lambda: R.layer_point(nn.Conv2d(4, 4, 3), (4,)), ValueError, "input_shape="),
    (lambda: R.roofline_ms(-1, 0, 1.0, 1.0), ValueError, "flops=-1"),
])
def test_bad_arguments_name_the_parameter(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


def test_layer_point_of_a_cuda_free_model_runs_on_cpu():
    torch.manual_seed(0)
    p = R.layer_point(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1)), (1, 3, 8, 8))
    assert p.flops > 0 and p.mem_bytes > 0
