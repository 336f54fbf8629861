"""QAT wrappers: fake-quant forward/backward against torch's fake-quant ops, observers, prepare/strip."""
import pytest
import torch
from torch import nn

from lessons_lib import models
from lessons_lib.quant import qat


def _net():
    torch.manual_seed(0)
    m = models.TeacherCNN(width=8)
    with torch.no_grad():  # non-trivial BN statistics so that folding matters
        for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return m.eval()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_weight_fake_quant_matches_torch_per_channel_forward_and_backward(bits):
    g = torch.Generator().manual_seed(bits)
    w = (torch.randn(6, 3, 3, 3, generator=g) * torch.linspace(0.1, 2, 6).view(-1, 1, 1, 1)).requires_grad_()
    fq = qat.WeightFakeQuant(bits)
    s = fq.scales(w)
    qmax = 2 ** (bits - 1) - 1
    ref_w = w.detach().clone().requires_grad_()
    ref = torch.fake_quantize_per_channel_affine(ref_w, s.float(), torch.zeros(6, dtype=torch.int32), 0, -qmax, qmax)
    out = fq(w)
    assert torch.allclose(out, ref, atol=1e-6)
    gout = torch.randn(out.shape, generator=g)
    out.backward(gout)
    ref.backward(gout)
    assert torch.equal(w.grad, ref_w.grad)  # min/max range: every weight is inside, gradient passes


def test_weight_scales_are_per_channel_absmax():
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    s = qat.WeightFakeQuant(4).scales(w)
    assert torch.allclose(s, w.abs().amax(1) / 7)


def test_act_fake_quant_observers_union_vs_ema():
    a, b = torch.tensor([0.0, 1.0, 4.0]), torch.tensor([0.0, 2.0])
    union, ema = qat.ActFakeQuant(8, momentum=None), qat.ActFakeQuant(8, momentum=0.5)
    for m in (union, ema):
        m.train()
        m(a), m(b)
    assert union.max_val.item() == 4.0 and ema.max_val.item() == pytest.approx(3.0)
    union.eval()
    union(torch.tensor([0.0, 100.0]))  # frozen in eval mode
    assert union.max_val.item() == 4.0


def test_act_fake_quant_equals_torch_per_tensor_with_its_qparams():
    x = torch.rand(1000, generator=torch.Generator().manual_seed(2)) * 3 - 0.5
    m = qat.ActFakeQuant(4, momentum=None).train()
    m(x)
    m.eval()
    s, z = m.qparams()
    ref = torch.fake_quantize_per_tensor_affine(x, s, z, 0, 15)
    assert torch.allclose(m(x), ref, atol=1e-6)
    assert m(x).unique().numel() <= 16


def test_unobserved_act_passes_through_and_qparams_raises():
    m = qat.ActFakeQuant(8).eval()
    x = torch.randn(10)
    assert torch.equal(m(x), x)
    with pytest.raises(ValueError, match="no range observed"):
        m.qparams()


def test_prepare_qat_structure_and_float_equivalence_when_disabled():
    net = _net()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    q = qat.prepare_qat(net, 4, 8, input_bits=8)
    names = [n for n, _ in qat.fake_quant_modules(q)]
    assert sum("parametrizations" in n for n in names) == 7  # 6 convs + 1 linear
    assert sum(isinstance(m, qat.ActFakeQuant) for _, m in qat.fake_quant_modules(q)) == 7  # input + 6 ReLUs
    assert not any(isinstance(m, nn.BatchNorm2d) for m in q.modules())  # folded
    for _, m in qat.fake_quant_modules(q):
        m.enabled = False
    assert torch.allclose(q(x), net(x), atol=1e-4)  # folded float model == original
    for _, m in qat.fake_quant_modules(q):
        m.enabled = True
    qat.observe_ranges(q, [x])
    assert not torch.allclose(q(x), net(x), atol=1e-4)
    levels = qat.weight_levels_used(q)
    assert max(levels.values()) <= 15 and min(levels.values()) >= 2


def test_ptq_error_shrinks_with_bits_and_strip_keeps_quantised_weights():
    net = _net()
    x = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    ref = net(x)
    errs = []
    for bits in (3, 5, 8):
        q = qat.observe_ranges(qat.prepare_qat(net, bits, bits), [x])
        errs.append(float((q(x) - ref).detach().abs().mean()))
    assert errs[0] > errs[1] > errs[2]
    q = qat.prepare_qat(net, 4, None)
    s = qat.strip(q)
    assert torch.allclose(s(x), q(x), atol=1e-6)
    assert not any("parametrizations" in n for n, _ in s.named_modules())


def test_qat_gradient_reaches_float_shadow_weights():
    q = qat.prepare_qat(_net(), 4, 4)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    q.train()
    q(x).sum().backward()
    conv = q.features[0][0]
    g = conv.parametrizations.weight.original.grad
    assert g is not None and float(g.abs().sum()) > 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_bits=1"):
        qat.WeightFakeQuant(1)
    with pytest.raises(ValueError, match="momentum=2"):
        qat.ActFakeQuant(8, momentum=2)
    with pytest.raises(TypeError, match="model=int"):
        qat.prepare_qat(3)
    with pytest.raises(ValueError, match="all None"):
        qat.prepare_qat(_net(), None, None)
    with pytest.raises(ValueError, match="w_bits=0"):
        qat.prepare_qat(_net(), 0, 8)
    with pytest.raises(ValueError, match="no ActFakeQuant"):
        qat.observe_ranges(qat.prepare_qat(_net(), 4, None), [torch.randn(1, 3, 8, 8)])
    with pytest.raises(ValueError, match="batches is empty"):
        qat.observe_ranges(qat.prepare_qat(_net(), 4, 4), [])
