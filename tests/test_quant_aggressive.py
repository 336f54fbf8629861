"""k-means weight sharing (vs scikit-learn KMeans with the same linear init), binarisation, log2 quantisation."""
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from lessons_lib import quant as Q


@pytest.mark.parametrize("bits", [2, 3])
def test_kmeans_matches_sklearn_linear_init(bits):
    w = torch.randn(32, 16, 3, 3, generator=torch.Generator().manual_seed(bits))
    idx, cb = Q.kmeans_quantize(w, bits)
    flat = w.flatten().double().numpy().reshape(-1, 1)
    init = np.linspace(flat.min(), flat.max(), 2**bits).reshape(-1, 1)
    km = KMeans(n_clusters=2**bits, init=init, n_init=1, tol=0, max_iter=300, algorithm="lloyd").fit(flat)
    assert np.allclose(np.sort(km.cluster_centers_.ravel()), cb.numpy(), rtol=0, atol=1e-5)
    assert idx.shape == w.shape and int(idx.max()) < 2**bits
    assert np.array_equal(km.labels_, idx.flatten().numpy())  # centroids are sorted, and so are sklearn's from a sorted init


def test_kmeans_error_falls_with_bits():
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    errs = [float(((cb[idx] - w) ** 2).mean()) for idx, cb in (Q.kmeans_quantize(w, b) for b in (1, 2, 4))]
    assert errs[0] > errs[1] > errs[2]


def test_binarize_scale_is_least_squares_optimal():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    s, a = Q.binarize(w)
    assert set(s.unique().tolist()) <= {-1, 1} and s.dtype == torch.int8
    # argmin_a ||W_c - a B_c||^2 = <W_c, B_c> / n = mean |W_c|
    ls = (w * s).flatten(1).sum(1) / w[0].numel()
    assert torch.allclose(a, ls, atol=1e-6)
    assert int(Q.binarize(torch.zeros(1, 2) + torch.tensor([[0.0, -1.0]]))[0][0, 0]) == 1  # sign(0) = +1
    rec = Q.binarize_reconstruct(s, a)
    assert torch.allclose(rec.abs().flatten(1).mean(1), a)


def test_log2_rounds_in_log_domain():
    x = torch.tensor([1.0, 1.40, 1.42, 3.0, -0.26, 0.01, 0.0, 8.0])
    q = Q.log2_quantize(x, num_bits=4, max_exp=2)  # 7 levels: 2^-4 .. 2^2
    assert q.tolist() == [1.0, 1.0, 2.0, 4.0, -0.25, 0.0, 0.0, 4.0]
    y = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    qy = Q.log2_quantize(y, num_bits=5)
    nz = qy != 0
    assert torch.equal(torch.log2(qy[nz].abs()), torch.log2(qy[nz].abs()).round())


@pytest.mark.parametrize("shape, axis", [((64, 32, 3, 3), None), ((16, 8, 3, 3), 0), ((5, 7), 1), ((1000,), None)])
def test_ternarize_follows_twn_definition(shape, axis):
    """Li, Zhang & Liu 2016, eqs. 5-6: Delta = 0.7 * mean|W|, alpha = mean |W| over |W| > Delta (per layer)."""
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape))) * 0.05
    codes, alpha = Q.aggressive.ternarize(w, axis=axis)
    assert codes.dtype == torch.int8 and codes.shape == w.shape
    assert set(codes.unique().tolist()) <= {-1, 0, 1}
    slices = [w.numpy()] if axis is None else [np.take(w.numpy(), c, axis=axis) for c in range(w.shape[axis])]
    assert alpha.shape == (len(slices),)
    for c, s in enumerate(slices):  # a plain numpy reference of the paper's formulas
        a = np.abs(s).astype(np.float64)
        delta = 0.7 * a.mean()
        ref_codes = np.where(a > delta, np.sign(s), 0)
        got = codes.numpy() if axis is None else np.take(codes.numpy(), c, axis=axis)
        assert np.array_equal(got, ref_codes)
        assert np.isclose(float(alpha[c]), a[a > delta].mean(), rtol=1e-5)
    rec = Q.aggressive.ternarize_reconstruct(codes, alpha, axis)
    assert rec.shape == w.shape and rec.dtype == torch.float32
    # about 0.7 * mean|w| ~ 0.56 sigma for a Gaussian: ~58 % of the weights survive (2 * (1 - Phi(0.559)))
    if w.numel() >= 1000:
        assert 0.52 < float((codes != 0).float().mean()) < 0.64


def test_ternarize_scale_is_least_squares_optimal_for_its_pattern():
    w = torch.randn(500, generator=torch.Generator().manual_seed(3))
    codes, alpha = Q.aggressive.ternarize(w)
    t = codes.float()
    ls = float((w * t).sum() / (t * t).sum())  # argmin_a ||W - a t||^2
    assert abs(float(alpha) - ls) < 1e-5
    assert Q.aggressive.ternarize(torch.zeros(4))[1].tolist() == [0.0]  # nothing survives: alpha 0, codes 0


@pytest.mark.parametrize("call, match", [
    (lambda: Q.aggressive.ternarize(torch.randn(10), delta_factor=-0.1), "delta_factor=-0.1"),
    (lambda: Q.aggressive.ternarize(torch.randn(3, 3), axis=2), "axis=2"),
    (lambda: Q.aggressive.ternarize_reconstruct(torch.ones(3, 3), torch.ones(2)), "alpha="),
])
def test_ternarize_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: Q.kmeans_quantize(torch.randn(10), 0), "bits=0"),
    (lambda: Q.kmeans_quantize(torch.randn(10), 13), "bits=13"),
    (lambda: Q.kmeans_quantize(torch.tensor([1.0, float("nan")]), 2), "non-finite"),
    (lambda: Q.log2_quantize(torch.randn(4), 1), "bits=1"),
    (lambda: Q.binarize(torch.randn(3, 3), axis=2), "axis=2"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
