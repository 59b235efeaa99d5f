"""Metrics between two feature caches: read, validate, compute, record provenance.

The I/O edge around `fidlens.metrics`: it reads HDF5 files (ours or any file with a 2-D
`features` dataset), refuses inputs that would give meaningless numbers, and returns a
JSON-ready dict. Source is the generated set, target the real one.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from fidlens import metrics as m
from fidlens.cache import FeatureCache, read_features
from fidlens.metric_specs import K_DC, K_PR, METRICS, MIN_SAMPLES, NORMALIZE_MODES
from fidlens.metrics.cmmd import CMMD_METHOD, cmmd
from fidlens.provenance import RANDOM_INIT, package_versions
from fidlens.trust_plan import cmmd_applies
from fidlens.weight_specs import random_seed_from_origin

UNKNOWN = "unknown"


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


@dataclasses.dataclass(frozen=True)
class IntervalSettings:
    """Confidence intervals by subsampling (fidlens.metrics.intervals): resamples, level,
    seed of the subsets, and the share of each set a subsample keeps."""

    resamples: int = 200
    level: float = 0.95
    seed: int = 0
    subset_fraction: float = 0.5

    def plan(self, n: int, role: str, name: str):
        """The subsets of one set (an intervals.SubsamplePlan); `role` (source/target) and
        `name` pick its random stream, so every comparison against one target subsamples it
        the same way."""
        return _intervals().subsample_plan(n, self.resamples, self.subset_fraction, self.seed,
                                           f"{role}:{name}")  # fmt: skip


def _intervals():
    """fidlens.metrics.intervals, imported when first needed (it loads torch)."""
    from fidlens.metrics import intervals

    return intervals


# How KID was computed (`kid_method` in the result).
KID_SUBSETS = "subsets"  # mean and std over random subsets
KID_WHOLE_SETS = "whole sets"  # one estimate on all samples; kid_std None


def feature_metrics(
    source: np.ndarray,
    target: np.ndarray,
    metrics=METRICS,
    kid_indices: tuple[np.ndarray, np.ndarray] | str | None = None,
) -> dict[str, float | None]:
    """The asked-for metrics of one pair of feature arrays (no I/O).

    KID: mean and std over the subsets `kid_indices` (from `m.kid_subset_indices`), or, when
    `kid_indices` is KID_WHOLE_SETS, one estimate on the whole sets with kid_std None (not
    defined). None: the defaults of `compute_metrics` (100 subsets of 1000, seed 0; the whole
    sets when neither has more than 1000 samples)."""
    metrics = parse_metrics(metrics)
    result: dict[str, float | None] = {}
    if "fid" in metrics:
        result["fid"] = m.fid_from_features(source, target)
    if "kid" in metrics:
        if kid_indices is None:
            _, kid_indices = _kid_plan(len(source), len(target), 100, 1000, 0)
        if isinstance(kid_indices, str):
            if kid_indices != KID_WHOLE_SETS:
                raise ValueError(f"kid_indices must be index arrays or {KID_WHOLE_SETS!r}")
            result["kid_mean"], result["kid_std"] = m.kid_whole_sets(source, target), None
        else:
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
    allow_mixed: bool = False,
    layer: str = "pool",
    intervals: IntervalSettings | None = None,
    device: str = "auto",
    progress: bool = False,
) -> dict:
    """Metrics of the source (generated) cache against the target (real) cache.

    Returns {"raw": {...}, "l2": {...}, "n_source", "n_target", "extractor", "weights", ...}:
    one block per normalisation (`normalize`: none -> raw, l2 -> l2, both), each holding only
    the asked-for metrics, plus the settings and the provenance of both caches.

    Caches made with different preprocessing or weights are an error unless `allow_mixed`;
    then the shared `preprocess` / `weights` say "mixed" and source_* / target_* keep both.
    Caches without those attributes (other tools' files) count as unknown, never as mixed.

    layer: "pool" reads each cache's `features`, "logits" its classifier `logits` (an error
    for a cache without); the result's `layer` says which, and `feature_layer` is "logits".

    intervals: when given, every metric gets its confidence interval (`<name>_ci`: [lo, hi] in
    each block; `interval_*` settings beside) from subsamples of both sets
    (fidlens.metrics.intervals), and the per-resample values are returned under
    "interval_draws" ({block: {name: [R values]}}; compute_metrics.py writes them to a CSV).
    The subsets follow from the seed and the sets' names, so every comparison against one
    target uses the same target subsets. `device`: where the intervals' products run (auto:
    CUDA when present). Raises ValueError for subsets too small for a metric.
    """
    metrics = parse_metrics(metrics)
    if normalize not in NORMALIZE_MODES:
        raise ValueError(
            f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
        )
    if kid_subsets < 1 or kid_subset_size < 2:
        raise ValueError("kid_subsets must be >= 1 and kid_subset_size >= 2")
    source_path, target_path = Path(source_path), Path(target_path)
    source, target = _read_layer(source_path, layer), _read_layer(target_path, layer)
    _validate(source, source_path, target, target_path, metrics, allow_mixed)

    x, y = source.features, target.features
    kid_indices = kid_method = None
    if "kid" in metrics:
        kid_method, kid_indices = _kid_plan(len(x), len(y), kid_subsets, kid_subset_size, seed)
    whole_sets = kid_method == KID_WHOLE_SETS  # then no subsets: one estimate, 1 "subset"
    names = (
        _provenance(source, source_path, source_name, "source")
        | _provenance(target, target_path, target_name, "target")
    )
    plans = None
    if intervals is not None:
        iv = _intervals()
        plans = (
            intervals.plan(len(x), "source", names["source_name"]),
            intervals.plan(len(y), "target", names["target_name"]),
        )
        _check_interval_sizes(metrics, *plans)
    result: dict = {}
    draws: dict = {}
    for block in NORMALIZE_MODES[normalize]:
        a, b = (x, y) if block == "raw" else (m.l2_normalize(x), m.l2_normalize(y))
        result[block] = feature_metrics(a, b, metrics, kid_indices)
        if plans is not None:
            draws[block], _ = iv.resample_metrics(a, b, *plans, metrics, K_PR, K_DC, device,
                                                  progress)  # fmt: skip
            extra = {"kid_mean": iv.kid_extra_variance(
                result[block].get("kid_std"), 1 if whole_sets else kid_subsets)}  # fmt: skip
            scale = iv.interval_scale(plans[0].fraction, plans[1].fraction)
            result[block].update(
                iv.metric_intervals(result[block], draws[block], scale, intervals.level, extra)
            )

    if "cmmd" in metrics and cmmd_applies(str(source.attrs.get("extractor_type", ""))):
        # CMMD unit-normalises the embeddings itself: one value serves raw and L2 blocks
        value = cmmd(x, y)
        for block in NORMALIZE_MODES[normalize]:
            result[block]["cmmd"] = value
        result["cmmd_method"] = CMMD_METHOD
    result.update(names)
    if plans is not None:
        result.update(_interval_provenance(intervals, plans))
        result["interval_draws"] = {
            block: {name: values.tolist() for name, values in found.items()}
            for block, found in draws.items()
        }
    result.update(
        n_source=len(x),
        n_target=len(y),
        feature_dim=int(x.shape[1]),
        metrics=list(metrics),
        normalize=normalize,
        seed=seed,
        kid_method=kid_method,
        kid_subsets=1 if whole_sets else kid_subsets,
        kid_subset_size=None if whole_sets else min(kid_subset_size, len(x), len(y)),
        k_precision_recall=K_PR,
        k_density_coverage=K_DC,
        extractor=_shared(source, target, "extractor"),
        feature_layer=_shared(source, target, "feature_layer") if layer == POOL else LOGITS,
        layer=layer,
        preprocess=_shared(source, target, "preprocess"),
        weights=_combined_weights(source, target),
        allow_mixed=allow_mixed,
        package_versions=package_versions(),
    )
    return result


# Which array of a cache the metrics read (an instance's `layer` setting): `pool`, its
# `features` (pool3 for Inception, the pooled or embedding layer of the others), or `logits`,
# the classifier's outputs of the same images (classifiers cache both, so switching re-extracts
# nothing).
POOL, LOGITS = "pool", "logits"
LAYERS = (POOL, LOGITS)


def _read_layer(path: Path, layer: str) -> FeatureCache:
    """A cache with `features` set to the array the metrics read (its logits for `logits`)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if layer == POOL:
        return read_features(path)
    cache = read_features(path, with_logits=True)
    if cache.logits is None:
        made_by = cache.attrs.get("extractor_type", cache.attrs.get("extractor", "its extractor"))
        raise ValueError(
            f"{path} has no 'logits' ({made_by} is not a classifier): layer logits needs an "
            "extractor with classifier logits (inception, mobilenet_v2_imagenet, resnet50, vgg16)"
        )
    return dataclasses.replace(cache, features=cache.logits, logits=None)


