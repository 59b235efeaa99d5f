"""ImageNet class statistics of image sets from a classifier's logits: Top-1 classes and their
histograms, exact Top-1 histogram matching by resampling, and N-hot Top-N features.

Top-1 matching (seed 002, section 3): the generated set is resampled with replacement to the
same size M so that its histogram of Top-1 classes matches the real set's. Real classes that no
generated image predicts cannot be matched; their share of the real set (the unmatched mass)
is spread over the matchable classes in proportion to their real counts (the real histogram
restricted to the matchable classes, renormalised). Generated images of classes absent from
the real set get no draws. Class counts are whole numbers: M x (real share) rounded by the
largest-remainder method in exact integer arithmetic, so the matched histogram equals the
target exactly whenever M x share is whole for every class (e.g. M = number of real images and
no unmatched mass), and is within one image per class otherwise. Within a class the draws use
its images as evenly as possible: each floor(k / n_c) times, plus k mod n_c of them (chosen
with the seed) once more.

Top-N (the seed-002 authors' `resampling/` code): each image is the N-hot indicator vector of
its N highest logits; matching the sets' statistics of these vectors (their mean is the
per-class frequency of being among the Top-N) generalises Top-1 matching. The authors keep the
columns that both sets use; here the columns that either set uses are kept, so generated mass
on classes the real set never ranks in its Top-N counts against a match instead of vanishing.

Pure maths: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def top_classes(logits, n: int) -> np.ndarray:
    """Indices of each row's n highest logits, highest first (ties: the lower class index)."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be N x K, got shape {logits.shape}")
    if not 1 <= n <= logits.shape[1]:
        raise ValueError(f"N must be between 1 and the {logits.shape[1]} classes, got {n}")
    if not np.isfinite(logits).all():
        raise ValueError("logits have NaN or Inf values")
    return np.argsort(-logits, axis=1, kind="stable")[:, :n]


def top1_classes(logits) -> np.ndarray:
    return top_classes(logits, 1)[:, 0]


def class_histogram(classes, n_classes: int, counts=None) -> np.ndarray:
    """Images per class (int64, length n_classes); `counts`: how many times each image counts."""
    classes = np.asarray(classes, dtype=np.int64)
    weights = None if counts is None else np.asarray(counts, dtype=np.float64)
    histogram = np.bincount(classes, weights=weights, minlength=n_classes)
    return np.rint(histogram).astype(np.int64)


@dataclass
class Top1Plan:
    """Target class counts of a Top-1 matched resample, and what could not be matched."""

    target_counts: np.ndarray  # draws per class (int64, sums to size)
    real_counts: np.ndarray  # real images per class
    generated_counts: np.ndarray  # generated images per class, before resampling
    unmatched_classes: np.ndarray  # real classes no generated image predicts
    unmatched_mass: float  # their share of the real set
    dropped_images: int  # generated images of classes the real set lacks (never drawn)
    exact: bool  # target_counts is exactly size x the (renormalised) real shares

    @property
    def size(self) -> int:
        return int(self.target_counts.sum())


def top1_plan(generated_classes, real_classes, n_classes: int, size: int) -> Top1Plan:
    """Class counts for a Top-1 matched resample of `size` generated images (see the module
    docstring for how unmatched real mass is handled). Raises ValueError when no real class is
    predicted by any generated image (nothing can be matched)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    real = class_histogram(real_classes, n_classes)
    generated = class_histogram(generated_classes, n_classes)
    matchable = (real > 0) & (generated > 0)
    if not matchable.any():
        raise ValueError(
            "no real Top-1 class is predicted by any generated image: the histograms share no "
            "class, so Top-1 matching is not possible"
        )
    unmatched = np.flatnonzero((real > 0) & (generated == 0))
    weights = np.where(matchable, real, 0).astype(np.int64)
    total = int(weights.sum())
    numerators = weights * int(size)
    counts = numerators // total
    remainders = numerators % total
    short = int(size) - int(counts.sum())
    # Largest remainders first, then the lower class index: deterministic and exact.
    order = np.lexsort((np.arange(n_classes), -remainders))
    counts[order[:short]] += 1
    return Top1Plan(
        target_counts=counts,
        real_counts=real,
        generated_counts=generated,
        unmatched_classes=unmatched,
        unmatched_mass=float(real[unmatched].sum() / real.sum()),
        dropped_images=int(generated[(real == 0) & (generated > 0)].sum()),
        exact=bool((remainders == 0).all()),
    )


def stratified_counts(generated_classes, target_counts, rng: np.random.Generator) -> np.ndarray:
    """Draws per generated image (int64) so that class c gets target_counts[c] draws, spread as
    evenly as possible over its images (the extra draws on distinct images chosen by `rng`)."""
    classes = np.asarray(generated_classes, dtype=np.int64)
    counts = np.zeros(len(classes), dtype=np.int64)
    for cls in np.flatnonzero(target_counts):
        members = np.flatnonzero(classes == cls)
        if len(members) == 0:
            raise ValueError(f"class {cls} has target draws but no generated image")
        base, extra = divmod(int(target_counts[cls]), len(members))
        counts[members] += base
        if extra:
            counts[rng.choice(members, size=extra, replace=False)] += 1
    return counts


def n_hot(logits, n: int) -> np.ndarray:
    """N x K float64 indicator vectors of each row's Top-n classes."""
    top = top_classes(logits, n)
    hot = np.zeros(np.shape(logits), dtype=np.float64)
    np.put_along_axis(hot, top, 1.0, axis=1)
    return hot


def top_n_features(generated_logits, real_logits, n: int):
    """(generated N-hot, real N-hot, kept class indices): the columns either set uses."""
    generated, real = n_hot(generated_logits, n), n_hot(real_logits, n)
    if generated.shape[1] != real.shape[1]:
        raise ValueError(
            f"the sets have different numbers of classes: {generated.shape[1]}, {real.shape[1]}"
        )
    used = np.flatnonzero(generated.any(axis=0) | real.any(axis=0))
    return generated[:, used], real[:, used], used


def mean_mismatch(generated_hot, real_hot, weights=None, n: int = 1) -> float:
    """Total-variation distance between the sets' mean N-hot vectors, divided by N: in [0, 1],
    0 when every class is among the Top-N equally often in both sets (Top-1: the total-variation
    distance between the class histograms). `weights`: per generated image, summing to 1."""
    generated_hot = np.asarray(generated_hot, dtype=np.float64)
    if weights is None:
        generated_mean = generated_hot.mean(axis=0)
    else:
        generated_mean = np.asarray(weights, dtype=np.float64) @ generated_hot
    real_mean = np.asarray(real_hot, dtype=np.float64).mean(axis=0)
    return float(0.5 * np.abs(generated_mean - real_mean).sum() / n)
