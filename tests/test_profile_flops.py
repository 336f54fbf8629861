"""profile.profile_model against torch.utils.flop_counter.FlopCounterMode, model by model and layer by layer.

FlopCounterMode counts ``aten.convolution`` as ``2 x batch x prod(weight shape) x prod(output spatial)`` and
``aten.addmm`` / ``aten.mm`` as ``2 x m x n x k``: bias, BatchNorm, activations, pooling and adds are not
counted. Our ``total_macs`` counts conv and linear layers only, bias excluded, so FLOPs = 2 x MACs exactly.
"""
from __future__ import annotations

from collections import defaultdict

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lessons_lib import blocks, conv, guidelines, models, profile


def _odd_convs() -> nn.Module:
    """Every conv hyper-parameter at once: stride, dilation, asymmetric kernel / padding, groups, bias."""
    return nn.Sequential(
        nn.Conv2d(6, 12, (3, 5), stride=(2, 1), padding=(1, 3), dilation=(2, 3), groups=3, bias=True),
        nn.Conv2d(12, 12, 3, stride=3, padding=2, dilation=2, groups=12), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 8, 2, padding="same", dilation=2, bias=False), nn.Flatten(), nn.LazyLinear(7))


class _Shared(nn.Module):
    """One conv called twice: two profile rows, counted twice by both tools."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.conv(x))


class _Conv1d3d(nn.Module):
    """Conv1d and Conv3d, which profile maps onto conv.conv2d_macs (rows x cols)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(5, 6, 3, stride=2, dilation=2, groups=1)
        self.c3 = nn.Conv3d(1, 4, (2, 3, 3), stride=(1, 2, 1), padding=1, dilation=(1, 1, 2))

    def forward(self, x):
        y = self.c1(x.flatten(2))                    # [N, 6, 16] from [N, 5, 36]
        return self.c3(y.reshape(len(y), 1, 6, 4, 4))  # [N, 4, D', H', W']


CASES = {
    "teacher": (lambda: models.TeacherCNN(), (2, 3, 32, 32)),
    "student": (lambda: models.StudentCNN(), (2, 3, 32, 32)),
    "digits_teacher": (lambda: models.TeacherCNN(in_ch=1, width=16), (3, 1, 8, 8)),
    "tiny_mobilenet_v1": (lambda: blocks.tiny_mobilenet(1), (2, 3, 32, 32)),
    "tiny_mobilenet_v2": (lambda: blocks.tiny_mobilenet(2, width_mult=0.5), (2, 3, 32, 32)),
    "tiny_mobilenet_v3": (lambda: blocks.tiny_mobilenet(3), (2, 3, 32, 32)),
    "shuffle_v1": (lambda: nn.Sequential(blocks.ShuffleV1Unit(24, 48, 3, 2, group_first=False),
                                         blocks.ShuffleV1Unit(48, 48, 3)), (2, 24, 16, 16)),
    "shuffle_v2": (lambda: nn.Sequential(blocks.ShuffleV2Block(24, 48, 2), blocks.ShuffleV2Block(48, 48)),
                   (2, 24, 16, 16)),
    "ghost": (lambda: blocks.GhostModule(8, 15, kernel_size=3, ratio=3, stride=2), (2, 8, 11, 11)),
    "inception": (lambda: blocks.InceptionBlock(16, 8, 4, 8, 4, 8, 8, factorize5x5=True), (2, 16, 9, 9)),
    "resnext": (lambda: nn.Sequential(blocks.ResNeXtBranches(16, 16, 4, 4), blocks.ResNeXtGrouped(16, 16, 4, 4)),
                (2, 16, 9, 9)),
    "igc_se": (lambda: nn.Sequential(blocks.IGCBlock(4, 3), blocks.SqueezeExcite(12)), (2, 12, 9, 9)),
    "bottleneck": (lambda: guidelines.Bottleneck(16), (2, 16, 9, 9)),
    "conv_kinds": (lambda: nn.Sequential(*[conv.conv_layer(k, 8, 8) for k in conv.CONV_KINDS]), (1, 8, 10, 10)),
    "odd_convs": (_odd_convs, (2, 6, 23, 19)),
    "shared_conv": (_Shared, (2, 4, 6, 6)),
    "conv1d_conv3d": (_Conv1d3d, (2, 5, 4, 9)),
    # torchvision, random weights, small inputs (nothing downloaded)
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), (1, 3, 64, 64)),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(weights=None), (1, 3, 64, 64)),
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(weights=None), (1, 3, 64, 64)),
    "squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(weights=None), (1, 3, 64, 64)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_total_and_per_layer_macs_are_half_of_flop_counter(name):
    make, shape = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    with torch.no_grad():
        model(torch.randn(*shape))  # materialise lazy layers
    rep = profile.profile_model(model, shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(*shape))
    assert counter.get_total_flops() == 2 * rep.total_macs > 0
    per_layer: dict[str, int] = defaultdict(int)
    for r in rep.rows:
        per_layer[r.name] += r.macs
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for layer, macs in per_layer.items():
        flops = sum(counts.get(f"{root}.{layer}", {}).values())
        assert flops == 2 * macs, layer


def test_conv_rows_match_conv_module_formulas():
    # the Conv2d rows of profile_model equal conv.layer_cost: same output size, MACs, and bytes (+ bias)
    model = _odd_convs().eval()
    shape = (2, 6, 23, 19)
    with torch.no_grad():
        model(torch.randn(*shape))
    rows = {r.name: r for r in profile.profile_model(model, shape).rows}
    hw = shape[2:]
    for name in ("0", "1"):
        m, row = model.get_submodule(name), rows[name]
        cost = conv.layer_cost(m, hw, bytes_per_elem=1)
        assert tuple(row.out_shape[2:]) == cost.out_hw and row.macs == shape[0] * cost.macs
        in_elems = shape[0] * m.in_channels * hw[0] * hw[1]
        out_elems = shape[0] * m.out_channels * cost.out_hw[0] * cost.out_hw[1]
        assert row.mem_bytes == conv.memory_bytes(cost.params + m.bias.numel(), in_elems, out_elems)
        hw = cost.out_hw


def test_guidelines_conv_cost_handles_dilation_and_stride():
    c = nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=3, groups=4, bias=False)
    x = torch.randn(3, 8, 17, 13)
    y = c(x)
    macs, mem, ho, wo = guidelines._conv_cost(c, 17, 13, batch=3)
    assert (ho, wo) == tuple(y.shape[2:])
    assert macs == 3 * conv.conv2d_macs(8, 16, 3, (ho, wo), 4)
    assert mem == c.weight.numel() + x.numel() + y.numel()