def _kid_plan(n_x: int, n_y: int, subsets: int, subset_size: int, seed: int) -> tuple:
    """(kid_method, kid_indices) for `feature_metrics`. One set of subsets serves raw and
    L2-normalised features alike. When neither set is larger than the subset size, every
    subset would hold the whole sets and the estimates would agree (a std of ~1e-16 that
    means nothing): one estimate on the whole sets instead, with a warning in the log."""
    if not m.kid_uses_whole_sets(n_x, n_y, subset_size):
        return KID_SUBSETS, m.kid_subset_indices(n_x, n_y, subsets, subset_size, seed)
    warnings.warn(
        f"KID: neither set ({n_x} source, {n_y} target samples) is larger than the subset "
        f"size {subset_size}, so subsets would all hold the whole sets; KID is one unbiased "
        "estimate on the whole sets and kid_std is not defined (null)",
        stacklevel=3,
    )
    return KID_WHOLE_SETS, KID_WHOLE_SETS


def _interval_provenance(settings: IntervalSettings, plans) -> dict:
    """How the intervals were made (the `interval_*` keys of the metric JSON)."""
    iv = _intervals()
    source, target = plans
    return {
        "interval_method": iv.INTERVAL_METHOD,
        "interval_resamples": settings.resamples,
        "interval_level": settings.level,
        "interval_seed": settings.seed,
        "interval_subset_fraction": settings.subset_fraction,
        "interval_subset_size": [source.size, target.size],
        "interval_groups": [source.groups, target.groups],
        "interval_fractions": [source.fraction, target.fraction],
        "interval_scale": iv.interval_scale(source.fraction, target.fraction),
        "interval_source_plan": source.digest(),
        "interval_target_plan": target.digest(),
    }


