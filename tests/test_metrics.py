"""fidlens.metrics against the reference implementations (run here) and exact float64 maths."""

import warnings

import numpy as np
import prdc
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.spatial.distance import cdist
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from fidlens import metrics
from fidlens.metrics import fid as fid_module
from fidlens.metrics import knn

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


def test_trace_sqrt_paths_equal_an_independent_exact_value():
    rng = np.random.default_rng(4)
    x, y = correlated(rng, 400, 48), correlated(rng, 400, 48, scale=2.0)
    s1, s2 = metrics.feature_statistics(x)[1], metrics.feature_statistics(y)[1]
    # Independent: tr sqrt(S1 S2) = sum of singular values of Rx Ry^T / (n - 1) (numpy QR
    # of the centred features, then SVD; no eigenvalue square roots).
    rx = np.linalg.qr(x - x.mean(0), mode="r")
    ry = np.linalg.qr(y - y.mean(0), mode="r")
    exact = np.linalg.svd(rx @ ry.T, compute_uv=False).sum() / (len(x) - 1)
    t1, t2 = s1, s2
    fast = metrics.trace_sqrt_product(s1, s2)  # generalised eigenproblem
    cholesky = fid_module._nuclear_norm_of_product(
        fid_module._clear_cholesky(t1), fid_module._clear_cholesky(t2)
    )
    eigen = fid_module._nuclear_norm_of_product(
        fid_module._psd_factor(t1), fid_module._psd_factor(t2)
    )
    for value in (fast, cholesky, eigen):
        assert relative(value, exact) <= 1e-11


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


def numpy_unbiased_mmd2(x, y):
    """Unbiased MMD^2 with KID's kernel (a.b / D + 1)^3 on all of x (m rows) and y (n rows),
    written out in numpy: within-set sums without the diagonal over m (m - 1) and n (n - 1),
    the cross sum over m n (Gretton et al. 2012)."""
    dim, m, n = x.shape[1], len(x), len(y)
    k_xx, k_yy, k_xy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return within_x + within_y - 2 * k_xy.sum() / (m * n)


def test_kid_on_whole_sets_of_unequal_size():
    rng = np.random.default_rng(18)
    x, y = correlated(rng, 70, 16), correlated(rng, 45, 16, shift=0.2)
    expected = numpy_unbiased_mmd2(x, y)
    assert metrics.kid_whole_sets(x, y) == pytest.approx(expected, rel=1e-12)
    assert metrics.kid_whole_sets(x, y, block=8) == pytest.approx(expected, rel=1e-12)
    # Equal sizes: torch-fidelity's KID with one subset holding every sample.
    reference = kid_features_to_metric(
        torch.from_numpy(x[:45]), torch.from_numpy(y), kid_subsets=1, kid_subset_size=45,
        verbose=False,
    )  # fmt: skip
    ours = metrics.kid_whole_sets(x[:45], y)
    assert relative(ours, reference["kernel_inception_distance_mean"]) <= 1e-10


def test_kid_subsets_of_small_sets_all_agree():
    # Why small sets get one whole-set estimate: with neither set larger than the subset
    # size, every subset is a permutation of the whole sets and the spread is rounding noise.
    rng = np.random.default_rng(19)
    x, y = correlated(rng, 50, 16), correlated(rng, 50, 16, shift=0.2)
    assert metrics.kid_uses_whole_sets(50, 50, 1000)
    mean, std = metrics.kid(x, y, metrics.kid_subset_indices(50, 50, 100, 1000))
    assert std < 1e-12 * abs(mean)
    assert mean == pytest.approx(metrics.kid_whole_sets(x, y), rel=1e-12)
    # One set larger than the subset size: subsets differ, and the spread is real.
    assert not metrics.kid_uses_whole_sets(1001, 50, 1000)
    big = correlated(rng, 300, 16)
    mean, std = metrics.kid(big, y, metrics.kid_subset_indices(300, 50, 20, 100))
    assert std > 1e-3 * abs(mean)


# --- precision / recall / density / coverage ---------------------------------------------------


