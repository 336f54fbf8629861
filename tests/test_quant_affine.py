"""lessons_lib.quant.affine against torch's quantize_per_tensor / per_channel / fake_quantize (forward and backward)."""


import pytest
import torch

from lessons_lib import quant as Q

pytestmark = pytest.mark.filterwarnings("ignore:.*quantize_per_tensor.*:UserWarning")


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 6, 5, 5, generator=g) * 2.0 + 0.3


def test_doc001_worked_example():
    q = torch.quantize_per_tensor(torch.tensor([0.725]), 0.025, 0, torch.qint8)
    assert format(int(q.int_repr()), "08b") == "00011101"
    ours = Q.quantize(torch.tensor([0.725]), 0.025, 0, symmetric=True)
    assert int(ours) == 29 and abs(float(Q.dequantize(ours, 0.025, 0)) - 0.725) < 1e-6


def test_qparams_match_minmax_observer_affine():
    # asymmetric [0, 255]: identical to torch.ao MinMaxObserver(quint8, per_tensor_affine)
    from torch.ao.quantization.observer import MinMaxObserver
    for lo, hi in [(-1.0, 3.0), (0.5, 3.0), (-2.5, -0.1), (-0.3, 7.7)]:
        obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        obs(torch.tensor([lo, hi]))
        s_ref, z_ref = obs.calculate_qparams()
        s, z = Q.qparams(lo, hi)
        assert abs(s - float(s_ref)) < 1e-7 * s and z == int(z_ref)


def test_qparams_symmetric_is_absmax_over_127():
    s, z = Q.qparams(-1.0, 3.0, symmetric=True)
    assert z == 0 and s == pytest.approx(3.0 / 127)
    assert Q.qparams(-1.0, 3.0, num_bits=4, symmetric=True)[0] == pytest.approx(3.0 / 7)
    assert Q.qrange(4) == (0, 15) and Q.qrange(4, True) == (-7, 7)


@pytest.mark.parametrize("symmetric", [False, True])
def test_quantize_matches_torch_per_tensor(x, symmetric):
    s, z = Q.qparams(x.min().item(), x.max().item(), symmetric=symmetric)
    ref = torch.quantize_per_tensor(x, s, z, torch.qint8 if symmetric else torch.quint8)
    q = Q.quantize(x, s, z, symmetric=symmetric)
    assert q.dtype == torch.int32 and torch.equal(q, ref.int_repr().int())
    assert torch.equal(Q.dequantize(q, s, z), ref.dequantize())
    # clamping: values beyond the range saturate at the ends
    big = Q.quantize(x * 10, s, z, symmetric=symmetric)
    lo, hi = Q.qrange(8, symmetric)
    assert int(big.min()) == lo and int(big.max()) == hi


@pytest.mark.parametrize("symmetric", [False, True])
def test_quantize_per_channel_matches_torch(x, symmetric):
    s, z = Q.qparams_per_channel(x, axis=1, symmetric=symmetric)
    ref = torch.quantize_per_channel(x, s, z, 1, torch.qint8 if symmetric else torch.quint8)
    q = Q.quantize_per_channel(x, s, z, axis=1, symmetric=symmetric)
    assert torch.equal(q, ref.int_repr().int())
    assert torch.allclose(Q.dequantize_per_channel(q, s, z, axis=1), ref.dequantize(), rtol=0, atol=1e-6)


def test_per_channel_error_not_larger_than_per_tensor(x):
    assert Q.quant_error(x, axis=1) <= Q.quant_error(x)
    assert Q.quant_error(x, num_bits=4) > Q.quant_error(x, num_bits=8)


def test_fake_quantize_matches_torch_forward_and_backward(x):
    s, z = Q.qparams(-1.5, 2.0)  # narrower than x: some values are clamped (zero gradient)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours = Q.fake_quantize(xa, s, z)
    ref = torch.fake_quantize_per_tensor_affine(xb, s, z, 0, 255)
    assert torch.equal(ours, ref)
    g = torch.randn_like(x)
    ours.backward(g)
    ref.backward(g)
    assert torch.equal(xa.grad, xb.grad) and bool((xa.grad == 0).any())


def test_fake_quantize_per_channel_matches_torch(x):
    s, z = Q.qparams_per_channel(x, axis=0, num_bits=4, symmetric=True)
    s = s.float()
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours = Q.fake_quantize(xa, s * 0.7, z, num_bits=4, symmetric=True, axis=0)
    ref = torch.fake_quantize_per_channel_affine(xb, s * 0.7, z.int(), 0, -7, 7)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-6)
    g = torch.randn_like(x)
    ours.backward(g)
    ref.backward(g)
    assert torch.equal(xa.grad, xb.grad)


def test_pow2_scale_rounds_up():
    s, fl = Q.pow2_scale(0.03)
    assert s == 2.0**-5 and fl == 5 and s >= 0.03
    assert Q.pow2_scale(0.25) == (0.25, 2)


@pytest.mark.parametrize("call, match", [
    (lambda: Q.qparams(1.0, 0.0), "xmin=1.0 must be <= xmax=0.0"),
    (lambda: Q.qparams(0.0, float("nan")), "xmax=nan"),
    (lambda: Q.qparams(-1.0, 1.0, num_bits=0), "num_bits=0"),
    (lambda: Q.qparams(-1.0, 1.0, num_bits=17), "num_bits=17"),
    (lambda: Q.quantize(torch.randn(3), 0.0, 0), "scale=0.0"),
    (lambda: Q.quantize(torch.randn(3), -0.1, 0), "scale=-0.1"),
    (lambda: Q.quantize(torch.tensor([1.0, float("inf")]), 0.1, 0), "non-finite"),
    (lambda: Q.quantize(torch.randn(3), 0.1, 3, symmetric=True), "zero_point=3"),
    (lambda: Q.quantize_per_channel(torch.randn(2, 3), torch.ones(3), torch.zeros(3), axis=0), "x.shape"),
    (lambda: Q.qrange(1, symmetric=True), "num_bits=1"),
    (lambda: Q.pow2_scale(0), "scale=0"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(".", r"\.")):
        call()


def test_bad_types_raise():
    with pytest.raises(TypeError, match="num_bits"):
        Q.qparams(0, 1, num_bits=8.0)
    with pytest.raises(TypeError, match="floating-point"):
        Q.quantize(torch.arange(3), 0.1, 0)