def _check_interval_sizes(metrics, source_plan, target_plan) -> None:
    """Subsets large enough for every metric (as MIN_SAMPLES asks of whole sets)."""
    for name in metrics:
        need_source, need_target = MIN_SAMPLES[name]
        if source_plan.size < need_source or target_plan.size < need_target:
            raise ValueError(
                f"intervals: {name} needs subsets of at least {need_source} source and "
                f"{need_target} target samples, but subset_fraction "
                f"{source_plan.size / source_plan.n:.3g} keeps {source_plan.size} of "
                f"{source_plan.n} and {target_plan.size} of {target_plan.n}; raise "
                "metrics.intervals.subset_fraction or turn the intervals off"
            )


def _validate(source, source_path, target, target_path, metrics, allow_mixed=False) -> None:
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
    # The network (extractor type) must be the same; two instances of one type differ in
    # preprocessing or weights, which the settings check below reports (or allow_mixed allows).
    made_by = tuple(
        side.attrs.get("extractor_type", side.attrs.get("extractor")) for side in (source, target)
    )
    if None not in made_by and made_by[0] != made_by[1]:
        raise ValueError(
            f"caches come from different extractors: {source_path} from {made_by[0]!r}, "
            f"{target_path} from {made_by[1]!r}; compare features of one extractor"
        )
    conflicts = _setting_conflicts(source, source_path, target, target_path)
    if conflicts and not allow_mixed:
        raise ValueError(
            "caches were made with different settings, so their numbers are not comparable:\n"
            + "".join(f"  - {conflict}\n" for conflict in conflicts)
            + "To compare them anyway (the result then says 'mixed' and records both sides), "
            "pass --allow-mixed to compute_metrics.py, allow_mixed=True to compute_metrics, "
            "or set metrics.allow_mixed: true in the workflow config."
        )


def _setting_conflicts(source, source_path, target, target_path) -> list[str]:
    """Preprocessing and weights that differ between two caches, each naming both files and
    both settings. A setting a cache does not record (another tool's file) conflicts with none.
    """
    conflicts = []
    for what, describe in (("preprocessing", _preprocess_of), ("weights", _weights_identity)):
        ours, theirs = describe(source), describe(target)
        if ours is not None and theirs is not None and ours != theirs:
            conflicts.append(f"{what}: {source_path} has {ours}, {target_path} has {theirs}")
    return conflicts


def _preprocess_of(cache: FeatureCache) -> str | None:
    value = cache.attrs.get("preprocess")
    return None if value is None else f"preprocess {str(value)!r}"


def _weights_identity(cache: FeatureCache) -> str | None:
    """What identifies a cache's weights: the file's sha256, or random init and its seed."""
    attrs = cache.attrs
    if _weights(cache) == RANDOM_INIT:
        origin = str(attrs.get("weights_origin", UNKNOWN))
        seed = random_seed_from_origin(origin)
        return f"random-init weights ({f'seed {seed}' if seed is not None else origin})"
    sha256 = attrs.get("weights_sha256")
    return None if sha256 is None else f"weights sha256 {sha256}"


def _weights(cache: FeatureCache) -> str:
    attrs = cache.attrs
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


def _combined_weights(source: FeatureCache, target: FeatureCache) -> str:
    """random-init if either side is (the numbers mean little then); pretrained if both are
    and their files are the same (or not recorded); mixed for two different pretrained files."""
    labels = _weights(source), _weights(target)
    if RANDOM_INIT in labels:
        return RANDOM_INIT
    if labels != ("pretrained", "pretrained"):
        return UNKNOWN
    identities = _weights_identity(source), _weights_identity(target)
    differ = None not in identities and identities[0] != identities[1]
    return "mixed" if differ else "pretrained"


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
        f"{side}_weights_origin": str(attrs.get("weights_origin", UNKNOWN)),
    }