def brute_force(fake, real, k_pr=3, k_dc=5):
    """Every distance in float64 as sum((a - b)^2) (scipy's cdist); membership d <= radius for
    precision and recall (Kynkäänniemi et al.), d < radius for density and coverage (Naeem et
    al.'s prdc)."""
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
        "density": (real_fake < real_dc[:, None]).sum() / (k_dc * len(fake)),
        "coverage": (real_fake.min(1) < real_dc).mean(),
    }


def brute_force_radii(x, k):
    within = cdist(x, x, "sqeuclidean")
    np.fill_diagonal(within, np.inf)
    return np.sqrt(np.sort(within, 1)[:, k - 1])


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
    rng = np.random.default_rng(10)
    real = correlated(rng, 600, 24)
    fake = correlated(rng, 500, 24, shift=0.15, scale=0.9)
    ours = metrics.manifold_metrics(fake, real)
    # prdc counts d < radius throughout; with continuous random data no distance ties a radius,
    # so its precision and recall (where we count d <= radius) agree too.
    with_5 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    with_3 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    assert ours["density"] == pytest.approx(with_5["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(with_5["coverage"], abs=1e-12)
    assert ours["precision"] == pytest.approx(with_3["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(with_3["recall"], abs=1e-12)


@pytest.mark.parametrize("case", ["duplicates in both sets", "fake copies real"])
def test_density_coverage_count_ties_like_prdc(case):
    # Small integers: every squared distance is an exact integer in float64, also in sklearn's
    # |x|^2 + |y|^2 - 2 x.y form that prdc uses, so ties with a radius are real ties for both
    # implementations. prdc counts a point inside a ball only when strictly closer (<).
    rng = np.random.default_rng(20)
    real = rng.integers(0, 4, (300, 5)).astype(np.float64)
    if case == "fake copies real":
        fake = real[rng.permutation(300)]
    else:
        fake = rng.integers(0, 4, (250, 5)).astype(np.float64)
    assert len(np.unique(real, axis=0)) < len(real)  # duplicates within the set
    reference = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    density, coverage = metrics.density_coverage(fake, real)
    assert density == pytest.approx(reference["density"], abs=1e-12)
    assert coverage == pytest.approx(reference["coverage"], abs=1e-12)
    expected = brute_force(fake, real)
    assert (density, coverage) == (expected["density"], expected["coverage"])
    # Ties decide the numbers here: counting d <= radius would give other ones.
    radius = np.sort(cdist(real, real, "sqeuclidean") + np.diag(np.full(300, np.inf)), 1)[:, 4]
    inclusive = (cdist(real, fake, "sqeuclidean") <= radius[:, None]).sum() / (5 * len(fake))
    assert inclusive > density


def test_memorised_copies_have_density_one():
    # A copy of the real set: each real ball (k = 5, strict) holds the point itself and its
    # 4 nearer neighbours, not the 5th on its boundary, so density is exactly 1 (prdc's value).
    rng = np.random.default_rng(21)
    real = correlated(rng, 500, 32)
    fake = real[rng.permutation(500)].astype(np.float32).astype(np.float64)
    real = fake[rng.permutation(500)]
    assert metrics.manifold_metrics(fake, real) == {
        "precision": 1.0,
        "recall": 1.0,
        "density": 1.0,
        "coverage": 1.0,
    }


def decaying(rng, n, dim, shift=0.0, scale=1.0):
    """Features whose variance decays over the directions, as pooled CNN features do."""
    spectrum = np.arange(1, dim + 1) ** -1.5
    return scale * rng.standard_normal((n, dim)) * np.sqrt(spectrum) + shift


@pytest.mark.parametrize("block_size", [37, 128, 10_000])
def test_blocked_equals_exact_brute_force(block_size):
    rng = np.random.default_rng(11)
    real = decaying(rng, 500, 40, shift=5.0)
    fake = decaying(rng, 450, 40, shift=5.1, scale=1.1)
    got = metrics.manifold_metrics(fake, real, block_size=block_size)
    assert got == brute_force(fake, real)
    # float32 input (as stored in caches) is kept as it is and decided exactly too.
    fake32, real32 = fake.astype(np.float32), real.astype(np.float32)
    got = metrics.manifold_metrics(fake32, real32, block_size=block_size)
    assert got == brute_force(fake32.astype(np.float64), real32.astype(np.float64))


def test_strongly_structured_and_wide_features():
    # Variance falling fast over the directions (most pairs far from any radius), and D = 512.
    rng = np.random.default_rng(17)
    spread = np.arange(1, 65) ** -1.5
    real = rng.standard_normal((600, 64)) * spread + 3.0
    fake = 1.05 * rng.standard_normal((500, 64)) * spread + 3.002
    assert metrics.manifold_metrics(fake, real, block_size=100) == brute_force(fake, real)
    real = decaying(rng, 300, 512).astype(np.float32)
    fake = decaying(rng, 250, 512, shift=0.01, scale=1.05).astype(np.float32)
    expected = brute_force(fake.astype(np.float64), real.astype(np.float64))
    assert metrics.manifold_metrics(fake, real, block_size=100) == expected


@pytest.mark.parametrize("block_size", [33, 4096])
def test_ties_and_duplicates_are_decided_exactly(block_size):
    # Small integers give exact distance ties and duplicate points; float32 alone would
    # decide `d <= radius` at random for them. A large offset makes the float32 error big.
    rng = np.random.default_rng(12)
    real = rng.integers(0, 3, (400, 6)) * 1000.5 + 1e6
    fake = rng.integers(0, 3, (300, 6)) * 1000.5 + 1e6
    got = metrics.manifold_metrics(fake, real, block_size=block_size)
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
    assert metrics.manifold_metrics(fake, real, block_size=64) == expected
    np.testing.assert_allclose(radius, brute_force_radii(real, 3), rtol=1e-14)
    np.testing.assert_allclose(metrics.knn_radii(real, k=3, block_size=50), radius, rtol=1e-14)


COLLAPSED = ["all fakes identical", "a few tight modes", "duplicated real rows", "fake copies real"]


def collapsed(case, rng, n=400, dim=16):
    """(fake, real) of a mode-collapsed or memorising generator, far from the origin (which
    makes float32 products centred there useless for the tiny distances inside a mode)."""
    real = correlated(rng, n, dim, shift=20.0)
    fake = correlated(rng, n, dim, shift=20.1, scale=1.1)
    if case == "all fakes identical":
        fake = np.repeat(real[:1] + 3.0, n, axis=0)
    elif case == "a few tight modes":  # 4 modes of spread 1e-7, a few exact duplicates in each
        centres = correlated(rng, 4, dim, shift=20.0)
        fake = np.repeat(centres, n // 4, axis=0) + 1e-7 * rng.standard_normal((n, dim))
        fake[1::50] = fake[::50]
    elif case == "duplicated real rows":  # as if every real image were in the set 4 times
        real = np.repeat(real[: n // 4], 4, axis=0)[rng.permutation(n)]
    else:
        fake = real[rng.permutation(n)]
    return fake, real


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", COLLAPSED)
def test_collapsed_sets_are_exact(case, dtype):
    fake, real = (a.astype(dtype) for a in collapsed(case, np.random.default_rng(22)))
    expected = brute_force(fake.astype(np.float64), real.astype(np.float64))
    assert metrics.manifold_metrics(fake, real) == expected
    assert metrics.manifold_metrics(fake, real, block_size=64) == expected
    for x in (fake, real):  # equal up to the summation order of sum((a - b)^2)
        exact = brute_force_radii(x.astype(np.float64), 3)
        np.testing.assert_allclose(metrics.knn_radii(x, k=3), exact, rtol=1e-14, atol=0)
        np.testing.assert_allclose(metrics.knn_radii(x, k=3, block_size=64), exact, rtol=1e-14)


@pytest.mark.parametrize("case", COLLAPSED)
def test_collapsed_sets_need_few_exact_distances(case, monkeypatch):
    # The work that blew up on collapsed sets: when float32 cannot tell pairs apart, each is
    # recomputed exactly. Here the exact distances stay linear in N: about k + margin per point.
    fake, real = collapsed(case, np.random.default_rng(23), n=1200)
    computed = []
    exact_sq_distances = knn._exact_sq_distances

    def counting(a, b, ia, ib, *args):
        computed.append(len(ia))
        return exact_sq_distances(a, b, ia, ib, *args)

    monkeypatch.setattr(knn, "_exact_sq_distances", counting)
    assert metrics.manifold_metrics(fake, real) == brute_force(fake, real)
    margin = knn.CANDIDATE_MARGIN
    candidates = len(real) * (5 + margin) + len(fake) * (3 + margin)
    assert sum(computed) <= 1.5 * candidates  # N^2 = 1.4e6 pairs per set


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", COLLAPSED + ["integers far from the origin"])
def test_float32_product_bounds_every_pair(case, dtype):
    # The one bound everything rests on: v <= d^2 <= v + width (|x - c|^2 + |y - c|^2) for
    # every pair of a block product, against float64 distances from differences.
    rng = np.random.default_rng(24)
    if case == "integers far from the origin":
        fake, real = (rng.integers(0, 3, (300, 6)) * 1000.5 + 1e6 for _ in range(2))
    else:
        fake, real = collapsed(case, rng, n=300)
    fake, real = fake.astype(dtype), real.astype(dtype)
    fake_set, real_set = knn._prepare(fake, real, block_size=64)
    bounds = real_set.bounds
    relative_widths = []
    for rows, centre in zip(real_set.blocks, real_set.centres, strict=True):
        left, row_norms = real_set.operand(rows, centre, "left")
        for cols in fake_set.blocks:
            values, col_norms = knn._product(left, fake_set, cols, centre)
            v = values.double().numpy()
            width = bounds.width * (row_norms[:, None] + col_norms[None, :]).double().numpy()
            x, y = real[rows].astype(np.float64), fake[cols].astype(np.float64)
            exact = cdist(x, y, "sqeuclidean") * real_set.scale_sq
            assert (v - bounds.slack <= exact).all()
            assert (exact <= v + width + bounds.slack).all()
            close = exact > 0
            relative_widths.append(width[close] / exact[close])
    # Centred on each block's own centre, the width stays small against the distances even
    # inside tight modes and far from the origin.
    assert np.median(np.concatenate(relative_widths)) < 0.05


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


@pytest.mark.parametrize("scale", [1.0, 2.0**40, 2.0**-40])
def test_knn_sq_radii_are_exact_in_original_units_and_reused_bit_for_bit(scale):
    rng = np.random.default_rng(16)
    real = (correlated(rng, 300, 12) * scale).astype(np.float32)
    fake = (correlated(rng, 250, 12, shift=0.2) * scale).astype(np.float32)
    radii = {name: metrics.knn_sq_radii(x, (5, 3)) for name, x in (("real", real), ("fake", fake))}
    for name, x in (("real", real), ("fake", fake)):
        within = cdist(x.astype(np.float64), x.astype(np.float64), "sqeuclidean")
        np.fill_diagonal(within, np.inf)
        for k in (3, 5):
            assert radii[name][k].dtype == np.float64
            np.testing.assert_allclose(radii[name][k], np.sort(within, 1)[:, k - 1], rtol=1e-12)
    # own k-NN radii, or the precomputed ones (each set alone picks its own scale): ==
    ours = metrics.manifold_metrics(fake, real)
    given = metrics.manifold_metrics(fake, real, real_sq_radii=radii["real"],
                                     fake_sq_radii={3: radii["fake"][3]})  # fmt: skip
    assert given == ours
    assert metrics.manifold_metrics(fake, real, which=("dc",), real_sq_radii={
        5: radii["real"][5]}) == metrics.manifold_metrics(fake, real, which=("dc",))  # fmt: skip
    np.testing.assert_array_equal(metrics.knn_radii(real, 3), np.sqrt(radii["real"][3]))


def test_precomputed_radii_are_validated():
    rng = np.random.default_rng(17)
    real, fake = correlated(rng, 40, 4), correlated(rng, 30, 4)
    good = metrics.knn_sq_radii(real, (3, 5))
    cases = {
        "no radii for k = 5": {3: good[3]},
        "expected 40 radii": {3: good[3], 5: good[5][:-1]},
        "finite and non-negative": {3: good[3], 5: np.where(np.arange(40) == 2, -1.0, good[5])},
        "must be floating point": {3: good[3], 5: good[5].astype(np.int64)},
    }
    for message, radii in cases.items():
        with pytest.raises(ValueError, match=message):
            metrics.manifold_metrics(fake, real, real_sq_radii=radii)
    nan = good[3].copy()
    nan[0] = np.nan
    with pytest.raises(ValueError, match="fake_sq_radii.*finite"):
        metrics.manifold_metrics(real[:30], real, fake_sq_radii={3: nan[:30]})
    with pytest.raises(ValueError, match="need at least 6 samples"):
        metrics.knn_sq_radii(real[:5], (5,))


def test_statistics_of_float32_rows_equal_a_float64_computation():
    """Chunked rank-k updates from float32 (no float64 copy of the whole set)."""
    rng = np.random.default_rng(18)
    x = (correlated(rng, 5000, 40) + 3.0).astype(np.float32)
    mu, sigma = metrics.feature_statistics(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mu, x64.mean(0), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(sigma, np.cov(x64, rowvar=False), rtol=1e-12, atol=1e-14)
    assert (sigma == sigma.T).all() and sigma.dtype == np.float64
    # chunk boundaries do not matter beyond rounding
    whole = fid_module._scatter(x, mu, chunk=len(x)) / (len(x) - 1)
    np.testing.assert_allclose(sigma, whole, rtol=1e-12, atol=1e-14)


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


# --- statistics that come from outside ------------------------------------------------------


def test_an_indefinite_covariance_is_refused_naming_the_eigenvalue():
    """The input of the users'-reports issue: pytorch-fid refuses it; FID = -1.857 before."""
    a = np.random.default_rng(0).standard_normal((3, 3))
    with pytest.raises(ValueError, match=r"mu1/sigma1.*not positive semi-definite.*-3\.2"):
        metrics.frechet_distance(np.zeros(3), a + a.T, np.zeros(3), np.eye(3))


@pytest.mark.parametrize(
    ("mu", "sigma", "message"),
    [
        (np.zeros(3), np.ones((3, 2)), "must be 3 x 3"),
        (np.zeros((3, 1)), np.eye(3), "must be a vector"),
        (np.array([0.0, np.nan, 0.0]), np.eye(3), "mean has 1 NaN"),
        (np.zeros(3), np.array([[1.0, 0.5, 0], [0.0, 1, 0], [0, 0, 1]]), "not symmetric"),
    ],
)
def test_malformed_statistics_are_named(mu, sigma, message):
    with pytest.raises(ValueError, match=message):
        metrics.check_statistics(mu, sigma, "target.npz")


def test_float32_rounding_of_valid_statistics_is_accepted():
    x = correlated(np.random.default_rng(3), 400, 8)
    mu, sigma = metrics.feature_statistics(x)
    low_rank = sigma - np.linalg.eigvalsh(sigma)[0] * np.eye(8)  # smallest eigenvalue 0
    stored = low_rank.astype(np.float32)  # as another tool may save it: tiny asymmetry, -eps
    checked_mu, checked = metrics.check_statistics(mu.astype(np.float32), stored)
    assert checked.dtype == np.float64 and np.array_equal(checked, checked.T)
    assert metrics.frechet_distance(mu, sigma, checked_mu, checked) >= 0


def test_fid_of_a_set_with_itself_is_never_negative_without_a_word():
    x = correlated(np.random.default_rng(4), 300, 6)
    stats = metrics.feature_statistics(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = metrics.frechet_distance(*stats, *stats)
    assert value >= 0 or any("below 0 by rounding" in str(w.message) for w in caught)
    assert abs(value) < 1e-9
