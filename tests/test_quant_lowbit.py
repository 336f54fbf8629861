"""Whole-model weight quantisers, k-means storage ratio and shift arithmetic, against direct references."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from lessons_lib import models
from lessons_lib.quant import aggressive, lowbit


def _net():
    torch.manual_seed(0)
    return models.TeacherCNN(width=8).eval()


@pytest.mark.parametrize("method, bits, max_levels", [("int", 4, 15), ("kmeans", 2, 4), ("binary", 1, 2), ("log2", 3, 7), ("twn", 2, 3)])
def test_quantize_weights_restricts_each_conv_to_few_values(method, bits, max_levels):
    net = _net()
    q = lowbit.quantize_weights(net, method, bits)
    for (n, a), (_, b) in zip(net.named_modules(), q.named_modules()):
        if isinstance(a, nn.Conv2d):
            per_channel = method in ("int", "binary")
            vals = [b.weight[c].unique().numel() for c in range(b.weight.shape[0])] if per_channel else [b.weight.unique().numel()]
            assert max(vals) <= max_levels, (n, max(vals))
        if isinstance(a, nn.Linear):
            assert torch.equal(a.weight, b.weight)  # include_linear=False keeps it float
    assert not torch.equal(net.features[0][0].weight, q.features[0][0].weight)  # original untouched, copy changed


def test_int_method_matches_torch_quantize_per_channel():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    ours = lowbit.quantize_tensor(w, "int", 8)
    s = w.abs().reshape(8, -1).amax(1) / 127
    ref = torch.dequantize(torch.quantize_per_channel(w, s.double(), torch.zeros(8, dtype=torch.long), 0, torch.qint8))
    assert torch.allclose(ours, ref, atol=1e-6)


def test_kmeans_tensor_matches_sklearn_lloyd_from_linear_init():
    sklearn = pytest.importorskip("sklearn.cluster")
    w = torch.randn(2000, generator=torch.Generator().manual_seed(2))
    ours = lowbit.quantize_tensor(w, "kmeans", 3)
    init = np.linspace(w.min().item(), w.max().item(), 8).reshape(-1, 1)
    km = sklearn.KMeans(8, init=init, n_init=1, algorithm="lloyd", tol=0, max_iter=300).fit(w.double().numpy().reshape(-1, 1))
    ref = km.cluster_centers_[km.labels_].ravel()
    assert np.allclose(ours.numpy(), ref, atol=1e-5)


def test_binary_and_log2_match_aggressive_module():
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(3))
    s, a = aggressive.binarize(w)
    assert torch.equal(lowbit.quantize_tensor(w, "binary", 1), aggressive.binarize_reconstruct(s, a))
    assert torch.equal(lowbit.quantize_tensor(w, "log2", 4), aggressive.log2_quantize(w, 4))


def test_kmeans_compression_formula_and_storage():
    assert lowbit.kmeans_compression(10**9, 2) == pytest.approx(16.0, rel=1e-6)  # document 001's 16x, large layer
    assert lowbit.kmeans_compression(864, 2) == pytest.approx(864 * 32 / (864 * 2 + 4 * 32))
    st = lowbit.weight_storage(_net(), 2, codebook=True)
    n = sum(m.weight.numel() for m in _net().modules() if isinstance(m, nn.Conv2d))
    assert st == {"layers": 6, "weights": n, "float": 32 * n, "quantised": 2 * n + 6 * 4 * 32}


def test_shift_multiply_equals_multiplication_and_floor_division():
    g = torch.Generator().manual_seed(4)
    q = torch.randint(-1000, 1000, (500,), generator=g)
    e = torch.randint(-8, 9, (500,), generator=g)
    ours = lowbit.shift_multiply(q, e)
    ref = torch.where(e >= 0, q * 2 ** e.clamp(min=0), torch.div(q, 2 ** (-e).clamp(min=0), rounding_mode="floor"))
    assert torch.equal(ours, ref)
    assert torch.equal(lowbit.shift_multiply(q, 3).double(), torch.ldexp(q.double(), torch.tensor(3.0)))


def test_shift_dot_is_exact_with_enough_fraction_bits():
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-128, 128, (10, 64), generator=g)
    w = aggressive.log2_quantize(torch.randn(64, generator=g) * 0.1, 5)
    sign, e = lowbit.log2_parts(w)
    assert torch.equal(sign.double() * torch.exp2(e.double()), w.double())
    frac = int(-e[sign != 0].min())
    ours = lowbit.shift_dot(x, w, frac).double() / 2**frac
    assert torch.equal(ours, x.double() @ w.double())
    coarse = lowbit.shift_dot(x, w, 0).double()  # bits shifted out: no longer exact
    assert not torch.equal(coarse, x.double() @ w.double())


def test_bad_inputs():
    with pytest.raises(ValueError, match="method='ternary'"):
        lowbit.quantize_weights(_net(), "ternary", 2)
    with pytest.raises(ValueError, match="bits=1"):
        lowbit.quantize_tensor(torch.randn(3, 3), "int", 1)
    with pytest.raises(TypeError, match="model=str"):
        lowbit.quantize_weights("net")
    with pytest.raises(ValueError, match="n=0"):
        lowbit.kmeans_compression(0, 2)
    with pytest.raises(TypeError, match="q=.* must have an integer dtype"):
        lowbit.shift_multiply(torch.randn(3), 1)
    with pytest.raises(ValueError, match="not signed powers of two"):
        lowbit.log2_parts(torch.tensor([0.3]))
    with pytest.raises(ValueError, match="frac_bits=-1"):
        lowbit.shift_dot(torch.tensor([1]), torch.tensor([0.5]), -1)
    with pytest.raises(ValueError, match="no Conv2d"):
        lowbit.quantize_weights(nn.Sequential(nn.ReLU()))


def test_twn_method_is_the_papers_per_layer_ternariser():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(5))
    q = lowbit.quantize_tensor(w, "twn", 2)
    delta = 0.7 * w.abs().mean()
    alpha = w.abs()[w.abs() > delta].mean()
    assert torch.allclose(q, torch.where(w.abs() > delta, alpha * torch.sign(w), torch.zeros_like(w)), atol=1e-6)
    # max-scaled symmetric INT2 (S = max|W_c|, codes round(W / S)) keeps far fewer non-zeros than TWN
    assert (lowbit.quantize_tensor(w, "int", 2) != 0).float().mean() < (q != 0).float().mean()
