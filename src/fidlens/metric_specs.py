"""Names, neighbourhood sizes and sample-size needs of the metrics, without numpy or torch:
the workflow checks at parse time that every comparison is large enough for its metrics."""

from __future__ import annotations

METRICS = ("fid", "kid", "pr", "dc")
NORMALIZE_MODES = {"none": ("raw",), "l2": ("l2",), "both": ("raw", "l2")}
K_PR = 3  # Kynkäänniemi et al. 2019
K_DC = 5  # Naeem et al. 2020

# Keys of each metric in the result, in the order they are reported.
METRIC_KEYS = {
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
}
# Fewest samples each metric needs per set (source, target): k-NN radii need k + 1 points.
MIN_SAMPLES = {"fid": (2, 2), "kid": (2, 2), "pr": (K_PR + 1, K_PR + 1), "dc": (2, K_DC + 1)}


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
