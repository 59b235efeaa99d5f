"""FD∞: FID extrapolated to an infinite generated set (Chong & Forsyth 2020, "Effectively
Unbiased FID and Inception Score and where to find them", CVPR).

FID computed on N generated samples is biased upward by a term that shrinks like 1/N, so sets
of different sizes cannot be compared by FID. Chong & Forsyth evaluate FID_N on random subsets
of the generated set at several N (their code, mchong6/FID_IS_infinity `score_infinity.py`:
15 sizes evenly spaced from 5,000 to all 50,000 images, the features shuffled before each
size, the real statistics fixed), fit the line FID_N = FD∞ + k / N by least squares, and
report its value at 1/N = 0.

Pure maths: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fidlens.metrics._common import _matrix
from fidlens.metrics.fid import (
    _nonnegative_fid,
    _nuclear_norm_of_product,
    _psd_factor,
    check_statistics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
)

FD_POINTS = 15  # Chong & Forsyth's num_points
FD_MIN_FRACTION = 0.1  # their 5,000 of 50,000 images


@dataclass(frozen=True)
class FDInfinity:
    """The fit: `sizes` (k,) subset sizes, `fids` (k,) FID_N at each, `subsets` the row
    indices of the generated set used at each size, `fd_infinity` the intercept at 1/N = 0 and
    `slope` the coefficient k of 1/N (FID units x images)."""

    sizes: np.ndarray
    fids: np.ndarray
    subsets: tuple[np.ndarray, ...]
    fd_infinity: float
    slope: float

    def as_dict(self) -> dict:
        return {
            "fd_infinity": self.fd_infinity,
            "fd_infinity_slope": self.slope,
            "fd_infinity_sizes": [int(n) for n in self.sizes],
            "fd_infinity_fids": [float(v) for v in self.fids],
        }


def fd_infinity_sizes(
    n: int, points: int = FD_POINTS, min_fraction: float = FD_MIN_FRACTION
) -> np.ndarray:
    """Subset sizes: `points` evenly spaced integers from ceil(min_fraction x n) (at least 2)
    to n, duplicates dropped (as Chong & Forsyth's np.linspace(min, n, points), whose 5,000 of
    50,000 is min_fraction 0.1). Raises ValueError when fewer than 2 distinct sizes result."""
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    if points < 2:
        raise ValueError(f"FD∞ needs at least 2 subset sizes, got points = {points}")
    start = max(2, math.ceil(min_fraction * n))
    sizes = np.unique(np.linspace(start, n, points).astype(np.int64))
    if len(sizes) < 2:
        raise ValueError(
            f"FD∞ needs at least 2 distinct subset sizes; a set of {n} images from "
            f"{start} gives {sizes.tolist()} (lower min_fraction or add images)"
        )
    return sizes


def fit_inverse_n(sizes, values) -> tuple[float, float]:
    """Least-squares line value = intercept + slope / N: (intercept, slope), by the centred
    normal equations in float64 (the intercept is the extrapolation to 1/N = 0)."""
    t = 1.0 / np.asarray(sizes, np.float64)
    v = np.asarray(values, np.float64)
    if t.shape != v.shape or len(t) < 2 or np.ptp(t) == 0:
        raise ValueError("the fit needs at least 2 distinct sizes, one value each")
    dt = t - t.mean()
    slope = float(dt @ (v - v.mean()) / (dt @ dt))
    return float(v.mean() - slope * t.mean()), slope


def fd_infinity(x, target, sizes, seed: int = 0) -> FDInfinity:
    """FD∞ of the generated features x (n x D) against `target`: the real features (m x D)
    or their statistics (mu (D,), sigma (D x D)), the latter when a target is given only as
    statistics.

    For each N in `sizes` (from `fd_infinity_sizes`), a random subset of N rows of x (a fresh
    permutation from numpy's default_rng(seed) per size, as Chong & Forsyth shuffle before each
    size) gives FID_N: `fid_from_features` against target features (exact also for N <= D), or
    `frechet_distance` of the subset's statistics against the target statistics. Then the line
    FID_N = FD∞ + slope / N (`fit_inverse_n`). Against statistics, subsets of N <= D rows use the
    feature-space form with the target's factor computed once (as `fid_from_features` does for
    two feature sets), equal to `frechet_distance` of the subset's statistics.
    Raises ValueError for a size above n or below 2.
    """
    x = _matrix(x, "x", min_rows=2)
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.min() < 2 or sizes.max() > len(x):
        raise ValueError(f"subset sizes must lie in [2, {len(x)}], got {sizes.tolist()}")
    if isinstance(target, tuple):
        mu, sigma = check_statistics(*target, name="target statistics")
        # The target's factor F (sigma = F F^T, rounding-level directions dropped) once: a
        # subset of n <= D rows then has tr sqrt(S sigma) = nuclear norm of Xc^T F / sqrt(n - 1)
        # (an n x r product), exact for its singular covariance and no D x D eigensolver a size.
        factor = _psd_factor(torch.from_numpy(sigma))
        trace_target = float(np.trace(sigma))

        def fid_of(rows):
            if len(rows) > rows.shape[1]:
                return frechet_distance(*feature_statistics(rows), mu, sigma)
            centred = rows - rows.mean(axis=0)
            subset_factor = torch.from_numpy(centred.T / math.sqrt(len(rows) - 1))
            diff = rows.mean(axis=0) - mu
            trace_subset = float((centred * centred).sum()) / (len(rows) - 1)
            traces = trace_subset + trace_target
            tr_sqrt = _nuclear_norm_of_product(subset_factor, factor)
            return _nonnegative_fid(float(diff @ diff) + traces - 2.0 * tr_sqrt, traces)
    else:
        y = _matrix(target, "target", min_rows=2)

        def fid_of(rows):
            return fid_from_features(rows, y)

    rng = np.random.default_rng(seed)
    subsets = tuple(np.sort(rng.permutation(len(x))[:size]) for size in sizes)
    fids = np.array([fid_of(x[rows]) for rows in subsets])
    intercept, slope = fit_inverse_n(sizes, fids)
    return FDInfinity(sizes=sizes, fids=fids, subsets=subsets, fd_infinity=intercept, slope=slope)
