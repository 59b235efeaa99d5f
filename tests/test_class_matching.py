"""Top-1 classes, exact Top-1 histogram matching and N-hot Top-N features
(fidlens.experiments.class_matching)."""

from __future__ import annotations

import numpy as np
import pytest

from fidlens.experiments import class_matching as cm
from fidlens.experiments.fid_resampling import (
    WeightedFrechet,
    minimise_fid,
    reference_from_statistics,
)
from fidlens.metrics import feature_statistics

CLASSES = 12


def _logits_with_top1(classes, seed):
    """Random logits whose argmax is the given class of each row."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(classes), CLASSES))
    logits[np.arange(len(classes)), classes] += 10.0
    return logits


def test_top_classes_and_n_hot():
    logits = np.array([[0.1, 3.0, 2.0, -1.0], [5.0, 1.0, 1.0, 0.0]])
    assert cm.top_classes(logits, 2).tolist() == [[1, 2], [0, 1]]  # tie: lower index
    assert cm.n_hot(logits, 2).tolist() == [[0, 1, 1, 0], [1, 1, 0, 0]]
    generated, real, used = cm.top_n_features(logits[:1], logits[1:], 1)
    assert used.tolist() == [0, 1] and generated.tolist() == [[0, 1]] and real.tolist() == [[1, 0]]
    with pytest.raises(ValueError, match="between 1 and the 4 classes"):
        cm.top_classes(logits, 5)


def test_top1_matching_is_exact_when_every_real_class_is_predicted():
    rng = np.random.default_rng(0)
    real = rng.choice(6, size=40, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05])
    generated = np.concatenate([np.arange(6), rng.choice(8, size=34)])  # all 6, and 2 extra
    plan = cm.top1_plan(generated, real, CLASSES, size=len(generated))
    assert plan.exact and plan.unmatched_mass == 0 and plan.unmatched_classes.size == 0
    assert plan.dropped_images == int(np.isin(generated, [6, 7]).sum())
    for seed in range(3):
        counts = cm.stratified_counts(generated, plan.target_counts, np.random.default_rng(seed))
        assert counts.sum() == len(generated)
        matched = cm.class_histogram(generated, CLASSES, counts)
        np.testing.assert_array_equal(matched, cm.class_histogram(real, CLASSES))
        assert counts[np.isin(generated, [6, 7])].sum() == 0
        # Draws spread evenly within a class: counts differ by at most one there.
        for cls in range(6):
            members = counts[generated == cls]
            assert members.max() - members.min() <= 1


def test_top1_matching_reports_and_spreads_unmatched_mass():
    real = np.array([0] * 10 + [1] * 6 + [2] * 4)  # class 2: no generated image
    generated = np.array([0] * 3 + [1] * 12 + [3] * 5)
    plan = cm.top1_plan(generated, real, CLASSES, size=20)
    assert plan.unmatched_classes.tolist() == [2] and plan.unmatched_mass == pytest.approx(0.2)
    assert plan.dropped_images == 5 and plan.size == 20
    # Classes 0 and 1 share the 20 draws as 10 : 6 -> 12.5 : 7.5, rounded by largest remainder
    # (a tie, broken by the lower class index).
    assert plan.target_counts[:4].tolist() == [13, 7, 0, 0] and not plan.exact
    with pytest.raises(ValueError, match="share no class"):
        cm.top1_plan(np.array([5, 5]), np.array([4, 4]), CLASSES, 2)


def test_mean_mismatch_of_top1_is_the_histograms_total_variation():
    real, generated = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    real_hot = cm.n_hot(_logits_with_top1(real, 1), 1)
    generated_hot = cm.n_hot(_logits_with_top1(generated, 2), 1)
    assert cm.mean_mismatch(generated_hot, real_hot) == pytest.approx(0.5)
    weights = np.array([0.5, 0.25, 0.25, 0.0])
    assert cm.mean_mismatch(generated_hot, real_hot, weights) == pytest.approx(0.25)


def test_top_n_matching_by_the_solver_removes_the_mismatch_when_it_can():
    """Every real N-hot pattern occurs among the generated images, in other proportions plus
    patterns the real set lacks: matching the indicator statistics brings the mean N-hot
    mismatch to ~0."""
    rng = np.random.default_rng(3)
    real_logits = rng.normal(size=(60, CLASSES))
    real_logits[:, :3] += 4.0 * rng.random((60, 3))  # the real set favours classes 0-2
    generated_logits = np.vstack([real_logits[rng.permutation(60)[:30]],
                                  rng.normal(size=(30, CLASSES))])
    generated_logits[:30] += rng.normal(scale=1e-3, size=(30, CLASSES))
    for n in (1, 3):
        generated, real, _ = cm.top_n_features(generated_logits, real_logits, n)
        objective = WeightedFrechet(generated, reference_from_statistics(*feature_statistics(real)))
        optimum = minimise_fid(objective, max_iterations=60)
        before = cm.mean_mismatch(generated, real, None, n)
        after = cm.mean_mismatch(generated, real, optimum.weights, n)
        assert optimum.fid < optimum.fid_uniform and after < 0.3 * before
