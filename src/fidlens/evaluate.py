"""Metrics between two feature caches: read, validate, compute, record provenance.

The I/O edge around `fidlens.metrics`: it reads HDF5 files (ours or any file with a 2-D
`features` dataset), refuses inputs that would give meaningless numbers, and returns a
JSON-ready dict. Source is the generated set, target the real one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fidlens import metrics as m
from fidlens.cache import FeatureCache, read_features
from fidlens.extractors.base import RANDOM_INIT
from fidlens.provenance import package_versions

METRICS = ("fid", "kid", "pr", "dc")
NORMALIZE_MODES = {"none": ("raw",), "l2": ("l2",), "both": ("raw", "l2")}
K_PR = 3  # Kynkäänniemi et al. 2019
K_DC = 5  # Naeem et al. 2020
UNKNOWN = "unknown"

# Keys of each metric in the result, in the order they are reported.
METRIC_KEYS = {
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
}
# Fewest samples each metric needs per set (source, target): k-NN radii need k + 1 points.
MIN_SAMPLES = {"fid": (2, 2), "kid": (2, 2), "pr": (K_PR + 1, K_PR + 1), "dc": (2, K_DC + 1)}


def parse_metrics(metrics) -> tuple[str, ...]:
    """Metric names from a sequence or a comma-separated string, in canonical order."""
    if isinstance(metrics, str):
        metrics = [name for name in metrics.split(",") if name.strip()]
    names = [name.strip().lower() for name in metrics]
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(
            f"unknown metric name(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(METRICS)}"
        )
    if not names:
        raise ValueError(f"no metric asked for; choose from {', '.join(METRICS)}")
    return tuple(name for name in METRICS if name in names)


def feature_metrics(
    source: np.ndarray,
    target: np.ndarray,
    metrics=METRICS,
    kid_indices: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """The asked-for metrics of one pair of feature arrays (no I/O)."""
    metrics = parse_metrics(metrics)
    result: dict[str, float] = {}
    if "fid" in metrics:
        result["fid"] = m.fid_from_features(source, target)
    if "kid" in metrics:
        if kid_indices is None:
            kid_indices = m.kid_subset_indices(len(source), len(target))
        result["kid_mean"], result["kid_std"] = m.kid(source, target, kid_indices)
    which = tuple(name for name in ("pr", "dc") if name in metrics)
    if which:
        result.update(m.manifold_metrics(source, target, k_pr=K_PR, k_dc=K_DC, which=which))
    return result


def compute_metrics(
    source_path: str | os.PathLike,
    target_path: str | os.PathLike,
    metrics=METRICS,
    normalize: str = "both",
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    source_name: str | None = None,
    target_name: str | None = None,
) -> dict:
    """Metrics of the source (generated) cache against the target (real) cache.

    Returns {"raw": {...}, "l2": {...}, "n_source", "n_target", "extractor", "weights", ...}:
    one block per normalisation (`normalize`: none -> raw, l2 -> l2, both), each holding only
    the asked-for metrics, plus the settings and the provenance of both caches.
    """
    metrics = parse_metrics(metrics)
    if normalize not in NORMALIZE_MODES:
        raise ValueError(
            f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
        )
    if kid_subsets < 1 or kid_subset_size < 2:
        raise ValueError("kid_subsets must be >= 1 and kid_subset_size >= 2")
    source_path, target_path = Path(source_path), Path(target_path)
    source, target = read_features(source_path), read_features(target_path)
    _validate(source, source_path, target, target_path, metrics)

    x, y = source.features, target.features
    kid_indices = None
    if "kid" in metrics:
        # One set of subsets serves raw and L2-normalised features alike.
        kid_indices = m.kid_subset_indices(len(x), len(y), kid_subsets, kid_subset_size, seed)
    result: dict = {}
    for block in NORMALIZE_MODES[normalize]:
        a, b = (x, y) if block == "raw" else (m.l2_normalize(x), m.l2_normalize(y))
        result[block] = feature_metrics(a, b, metrics, kid_indices)

    result.update(
        _provenance(source, source_path, source_name, "source")
        | _provenance(target, target_path, target_name, "target")
    )
    result.update(
        n_source=len(x),
        n_target=len(y),
        feature_dim=int(x.shape[1]),
        metrics=list(metrics),
        normalize=normalize,
        seed=seed,
        kid_subsets=kid_subsets,
        kid_subset_size=min(kid_subset_size, len(x), len(y)),
        k_precision_recall=K_PR,
        k_density_coverage=K_DC,
        extractor=_shared(source, target, "extractor"),
        feature_layer=_shared(source, target, "feature_layer"),
        preprocess=_shared(source, target, "preprocess"),
        weights=_combined_weights(_weights(source), _weights(target)),
        package_versions=package_versions(),
    )
    return result


def _validate(source, source_path, target, target_path, metrics) -> None:
    for cache, path, side in ((source, source_path, 0), (target, target_path, 1)):
        features = cache.features
        if features.shape[1] == 0:
            raise ValueError(f"{path}: 'features' has no columns")
        if not np.issubdtype(features.dtype, np.number):
            raise ValueError(f"{path}: 'features' is not numeric (dtype {features.dtype})")
        bad = int(np.count_nonzero(~np.isfinite(features).all(axis=1)))
        if bad:
            raise ValueError(
                f"{path}: {bad} of {len(features)} feature rows contain NaN or Inf values"
            )
        for name in metrics:
            need = MIN_SAMPLES[name][side]
            if len(features) < need:
                raise ValueError(
                    f"{path}: {name} needs at least {need} samples, found {len(features)}"
                )
    if source.features.shape[1] != target.features.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {source_path} has {source.features.shape[1]}, "
            f"{target_path} has {target.features.shape[1]}"
        )
    made_by = source.attrs.get("extractor"), target.attrs.get("extractor")
    if None not in made_by and made_by[0] != made_by[1]:
        raise ValueError(
            f"caches come from different extractors: {source_path} from {made_by[0]!r}, "
            f"{target_path} from {made_by[1]!r}; compare features of one extractor"
        )


def _weights(cache: FeatureCache) -> str:
    attrs = cache.attrs
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


def _combined_weights(source: str, target: str) -> str:
    """random-init if either side is (the numbers mean little then), pretrained if both are."""
    if RANDOM_INIT in (source, target):
        return RANDOM_INIT
    return "pretrained" if source == target == "pretrained" else UNKNOWN


def _shared(source: FeatureCache, target: FeatureCache, key: str) -> str:
    values = {str(c.attrs[key]) for c in (source, target) if key in c.attrs}
    if not values:
        return UNKNOWN
    return values.pop() if len(values) == 1 else "mixed"


def _provenance(cache: FeatureCache, path: Path, name: str | None, side: str) -> dict:
    attrs = cache.attrs
    return {
        f"{side}_path": str(path),
        f"{side}_name": name or str(attrs.get("dataset") or path.stem),
        f"{side}_extractor": str(attrs.get("extractor", UNKNOWN)),
        f"{side}_feature_layer": str(attrs.get("feature_layer", UNKNOWN)),
        f"{side}_preprocess": str(attrs.get("preprocess", UNKNOWN)),
        f"{side}_weights": _weights(cache),
        f"{side}_weights_sha256": str(attrs.get("weights_sha256", UNKNOWN)),
    }
