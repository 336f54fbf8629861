"""SqueezeExcite vs torchvision.ops.SqueezeExcitation: parameter counts, outputs with copied weights."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from lessons_lib.blocks import SqueezeExcite, collect_se_gates, se_param_count, tiny_mobilenet


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("c, r", [(64, 4), (64, 16), (96, 4), (40, 8), (10, 3)])
def test_param_count_formula_and_torchvision(c, r):
    ours = SqueezeExcite(c, r)
    s = c // r
    assert ours.squeeze_channels == s
    ref = SqueezeExcitation(c, s)
    assert _params(ours) == se_param_count(c, s) == _params(ref) == 2 * c * s + s + c
    if c % r == 0:  # the 2C^2/r + C/r + C form of the same count
        assert _params(ours) == 2 * c * c // r + c // r + c


def test_known_count_from_the_style_guide():
    assert _params(SqueezeExcite(64, 4)) == 2128


@pytest.mark.parametrize("gate, scale_act", [("sigmoid", nn.Sigmoid), ("hard_sigmoid", nn.Hardsigmoid)])
def test_output_equals_torchvision_with_copied_weights(gate, scale_act):
    torch.manual_seed(0)
    ours = SqueezeExcite(48, squeeze_channels=16, gate=gate)
    ref = SqueezeExcitation(48, 16, scale_activation=scale_act)
    ref.load_state_dict(ours.state_dict())  # same layer names: loads unchanged
    x = torch.randn(3, 48, 7, 5) * 2
    torch.testing.assert_close(ours(x), ref(x))
    # and by hand: squeeze, excitation, scale
    z = x.mean((2, 3))
    h = torch.relu(z @ ours.fc1.weight.flatten(1).T + ours.fc1.bias)
    s = (h @ ours.fc2.weight.flatten(1).T + ours.fc2.bias)
    s = torch.sigmoid(s) if gate == "sigmoid" else torch.nn.functional.hardsigmoid(s)
    torch.testing.assert_close(ours(x), x * s[:, :, None, None], rtol=1e-5, atol=1e-6)


def test_gate_is_per_channel_in_unit_interval():
    torch.manual_seed(1)
    se = SqueezeExcite(16, 4)
    with torch.no_grad():
        g = se.gate(torch.randn(5, 16, 6, 6))
    assert g.shape == (5, 16, 1, 1) and float(g.min()) >= 0 and float(g.max()) <= 1


def test_collect_se_gates_shapes():
    torch.manual_seed(0)
    net = tiny_mobilenet(3, width_mult=0.5)
    gates = collect_se_gates(net, torch.randn(10, 3, 32, 32), batch_size=4)
    n_se = sum(isinstance(m, SqueezeExcite) for m in net.modules())
    assert len(gates) == n_se > 0
    for name, g in gates.items():
        se = net.get_submodule(name)
        assert g.shape == (10, se.channels)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: SqueezeExcite(0), ValueError, "channels=0"),
    (lambda: SqueezeExcite(16.0), TypeError, "channels=16.0"),
    (lambda: SqueezeExcite(16, reduction=0), ValueError, "reduction=0"),
    (lambda: SqueezeExcite(16, gate="tanh"), ValueError, "gate='tanh'"),
    (lambda: SqueezeExcite(16, squeeze_channels=0), ValueError, "squeeze_channels=0"),
    (lambda: SqueezeExcite(16)(torch.randn(2, 8, 4, 4)), ValueError, "Tensor[N, 16, H, W]"),
    (lambda: se_param_count(8, -1), ValueError, "squeeze_channels=-1"),
    (lambda: collect_se_gates(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 4, 4)), ValueError, "no SqueezeExcite"),
    (lambda: collect_se_gates("net", torch.randn(1, 3, 4, 4)), TypeError, "model=str"),
])
def test_bad_inputs_name_the_parameter(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)
