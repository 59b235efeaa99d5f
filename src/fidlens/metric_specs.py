"""Names, neighbourhood sizes and sample-size needs of the metrics, without numpy or torch:
the workflow checks at parse time that every comparison is large enough for its metrics."""

from __future__ import annotations

import math

METRICS = ("fid", "kid", "pr", "dc", "cmmd")  # cmmd: CLIP-type extractors only (evaluate.py)
NORMALIZE_MODES = {"none": ("raw",), "l2": ("l2",), "both": ("raw", "l2")}
K_PR = 3  # Kynkäänniemi et al. 2019
K_DC = 5  # Naeem et al. 2020

# Keys of each metric in the result, in the order they are reported.
METRIC_KEYS = {
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
    "cmmd": ("cmmd",),
}
# Fewest samples each metric needs per set (source, target): k-NN radii need k + 1 points.
MIN_SAMPLES = {"fid": (2, 2), "kid": (2, 2), "pr": (K_PR + 1, K_PR + 1), "dc": (2, K_DC + 1),
               "cmmd": (2, 2)}  # fmt: skip


def too_small(metrics, n_source: int, n_target: int) -> list[str]:
    """One message per asked-for metric that these set sizes cannot give (empty if all can)."""
    problems = []
    for name in metrics:
        need_source, need_target = MIN_SAMPLES[name]
        if n_source < need_source or n_target < need_target:
            problems.append(
                f"{name} needs at least {need_source} source and {need_target} target images"
            )
    return problems


# Confidence intervals (fidlens.metrics.intervals): each set's rows fall into at most this
# many random groups of equal size (+-1), and a resample keeps whole groups (so FID can sum
# per-group sums of outer products instead of recomputing covariances).
INTERVAL_GROUPS = 64


def interval_group_counts(n: int, fraction: float, max_groups: int = INTERVAL_GROUPS) -> dict:
    """How a set of n rows is subsampled for the intervals, without numpy (the workflow checks
    the sizes at parse time): `groups` groups, `large` of them with one row more than the
    others (`group_size`); each resample keeps `take_large` large and `take_small` small ones,
    `size` rows in all, the same in every resample. Raises ValueError when the fraction gives
    no subset, or the whole set."""
    n, fraction = int(n), float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"subset_fraction must lie strictly between 0 and 1, got {fraction}")
    groups = min(n, int(max_groups))
    if groups < 2:
        raise ValueError(f"subsampling needs at least 2 rows, got {n}")
    group_size, large = divmod(n, groups)
    take_large = math.floor(fraction * large + 0.5)
    take_small = math.floor(fraction * (groups - large) + 0.5)
    size = take_large * (group_size + 1) + take_small * group_size
    if not 0 < size < n:
        raise ValueError(
            f"subset_fraction {fraction} of {n} rows ({groups} groups) keeps {size} rows; "
            "a subsample needs at least one row and fewer than all"
        )
    return {
        "groups": groups,
        "group_size": group_size,
        "large": large,
        "take_large": take_large,
        "take_small": take_small,
        "size": size,
    }


def interval_subset_size(n: int, fraction: float, max_groups: int = INTERVAL_GROUPS) -> int:
    """Rows of each subsample of a set of n rows (see interval_group_counts)."""
    return interval_group_counts(n, fraction, max_groups)["size"]
