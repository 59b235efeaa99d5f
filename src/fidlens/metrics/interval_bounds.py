"""From resampled metric values to confidence intervals, without torch: the rescaled basic
interval of subsampling (`subsample_interval`), per metric (`metric_intervals`) and for the
paired difference of two sources (`difference_intervals`). The method and its checks are in
`fidlens.metrics.intervals`' docstring; that module re-exports every name here.

Split from it so that the jobs which only combine saved draws (metric differences) start
without importing torch (about a second per process).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEVEL = 0.95
# The range of each metric, to which its interval is clipped.
METRIC_RANGES = {
    "fid": (0.0, math.inf),
    "kid_mean": (-math.inf, math.inf),
    "precision": (0.0, 1.0),
    "recall": (0.0, 1.0),
    "density": (0.0, math.inf),
    "coverage": (0.0, 1.0),
}


def interval_scale(*fractions: float) -> float:
    """c = sqrt(f / (1 - f)), f the mean subset fraction of the sets (see
    `fidlens.metrics.intervals`' docstring)."""
    f = float(np.mean(fractions))
    if not 0.0 < f < 1.0:
        raise ValueError(f"subset fractions must lie strictly between 0 and 1, got {fractions}")
    return math.sqrt(f / (1.0 - f))


def subsample_interval(
    estimate: float,
    draws,
    scale: float,
    level: float = DEFAULT_LEVEL,
    extra_variance: float = 0.0,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> tuple[float, float]:
    """Centred, rescaled basic interval for E[T_n] (`fidlens.metrics.intervals`' docstring):
    [T_n - s c (q_hi - mean), T_n - s c (q_lo - mean)], clipped to `bounds`.

    estimate: T_n on the full sets; draws: (R,) T_m on the subsets; scale: c; level: coverage
    (0.95: quantiles 0.025 and 0.975, numpy's linear interpolation). `extra_variance`: noise
    of the estimate that the draws do not hold (KID's random subsets), added to the rescaled
    variance of the draws by widening both sides by s = sqrt(1 + extra / (c^2 var(draws))).
    Raises ValueError for a level outside (0, 1) or non-finite draws.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if draws.ndim != 1 or len(draws) < 2 or not np.isfinite(draws).all():
        raise ValueError("draws must be at least 2 finite values")
    centre = float(draws.mean())
    q_lo, q_hi = np.quantile(draws, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    variance = scale**2 * float(draws.var())
    widen = math.sqrt(1.0 + extra_variance / variance) if variance > 0 else 1.0
    lo = estimate - widen * scale * (float(q_hi) - centre)
    hi = estimate - widen * scale * (float(q_lo) - centre)
    return float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))


def kid_extra_variance(kid_std: float | None, kid_subsets: int) -> float:
    """Variance the mean over `kid_subsets` random KID subsets adds given the data (each subset
    an independent draw): kid_std^2 / kid_subsets; 0 for one estimate on the whole sets."""
    if kid_std is None or kid_subsets <= 1:
        return 0.0
    return float(kid_std) ** 2 / int(kid_subsets)


def metric_intervals(
    values: dict,
    draws: dict[str, np.ndarray],
    scale: float,
    level: float = DEFAULT_LEVEL,
    extra_variance: dict[str, float] | None = None,
) -> dict[str, list[float]]:
    """{name + "_ci": [lo, hi]} for every metric in `draws` whose full-set value in `values` is
    a number (`subsample_interval`, clipped to METRIC_RANGES); `extra_variance` per name."""
    extra = extra_variance or {}
    out = {}
    for name, sample in draws.items():
        if values.get(name) is None:
            continue
        lo, hi = subsample_interval(values[name], sample, scale, level, extra.get(name, 0.0),
                                    METRIC_RANGES.get(name, (-math.inf, math.inf)))  # fmt: skip
        out[f"{name}_ci"] = [lo, hi]
    return out


def difference_intervals(
    values_a: dict,
    values_b: dict,
    draws_a: dict[str, np.ndarray],
    draws_b: dict[str, np.ndarray],
    scale: float,
    level: float = DEFAULT_LEVEL,
    extra_variance: dict[str, float] | None = None,
) -> dict[str, float | list[float]]:
    """The paired interval of metric(A) - metric(B) for every metric both sides hold:
    {name: value_a - value_b, name + "_ci": [lo, hi]}.

    The draws of A and B must come from the same target subsets in each resample (their
    sources subsampled independently): the interval then leaves out the target's own noise,
    which both share (`subsample_interval` on draws_a - draws_b, clipped to the range of a
    difference: [-1, 1] for P, R and C)."""
    extra = extra_variance or {}
    out: dict[str, float | list[float]] = {}
    for name in draws_a:
        if name not in draws_b or values_a.get(name) is None or values_b.get(name) is None:
            continue
        difference = float(values_a[name]) - float(values_b[name])
        sample = np.asarray(draws_a[name]) - np.asarray(draws_b[name])
        low, high = METRIC_RANGES.get(name, (-math.inf, math.inf))
        out[name] = difference
        out[f"{name}_ci"] = list(subsample_interval(difference, sample, scale, level,
                                                    extra.get(name, 0.0),
                                                    (low - high, high - low)))  # fmt: skip
    return out
