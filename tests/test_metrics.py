"""fidlens.metrics against the reference implementations (run here) and exact float64 maths."""

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.spatial.distance import cdist
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from fidlens import metrics

# pytorch-fid passes sqrtm(disp=False), deprecated in SciPy 1.17 (see clarifications.md).
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def correlated(rng, n, dim, rank=None, shift=0.0, scale=1.0):
    """Gaussian features with a random (optionally low-rank) covariance."""
    rank = rank or dim
    mixing = rng.standard_normal((rank, dim)) / np.sqrt(rank)
    return scale * (rng.standard_normal((n, rank)) @ mixing) + shift


def exact_fid(x, y):
    """Independent exact FID: the trace term is the sum of singular values of
    Xc Yc^T / sqrt((n-1)(m-1)), from numpy's SVD in float64 (no square roots of
    eigenvalues, so singular covariances cost no accuracy). With Xc = Qx Rx (QR), the
    singular values are those of the small matrix Rx Ry^T."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    nx, ny = len(x) - 1, len(y) - 1
    rx, ry = np.linalg.qr(xc, mode="r"), np.linalg.qr(yc, mode="r")
    singular = np.linalg.svd(rx @ ry.T / np.sqrt(nx * ny), compute_uv=False)
    diff = x.mean(0) - y.mean(0)
    return diff @ diff + (xc**2).sum() / nx + (yc**2).sum() / ny - 2 * singular.sum()


def relative(a, b):
    return abs(a - b) / abs(b)


# --- FID --------------------------------------------------------------------------------------


def test_statistics_match_numpy():
    x = correlated(np.random.default_rng(0), 500, 16).astype(np.float32)
    mu, sigma = metrics.feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12, atol=1e-14
    )
    assert np.array_equal(sigma, sigma.T)


def test_fid_matches_pytorch_fid_on_well_conditioned_data():
    rng = np.random.default_rng(1)
    x, y = correlated(rng, 3000, 64), correlated(rng, 3000, 64, shift=0.1, scale=1.2)
    stats_x, stats_y = metrics.feature_statistics(x), metrics.feature_statistics(y)
    ours = metrics.frechet_distance(*stats_x, *stats_y)
    reference = calculate_frechet_distance(*stats_x, *stats_y)
    assert relative(ours, reference) <= 1e-6
    assert relative(ours, exact_fid(x, y)) <= 1e-10
    assert metrics.fid_from_features(x, y) == ours


@pytest.mark.parametrize(
    "case", ["fewer samples than dimensions", "low rank, more samples than dimensions"]
)
def test_fid_is_exact_for_singular_covariances(case):
    rng = np.random.default_rng(2)
    if case.startswith("fewer"):
        x, y = correlated(rng, 100, 256), correlated(rng, 150, 256, shift=0.05)
    else:
        mixing = rng.standard_normal((20, 64))
        x = rng.standard_normal((400, 20)) @ mixing
        y = 1.1 * rng.standard_normal((300, 20)) @ mixing + 0.02
    exact = exact_fid(x, y)
    sigma_x = metrics.feature_statistics(x)[1]
    with pytest.raises(np.linalg.LinAlgError):  # a Cholesky-only method has no answer here
        np.linalg.cholesky(sigma_x)
    assert relative(metrics.fid_from_features(x, y), exact) <= 1e-10
    # From statistics alone (covariance space, eigendecomposition fallback) as well.
    from_stats = metrics.frechet_distance(
        *metrics.feature_statistics(x), *metrics.feature_statistics(y)
    )
    assert relative(from_stats, exact) <= 1e-10
    # Square roots of clipped rounding-level eigenvalues, as eigh + clip alone would give,
    # are off by orders of magnitude more.
    w, v = np.linalg.eigh(sigma_x)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    sigma_y = metrics.feature_statistics(y)[1]
    naive_tr = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma_y @ root), 0, None)).sum()
    tr = (np.trace(sigma_x) + np.trace(sigma_y) - exact + np.sum((x.mean(0) - y.mean(0)) ** 2)) / 2
    assert relative(naive_tr, tr) > 1e-9


def test_fid_identical_sets_is_zero_and_mean_shift_adds_its_square():
    rng = np.random.default_rng(3)
    x, y = correlated(rng, 2000, 32), correlated(rng, 2000, 32, scale=1.3)
    scale = np.trace(metrics.feature_statistics(x)[1])
    assert abs(metrics.fid_from_features(x, x)) <= 1e-12 * scale
    x, y = x - x.mean(0), y - y.mean(0)  # equal means, so a shift adds exactly |shift|^2
    shift = rng.standard_normal(32)
    base = metrics.fid_from_features(x, y)
    shifted = metrics.fid_from_features(x, y + shift)
    assert shifted - base == pytest.approx(shift @ shift, rel=1e-10)


def test_trace_sqrt_paths_agree():
    rng = np.random.default_rng(4)
    s1 = metrics.feature_statistics(correlated(rng, 400, 48))[1]
    s2 = metrics.feature_statistics(correlated(rng, 400, 48, scale=2.0))[1]
    t1, t2 = torch.from_numpy(s1), torch.from_numpy(s2)
    fast = metrics.trace_sqrt_product(s1, s2)  # generalised eigenproblem
    cholesky = metrics._nuclear_norm_of_product(
        metrics._clear_cholesky(t1), metrics._clear_cholesky(t2)
    )
    eigen = metrics._nuclear_norm_of_product(metrics._psd_factor(t1), metrics._psd_factor(t2))
    assert relative(fast, eigen) <= 1e-12 and relative(cholesky, eigen) <= 1e-12


@pytest.mark.parametrize("exponent", [2.0, 3.0])
def test_fid_exact_for_ill_conditioned_covariances(exponent):
    # Eigenvalues k^-exponent over 256 directions, sigma2 = 1.1 sigma1: the exact trace term
    # is sqrt(1.1) * tr(sigma1) (sum of |eigenvalues| of the stored, rounded sigma1).
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.standard_normal((256, 256)))
    sigma1 = (basis * np.arange(1, 257) ** -exponent) @ basis.T
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = 1.1 * sigma1
    exact = np.sqrt(1.1) * np.abs(np.linalg.eigvalsh(sigma1)).sum()
    assert relative(metrics.trace_sqrt_product(sigma1, sigma2), exact) <= 1e-12
    mu = np.zeros(256)
    reference = calculate_frechet_distance(mu, sigma1, mu, sigma2)
    ours = metrics.frechet_distance(mu, sigma1, mu, sigma2)
    expected = np.trace(sigma1) + np.trace(sigma2) - 2 * exact
    assert abs(ours - expected) <= 1e-12 * np.trace(sigma1)
    assert abs(reference - expected) > abs(ours - expected)  # sqrtm is further off


# --- KID --------------------------------------------------------------------------------------


def test_kid_one_full_subset_matches_torch_fidelity():
    rng = np.random.default_rng(5)
    x, y = correlated(rng, 400, 32), correlated(rng, 400, 32, shift=0.1)
    indices = metrics.kid_subset_indices(400, 400, n_subsets=1, subset_size=400, seed=0)
    mean, std = metrics.kid(x, y, indices)
    reference = kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=1, kid_subset_size=400, verbose=False
    )
    assert relative(mean, reference["kernel_inception_distance_mean"]) <= 1e-10
    assert std == 0.0


def test_kid_subsets_match_torch_fidelity_given_its_indices():
    rng = np.random.default_rng(6)
    x, y = correlated(rng, 300, 16), correlated(rng, 250, 16, scale=1.1)
    state = np.random.RandomState(2020)  # torch-fidelity's own draw order
    draws = [
        (state.choice(300, 100, replace=False), state.choice(250, 100, replace=False))
        for _ in range(10)
    ]
    indices = tuple(np.stack(side) for side in zip(*draws, strict=True))
    mean, std = metrics.kid(x, y, indices)
    reference = kid_features_to_metric(
        torch.from_numpy(x),
        torch.from_numpy(y),
        kid_subsets=10,
        kid_subset_size=100,
        rng_seed=2020,
        verbose=False,
    )
    assert relative(mean, reference["kernel_inception_distance_mean"]) <= 1e-10
    assert relative(std, reference["kernel_inception_distance_std"]) <= 1e-8  # population std


def test_kid_whole_kernel_and_per_subset_paths_agree():
    rng = np.random.default_rng(7)
    x, y = correlated(rng, 300, 16), correlated(rng, 300, 16, shift=0.2)

    def direct(ix, iy):  # unbiased MMD^2 of one subset, written out in numpy
        a, b = x[ix], y[iy]
        m = len(ix)
        k_aa, k_bb = (a @ a.T / 16 + 1) ** 3, (b @ b.T / 16 + 1) ** 3
        k_ab = (a @ b.T / 16 + 1) ** 3
        within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        return within - 2 * k_ab.sum() / m**2

    for n_subsets in (2, 150):  # few subsets: per-subset products; many: whole kernel matrices
        indices = metrics.kid_subset_indices(300, 300, n_subsets, 50, seed=1)
        values = np.array([direct(ix, iy) for ix, iy in zip(*indices, strict=True)])
        mean, std = metrics.kid(x, y, indices)
        assert mean == pytest.approx(values.mean(), rel=1e-12)
        assert std == pytest.approx(values.std(), rel=1e-9)


def test_kid_seeding_and_identical_sets():
    rng = np.random.default_rng(8)
    x, y = correlated(rng, 400, 16), correlated(rng, 400, 16, shift=0.3)
    a = metrics.kid_subset_indices(400, 400, 10, 150, seed=3)
    b = metrics.kid_subset_indices(400, 400, 10, 150, seed=3)
    c = metrics.kid_subset_indices(400, 400, 10, 150, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert all(len(np.unique(row)) == 150 for row in a[0])  # no repeats within a subset
    assert metrics.kid(x, y, a) == metrics.kid(x, y, b)
    # The same indices serve raw and L2-normalised features.
    assert metrics.kid(metrics.l2_normalize(x), metrics.l2_normalize(y), a) != metrics.kid(x, y, a)
    same_mean, _ = metrics.kid(x, x, a)
    different_mean, _ = metrics.kid(x, y, a)
    # Subsets of one finite set overlap, which biases the estimate slightly below zero.
    assert abs(same_mean) < 0.1 * different_mean
    # Subset size is capped by the smaller set.
    assert metrics.kid_subset_indices(50, 80, 3, 1000)[0].shape == (3, 50)


# --- precision / recall / density / coverage ---------------------------------------------------


def brute_force(fake, real, k_pr=3, k_dc=5):
    """Every distance in float64 as sum((a - b)^2), membership d <= radius."""
    within_real, within_fake = cdist(real, real, "sqeuclidean"), cdist(fake, fake, "sqeuclidean")
    np.fill_diagonal(within_real, np.inf)
    np.fill_diagonal(within_fake, np.inf)
    real_fake = cdist(real, fake, "sqeuclidean")
    real_pr = np.sort(within_real, 1)[:, k_pr - 1]
    real_dc = np.sort(within_real, 1)[:, k_dc - 1]
    fake_pr = np.sort(within_fake, 1)[:, k_pr - 1]
    return {
        "precision": (real_fake <= real_pr[:, None]).any(0).mean(),
        "recall": (real_fake <= fake_pr[None, :]).any(1).mean(),
        "density": (real_fake <= real_dc[:, None]).sum() / (k_dc * len(fake)),
        "coverage": (real_fake.min(1) <= real_dc).mean(),
    }


def test_precision_recall_match_torch_fidelity():
    rng = np.random.default_rng(9)
    real = correlated(rng, 700, 32)
    fake = correlated(rng, 800, 32, shift=0.1, scale=1.2)
    ours = metrics.precision_recall(fake, real)
    # torch-fidelity: input1 is the generated set; float64 so that it is exact too.
    reference = calculate_precision_recall_full(
        torch.from_numpy(fake), torch.from_numpy(real), neighborhood=3, batch_size=300
    )
    assert ours == pytest.approx(reference, abs=1e-6)  # it returns float32 means


def test_precision_recall_density_coverage_match_prdc():
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(10)
    real = correlated(rng, 600, 24)
    fake = correlated(rng, 500, 24, shift=0.15, scale=0.9)
    ours = metrics.manifold_metrics(fake, real)
    # prdc uses strict `<`; with continuous random data no distance ties a radius.
    with_5 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    with_3 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    assert ours["density"] == pytest.approx(with_5["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(with_5["coverage"], abs=1e-12)
    assert ours["precision"] == pytest.approx(with_3["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(with_3["recall"], abs=1e-12)


def decaying(rng, n, dim, shift=0.0, scale=1.0):
    """Features whose variance decays over the directions, as pooled CNN features do."""
    spectrum = np.arange(1, dim + 1) ** -1.5
    return scale * rng.standard_normal((n, dim)) * np.sqrt(spectrum) + shift


# projection_dim 0: float32 products and exact re-checks only; 6: lower bounds from 6
# directions first (what D >= 512 gets), with exact and float32 tiers behind them.
@pytest.mark.parametrize("projection_dim", [0, 6])
@pytest.mark.parametrize("block_size", [37, 128, 10_000])
def test_blocked_equals_exact_brute_force(block_size, projection_dim):
    rng = np.random.default_rng(11)
    real = decaying(rng, 500, 40, shift=5.0)
    fake = decaying(rng, 450, 40, shift=5.1, scale=1.1)
    got = metrics.manifold_metrics(fake, real, block_size=block_size, projection_dim=projection_dim)
    assert got == brute_force(fake, real)
    # float32 input (as stored in caches) is kept as it is and decided exactly too.
    fake32, real32 = fake.astype(np.float32), real.astype(np.float32)
    got = metrics.manifold_metrics(
        fake32, real32, block_size=block_size, projection_dim=projection_dim
    )
    assert got == brute_force(fake32.astype(np.float64), real32.astype(np.float64))


def test_lower_bound_tiers_on_strongly_structured_features():
    # Variance falling fast over the directions: the lower bound settles most blocks alone
    # (exact pairwise tier) and leaves the rest to the float32 tier; both must be exact.
    rng = np.random.default_rng(17)
    spread = np.arange(1, 65) ** -1.5
    real = rng.standard_normal((600, 64)) * spread + 3.0
    fake = 1.05 * rng.standard_normal((500, 64)) * spread + 3.002
    got = metrics.manifold_metrics(fake, real, projection_dim=12, block_size=100)
    assert got == brute_force(fake, real)


def test_default_path_for_wide_features():
    # D >= 512 takes the lower-bound path by default.
    rng = np.random.default_rng(16)
    real = decaying(rng, 300, 512).astype(np.float32)
    fake = decaying(rng, 250, 512, shift=0.01, scale=1.05).astype(np.float32)
    expected = brute_force(fake.astype(np.float64), real.astype(np.float64))
    assert metrics.manifold_metrics(fake, real, block_size=100) == expected


@pytest.mark.parametrize("projection_dim", [0, 2])
@pytest.mark.parametrize("block_size", [33, 4096])
def test_ties_and_duplicates_are_decided_exactly(block_size, projection_dim):
    # Small integers give exact distance ties and duplicate points; float32 alone would
    # decide `d <= radius` at random for them. A large offset makes the float32 error big.
    rng = np.random.default_rng(12)
    real = rng.integers(0, 3, (400, 6)) * 1000.5 + 1e6
    fake = rng.integers(0, 3, (300, 6)) * 1000.5 + 1e6
    got = metrics.manifold_metrics(fake, real, block_size=block_size, projection_dim=projection_dim)
    assert got == brute_force(fake, real)


def test_pairs_a_hair_inside_or_outside_a_radius():
    # Fake points at (1 -/+ 1e-9) times a real point's k-th neighbour distance: far below
    # float32 resolution, so only the exact float64 re-check can tell them apart.
    rng = np.random.default_rng(13)
    real = correlated(rng, 300, 64, shift=50.0)
    radius = metrics.knn_radii(real, k=3)
    directions = rng.standard_normal((40, 64))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    factors = np.where(np.arange(40) % 2 == 0, 1 - 1e-9, 1 + 1e-9)
    fake = real[:40] + directions * (radius[:40] * factors)[:, None]
    fake = np.concatenate([fake, correlated(rng, 100, 64, shift=50.0)])
    expected = brute_force(fake, real)
    assert metrics.manifold_metrics(fake, real) == expected
    assert metrics.manifold_metrics(fake, real, projection_dim=8, block_size=64) == expected
    exact = cdist(real, real)
    np.fill_diagonal(exact, np.inf)
    np.testing.assert_allclose(radius, np.sort(exact, 1)[:, 2], rtol=1e-14)
    np.testing.assert_allclose(
        metrics.knn_radii(real, k=3, projection_dim=8, block_size=50), radius, rtol=1e-14
    )


def test_manifold_metric_properties():
    rng = np.random.default_rng(14)
    real = correlated(rng, 200, 8)
    same = metrics.manifold_metrics(real, real)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = metrics.manifold_metrics(real + 100.0, real)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    assert set(metrics.manifold_metrics(real, real, which=("dc",))) == {"density", "coverage"}
    with pytest.raises(ValueError, match="at least 4 samples"):
        metrics.precision_recall(real[:3], real)


# --- helpers ----------------------------------------------------------------------------------


def test_l2_normalize():
    rng = np.random.default_rng(15)
    x = correlated(rng, 50, 10, shift=3.0).astype(np.float32)
    x[7] = 0.0
    normed = metrics.l2_normalize(x)
    norms = np.linalg.norm(normed, axis=1)
    assert normed.dtype == np.float64
    np.testing.assert_allclose(np.delete(norms, 7), 1.0, rtol=1e-15)
    assert norms[7] == 0.0  # no direction to keep


def test_bad_inputs_are_refused():
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="dimensions differ"):
        metrics.fid_from_features(x, np.ones((10, 5)))
    bad = np.random.default_rng(0).standard_normal((10, 4))
    bad[[2, 5], 1] = np.nan
    with pytest.raises(ValueError, match="2 rows with NaN or Inf"):
        metrics.fid_from_features(bad, x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.fid_from_features(x[:1], x)
