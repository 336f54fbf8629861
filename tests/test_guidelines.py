"""lessons_lib.guidelines: the cases keep multiply-adds equal and their memory access agrees with
lessons_lib.profile's per-layer count and the ShuffleNet v2 formulas."""
import pytest
import torch
import torch.nn.functional as F

from lessons_lib import guidelines as G
from lessons_lib.profile import profile_model


def test_mac_1x1_formula():
    assert G.mac_1x1(7, 7, 16, 32) == 49 * 48 + 512
    assert G.mac_1x1(7, 7, 16, 32, groups=4) == 49 * 48 + 128
    # G1: at fixed B = hw·c1·c2, MAC >= 2·sqrt(hw·B) + B/(hw), with equality at c1 = c2
    hw, B = 28 * 28, 28 * 28 * 64 * 64
    assert G.mac_1x1(28, 28, 64, 64) == pytest.approx(2 * (hw * B) ** 0.5 + B / hw)
    assert G.mac_1x1(28, 28, 32, 128) > G.mac_1x1(28, 28, 64, 64)
    with pytest.raises(ValueError, match="groups=3 must divide c1=16"):
        G.mac_1x1(7, 7, 16, 32, groups=3)


@pytest.mark.parametrize("builder,kw", [(G.g1_cases, dict(c=128, hw=4, blocks=2)),
                                        (G.g2_cases, dict(c=128, hw=4, blocks=2)),
                                        (G.g3_cases, dict(c=128, hw=4, blocks=2))])
def test_cases_equal_macs_and_profile_memory(builder, kw):
    cases = builder(**kw)
    ref = cases[0].macs
    for c in cases:
        assert abs(c.macs - ref) / ref < 0.04, c.label  # equal multiply-adds up to channel rounding
        rep = profile_model(c.net, tuple(c.x.shape))
        assert rep.total_macs == c.macs
        assert rep.mem_bytes == 4 * c.mem  # weights + input + output of every conv, float32
        assert c.net(c.x).shape[0] == c.x.shape[0]


def test_memory_grows_with_ratio_and_groups():
    g1 = G.g1_cases(c=64, hw=28)
    assert [c.mem for c in g1] == sorted(c.mem for c in g1)
    g2 = G.g2_cases(c=64, hw=28)
    assert [c.mem for c in g2] == sorted(c.mem for c in g2)
    assert g1[0].mem == 5 * (G.mac_1x1(28, 28, 64, 64) * 2)


def test_bottleneck_reference_and_elementwise_counts():
    torch.manual_seed(0)
    for relu in (True, False):
        for short in (True, False):
            b = G.Bottleneck(32, relu=relu, shortcut=short)
            x = torch.randn(2, 32, 9, 9)
            act = F.relu if relu else (lambda t: t)
            y = act(F.conv2d(act(F.conv2d(act(F.conv2d(x, b.conv1.weight)), b.conv2.weight, padding=1)),
                             b.conv3.weight) + (x if short else 0))
            assert torch.allclose(b(x), y, atol=1e-5)
    ops, mem = G.Bottleneck(32).elementwise(9)
    assert ops == 81 * (8 + 8 + 32) + 81 * 32 and mem == 2 * 81 * 48 + 3 * 81 * 32
    assert G.Bottleneck(32, relu=False, shortcut=False).elementwise(9) == (0, 0)
    with pytest.raises(ValueError, match="c=30 must be divisible by 4"):
        G.Bottleneck(30)


def test_g4_cases_equal_macs():
    cases = G.g4_cases(c=32, hw=8, blocks=2)
    assert len({c.macs for c in cases}) == 1
    assert cases[0].mem > cases[1].mem and cases[-1].info["elementwise_ops"] == 0


def test_time_cases_and_table():
    cases = G.g2_cases(c=16, hw=8, blocks=1, groups=(1, 2))
    t = G.time_cases(cases, rounds=2, repeats=2, warmup=1)
    assert set(t) == {c.label for c in cases} and all(v > 0 for v in t.values())
    table = G.cases_table(cases, t)
    assert all(c.label in table for c in cases) and "time ratio" in table
    with pytest.raises(ValueError, match=r"cases=\[\] must be a non-empty list"):
        G.time_cases([])
    with pytest.raises(TypeError, match="must be a guidelines.Case"):
        G.time_cases([1])
    with pytest.raises(ValueError, match="rounds=0"):
        G.time_cases(cases, rounds=0)


def test_time_rounds_are_paired_rounds_and_time_cases_keeps_the_fastest(monkeypatch):
    """time_rounds: one median per round and case, cases interleaved within a round, warm-up first;
    time_cases: the minimum over rounds (a fake clock makes it exact)."""
    from types import SimpleNamespace

    cases = G.g2_cases(c=16, hw=4, blocks=1, groups=(1, 2))
    calls = []
    fake = iter([5.0, 7.0, 3.0, 8.0, 4.0, 6.0] * 2)

    def fake_latency(net, x, *, warmup, repeats):
        calls.append((net, warmup, repeats))
        return SimpleNamespace(median_ms=next(fake) if warmup == 0 else -1.0)

    monkeypatch.setattr(G, "measure_latency", fake_latency)
    r = G.time_rounds(cases, rounds=3, repeats=4, warmup=2)
    a, b = (c.label for c in cases)
    assert r == {a: [5.0, 3.0, 4.0], b: [7.0, 8.0, 6.0]}
    assert [w for _, w, _ in calls[:2]] == [2, 2] and all(w == 0 and n == 4 for _, w, n in calls[2:])
    assert [net for net, w, _ in calls[2:]] == [cases[0].net, cases[1].net] * 3  # interleaved round by round
    assert G.time_cases(cases, rounds=3, repeats=4, warmup=2) == {a: 3.0, b: 6.0}


def test_time_rounds_real_and_verdict():
    from lessons_lib import stats

    cases = G.g2_cases(c=16, hw=8, blocks=1, groups=(1, 2))
    r = G.time_rounds(cases, rounds=3, repeats=2, warmup=1)
    assert list(r) == [c.label for c in cases] and all(len(v) == 3 and min(v) > 0 for v in r.values())
    v = stats.verdict(*r.values(), names=tuple(r), higher_is_better=False, paired=True)
    assert v.n_a == 3 and v.lo <= v.diff <= v.hi
    with pytest.raises(ValueError, match="must have distinct labels"):
        G.time_rounds([cases[0], cases[0]])
    with pytest.raises(ValueError, match="repeats=0"):
        G.time_rounds(cases, repeats=0)
    with pytest.raises(ValueError, match="warmup=-1"):
        G.time_rounds(cases, warmup=-1)


def test_bad_builder_input():
    with pytest.raises(ValueError, match="fragments=3 must divide c=32"):
        G.g3_cases(c=32, fragments=(1, 3))
    with pytest.raises(TypeError, match="hw=28.0"):
        G.g1_cases(hw=28.0)
