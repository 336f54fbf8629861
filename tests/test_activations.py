"""lessons_lib.activations against torch on random data; derivatives against autograd; bad inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lessons_lib import activations as A


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(0)
    # wide range, both signs, values near the kinks (0, +-3, 6) included
    base = torch.randn(4, 5, 7, 7, generator=g, dtype=torch.float64) * 5
    return torch.cat([base.flatten(), torch.tensor([-3.5, -2.999, 2.999, 5.999, 6.001, 0.001, -0.001], dtype=torch.float64)])


@pytest.mark.parametrize("ours, ref", [
    (A.relu6, F.relu6), (A.hard_sigmoid, F.hardsigmoid), (A.hard_swish, F.hardswish), (A.swish, F.silu),
    (A.relu, F.relu), (A.selu, F.selu), (A.mish, F.mish), (A.sigmoid, torch.sigmoid),
    (A.leaky_relu, F.leaky_relu),
])
def test_functions_equal_torch(ours, ref, x):
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)
    xf = x.float()
    torch.testing.assert_close(ours(xf), ref(xf), rtol=1e-6, atol=1e-6)


def test_prelu_scalar_and_per_channel_equal_torch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, 5, generator=g)
    w = torch.rand(4, generator=g)
    torch.testing.assert_close(A.prelu(x, w), F.prelu(x, w))
    torch.testing.assert_close(A.prelu(x, 0.1), F.prelu(x, torch.tensor([0.1])))
    torch.testing.assert_close(A.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_registry_fn_matches_ref_and_range(name, x):
    act = A.get(name)
    y = act.fn(x)
    torch.testing.assert_close(y, act.ref(x), rtol=1e-12, atol=1e-12)
    dense = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    yd = act.fn(dense)
    assert float(yd.min()) >= act.lo - 1e-9 and float(yd.max()) <= act.hi + 1e-9
    if act.bounded_above:
        assert float(yd.max()) == pytest.approx(act.hi, abs=1e-6)
    if act.lo > -float("inf"):  # the printed lower bound is the real minimum (to 1e-6)
        assert float(yd.min()) == pytest.approx(act.lo, abs=1e-6)


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_analytic_derivative_equals_autograd(name, x):
    # avoid the kinks, where one-sided derivatives differ (and torch changed hardswish's at +-3)
    kinks = torch.tensor([0.0, -3.0, 3.0, 6.0], dtype=torch.float64)
    xs = x[(x[:, None] - kinks).abs().min(1).values > 1e-2].clone().requires_grad_(True)
    act = A.get(name)
    (g,) = torch.autograd.grad(act.ref(xs).sum(), xs)
    # (torch's hardsigmoid backward multiplies by a float32 1/6: agreement to ~3e-8 relative)
    torch.testing.assert_close(A.derivative(name, xs.detach()), g, rtol=1e-7, atol=1e-9)


def test_doc001_relu6_slip_is_at_least_six_and_differs():
    x = torch.linspace(-10, 10, 2001)
    wrong = A.relu6_as_printed_in_doc001(x)
    assert float(wrong.min()) == 6.0
    assert not torch.equal(wrong, F.relu6(x))
    assert torch.equal(wrong[x > 6], x[x > 6])  # it is max(x, 6): unbounded above


def test_max_error_on_grid_known_values():
    err, where = A.max_error_on_grid(A.hard_sigmoid, torch.sigmoid, -8, 8, 160_001)
    ref = (F.hardsigmoid(torch.linspace(-8, 8, 160_001, dtype=torch.float64)) -
           torch.sigmoid(torch.linspace(-8, 8, 160_001, dtype=torch.float64))).abs()
    assert err == pytest.approx(float(ref.max()))
    assert 0.06 < err < 0.075 and 1.2 < abs(where) < 1.45  # largest gap inside the linear part
    e2, w2 = A.max_error_on_grid(A.hard_swish, A.swish)
    assert 0.13 < e2 < 0.15 and abs(abs(w2) - 3) < 1e-3  # at the corners +-3
    e, _ = A.max_error_on_grid(A.relu6, F.relu6)
    assert e == 0.0


def test_quantize_max_calibrated_equals_torch_fake_quant():
    g = torch.Generator().manual_seed(2)
    x = F.relu(torch.randn(10_000, generator=g) * 3)
    xq, s = A.quantize_max_calibrated(x, 8)
    ref = torch.fake_quantize_per_tensor_affine(x, s, 0, 0, 255)
    torch.testing.assert_close(xq, ref, rtol=0, atol=1e-6)
    assert s == pytest.approx(float(x.max()) / 255)
    assert float((xq - x).abs().max()) <= s / 2 + 1e-6
    assert A.quantization_rmse(x, 8) == pytest.approx(float(((ref - x) ** 2).mean().sqrt()), rel=1e-5)
    # a bounded tensor (ReLU6) gets a finer step than the same data unbounded with an outlier
    y = torch.cat([x, torch.tensor([60.0])])
    assert A.quantization_rmse(F.relu6(y)) < A.quantization_rmse(y)


def test_activation_inputs_are_the_bn_outputs_of_the_teacher():
    from lessons_lib.models import TeacherCNN

    torch.manual_seed(0)
    net = TeacherCNN(width=4).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
    x = torch.randn(3, 3, 16, 16)
    acts = A.activation_inputs(net, x)
    assert len(acts) == 6
    first = net.features[0]
    with torch.no_grad():
        want = first[1](first[0](x))
    torch.testing.assert_close(acts["features.0.2"], want)
    assert float(acts["features.0.2"].min()) < 0  # recorded before the in-place ReLU
    with pytest.raises(ValueError, match="no activation module"):
        A.activation_inputs(torch.nn.Linear(3, 3), torch.randn(2, 3))


def test_time_per_element_runs_for_every_activation():
    t = A.time_per_element(["relu", "swish"], numel=4096, repeats=2)
    assert set(t) == {"relu", "swish"} and all(v > 0 for v in t.values())


def test_time_side_by_side_pairs_rounds_and_times_torch_ops_by_default():
    lat = A.time_side_by_side(["relu6", "prelu", "mish"], numel=4096, repeats=3)
    assert list(lat) == ["torch.clone", "relu6", "prelu", "mish"]
    assert all(v.repeats == 3 and len(v.times_ms) == 3 for v in lat.values())
    both = A.time_side_by_side(["swish"], impl="both", baseline="F.relu", numel=4096, repeats=2)
    assert list(both) == ["F.relu", "swish", "ours: swish"]


def test_cost_vs_baseline_is_the_median_paired_ratio_with_a_verdict():
    from lessons_lib.profile import Latency

    def lat(times):
        return Latency(0.0, 0.0, 0.0, len(times), "cpu", "test", tuple(times))

    base = lat([1.0, 2.0, 1.0, 1.0])
    slow = lat([2.0, 4.2, 2.1, 1.9])    # about twice the baseline in every round
    same = lat([1.1, 1.9, 0.9, 1.05])   # paired differences straddle 0
    out = A.cost_vs_baseline({"base": base, "slow": slow, "same": same}, "base")
    ratio, v = out["slow"]
    assert ratio == pytest.approx(2.05) and v.better == "base"  # ratios 2.0, 2.1, 2.1, 1.9
    assert out["same"][1].better is None
    with pytest.raises(ValueError, match="baseline='x'"):
        A.cost_vs_baseline({"base": base}, "x")
    with pytest.raises(ValueError, match="same >= 2 paired rounds"):
        A.cost_vs_baseline({"base": base, "short": lat([1.0, 1.0])}, "base")


@pytest.mark.parametrize("call, exc, words", [
    (lambda: A.relu6([1.0, 2.0]), TypeError, "x=list"),
    (lambda: A.hard_swish(torch.arange(5)), TypeError, "dtype=torch.int64"),
    (lambda: A.get("gelu"), ValueError, "name='gelu'"),
    (lambda: A.get(3), TypeError, "name=3"),
    (lambda: A.leaky_relu(torch.randn(3), "0.1"), TypeError, "negative_slope"),
    (lambda: A.prelu(torch.randn(2, 3, 4), torch.rand(5)), ValueError, "weight has shape (5,)"),
    (lambda: A.max_error_on_grid(A.relu, F.relu, 2, 1), ValueError, "lo=2"),
    (lambda: A.max_error_on_grid(A.relu, F.relu, n=1), ValueError, "n=1"),
    (lambda: A.quantize_max_calibrated(torch.randn(10), 8), ValueError, "non-negative"),
    (lambda: A.quantize_max_calibrated(torch.rand(10), 1), ValueError, "bits=1"),
    (lambda: A.time_per_element(["relu"], numel=0), ValueError, "numel=0"),
    (lambda: A.module("gelu"), ValueError, "activation='gelu' must be one of"),
    (lambda: A.module("relu", choices=A.GATES, param="gate"), ValueError, "gate='relu'"),
    (lambda: A.module("sigmoid", inplace=True), ValueError, "no in-place form"),
    (lambda: A.module("relu", inplace=1), TypeError, "inplace=1"),
])
def test_bad_inputs_name_the_parameter(call, exc, words):
    with pytest.raises(exc, match=None) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize("name", sorted(A.ACTIVATIONS))
def test_registry_module_computes_the_torch_reference(name, x):
    act = A.ACTIVATIONS[name]
    m = A.module(name).double()
    assert isinstance(m, act.module) and isinstance(m, torch.nn.Module) and A.module(name) is not A.module(name)
    torch.testing.assert_close(m(x.clone()), act.ref(x), rtol=1e-12, atol=1e-12)
    if name not in ("sigmoid", "prelu"):
        y = x.clone()
        assert A.module(name, inplace=True)(y).data_ptr() == y.data_ptr()  # really in place


def test_gates_are_the_registry_entries_bounded_to_the_unit_interval():
    assert A.GATES == ("sigmoid", "hard_sigmoid")
