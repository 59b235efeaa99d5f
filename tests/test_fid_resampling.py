"""FID of weighted features against fixed statistics, its analytic gradient, the L-BFGS
solver and resampling by weights (fidlens.experiments.fid_resampling), checked against
fidlens.metrics' FID of explicit feature sets and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from fidlens.experiments.fid_resampling import (
    WeightedFrechet,
    counts_to_indices,
    minimise_fid,
    reference_from_statistics,
    softmax,
    systematic_counts,
)
from fidlens.metrics import feature_statistics, fid_from_features, frechet_distance


def _sets(n, m, dim, seed=0):
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 2.0, dim)
    generated = rng.normal(size=(n, dim)) * scales + 0.3
    real = rng.normal(size=(m, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim) + 0.1
    return generated, real


def _objective(generated, real):
    return WeightedFrechet(generated, reference_from_statistics(*feature_statistics(real)))


def _weighted_statistics(x, p, correction):
    mean = p @ x
    centred = x - mean
    return mean, correction * (centred.T * p) @ centred


@pytest.mark.parametrize(("n", "m", "dim"), [(60, 80, 12), (25, 40, 64), (30, 20, 64)])
def test_fid_equals_fid_of_explicit_sets_and_weighted_statistics(n, m, dim):
    """Full-rank and singular (n or m below D) covariances alike."""
    generated, real = _sets(n, m, dim)
    objective = _objective(generated, real)
    uniform = objective.fid(objective.uniform())
    assert uniform == pytest.approx(fid_from_features(generated, real), rel=1e-9)
    # A multiset with repeats is exactly the FID of those rows.
    counts = np.random.default_rng(1).integers(0, 4, size=n)
    counts[:2] += 1
    expected = fid_from_features(generated[counts_to_indices(counts)], real)
    assert objective.fid_of_counts(counts) == pytest.approx(expected, rel=1e-9)
    # Any weights: the Fréchet distance of the weighted mean and covariance.
    p = softmax(np.random.default_rng(2).normal(size=n))
    mean, cov = _weighted_statistics(generated, p, 1.7)
    expected = frechet_distance(mean, cov, *feature_statistics(real))
    assert objective.fid(p, correction=1.7) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize(("n", "m", "dim"), [(60, 80, 12), (25, 40, 64)])
def test_analytic_gradient_matches_finite_differences(n, m, dim):
    generated, real = _sets(n, m, dim, seed=3)
    objective = _objective(generated, real)
    theta = np.random.default_rng(4).normal(size=n) * 0.7
    _, gradient = objective.log_weight_objective(theta)
    step = 1e-5
    numeric = np.array([
        (objective.log_weight_objective(theta + step * e)[0]
         - objective.log_weight_objective(theta - step * e)[0]) / (2 * step)
        for e in np.eye(n)
    ])
    assert np.abs(numeric - gradient).max() <= 1e-6 * np.abs(gradient).max()
    # The simplex gradient gives the same directional derivative in p.
    p = softmax(theta)
    _, g = objective.fid_and_gradient(p)
    direction = np.random.default_rng(5).normal(size=n)
    direction -= direction.mean()
    numeric = (objective.fid(p + 1e-7 * direction) - objective.fid(p - 1e-7 * direction)) / 2e-7
    assert g @ direction == pytest.approx(numeric, rel=1e-5)


def test_optimum_lowers_fid_and_drops_the_off_distribution_images():
    """Generated = real-like rows plus shifted outliers: the optimum puts (almost) no weight
    on the outliers and reaches a FID far below the uniform one."""
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 8))
    good = rng.normal(size=(150, 8))
    bad = rng.normal(size=(50, 8)) + 3.0
    objective = _objective(np.vstack([good, bad]), real)
    optimum = minimise_fid(objective, max_iterations=300)
    assert optimum.fid < 0.2 * optimum.fid_uniform
    assert optimum.fid_uniform == pytest.approx(
        fid_from_features(np.vstack([good, bad]), real), rel=1e-9)
    assert optimum.weights[150:].sum() < 0.02
    assert optimum.fid == pytest.approx(objective.fid(optimum.weights), rel=1e-12)
    assert optimum.iterations >= 1 and optimum.trace[-1][2] == optimum.fid
    assert 0 < optimum.effective_sample_size() < 200


def test_time_limit_returns_the_best_point_so_far():
    generated, real = _sets(80, 80, 10, seed=7)
    objective = _objective(generated, real)
    # A limit already passed after the first evaluation: the uniform weights are returned.
    optimum = minimise_fid(objective, max_iterations=10**6, time_limit_s=1e-9)
    assert "time limit" in optimum.stop_reason and optimum.evaluations == 1
    assert optimum.fid == optimum.fid_uniform and (optimum.weights == 1 / 80).all()
    # A longer one stops on time or converges, keeping the best point seen.
    optimum = minimise_fid(objective, max_iterations=10**6, time_limit_s=0.2, tolerance=0)
    assert optimum.fid < optimum.fid_uniform and optimum.seconds < 5
    assert optimum.fid == min(fid for _, _, fid in optimum.trace)
    assert optimum.fid_at(0) == optimum.fid_uniform


def test_systematic_counts():
    rng = np.random.default_rng(8)
    p = softmax(rng.normal(size=40) * 2)
    for size in (40, 97):
        counts = systematic_counts(p, size, rng)
        assert counts.sum() == size
        assert (counts >= np.floor(size * p) - 1e-9).all()
        assert (counts <= np.ceil(size * p) + 1e-9).all()
    assert (systematic_counts(np.full(30, 1 / 30), 30, rng) == 1).all()  # the set itself
    zero_tail = np.array([0.5, 0.5, 0.0, 0.0])
    assert systematic_counts(zero_tail, 1000, rng)[2:].sum() == 0
