"""Metrics between two feature caches: read, validate, compute, record provenance.

The I/O edge around `fidlens.metrics`: it reads HDF5 files (ours or any file with a 2-D
`features` dataset), refuses inputs that would give meaningless numbers, and returns a
JSON-ready dict. Source is the generated set, target the real one.

Per-dataset statistics files (fidlens.statistics) may stand in for what each cache would
give: FID from their mean and covariance, precision/recall and density/coverage with their
k-NN radii; the values are bit-for-bit those computed from the caches. FID alone from two
statistics files reads only the caches' headers. Nothing here imports torch unless a metric
that runs on it (KID, k-NN, CMMD, intervals) is asked for.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from fidlens import metrics as m
from fidlens.cache import CorruptCacheError, FeatureCache, attr_value, read_features
from fidlens.metric_specs import K_DC, K_PR, METRICS, MIN_SAMPLES, NORMALIZE_MODES
from fidlens.provenance import RANDOM_INIT, package_versions
from fidlens.statistics import (
    DatasetStatistics,
    StatisticsBlock,
    array_sha256,
    check_statistics_match,
    read_statistics,
)
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


# Where a block's FID / PR / DC came from (`statistics_from` in the result).
FROM_STATISTICS = "statistics files"
FROM_CACHES = "caches"
FROM_CACHES_N_LE_D = "caches (N <= D: the exact feature-space form)"


def feature_metrics(
    source: np.ndarray | None,
    target: np.ndarray | None,
    metrics=METRICS,
    kid_indices: tuple[np.ndarray, np.ndarray] | str | None = None,
    statistics: tuple[StatisticsBlock, StatisticsBlock] | None = None,
    sources: dict | None = None,
) -> dict[str, float | None]:
    """The asked-for metrics of one pair of feature arrays (no I/O).

    KID: mean and std over the subsets `kid_indices` (from `m.kid_subset_indices`), or, when
    `kid_indices` is KID_WHOLE_SETS, one estimate on the whole sets with kid_std None (not
    defined). None: the defaults of `compute_metrics` (100 subsets of 1000, seed 0; the whole
    sets when neither has more than 1000 samples).

    statistics: (source, target) blocks of per-dataset statistics (fidlens.statistics) of
    these very arrays: FID from their means and covariances when both have them and
    min(N) - 1 >= D (else the feature-space form needs the features), PR/DC with the radii
    each holds; same values, bit for bit. With FID from statistics the arrays may be None.
    `sources`, when given, receives {metric: where its inputs came from} for fid, pr, dc."""
    metrics = parse_metrics(metrics)
    result: dict[str, float | None] = {}
    sources = {} if sources is None else sources
    blocks = statistics or (StatisticsBlock(), StatisticsBlock())
    if "fid" in metrics:
        if _fid_from_statistics(*blocks, source, target):
            (a, b) = blocks
            result["fid"] = m.frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
            sources["fid"] = FROM_STATISTICS
        else:
            result["fid"] = m.fid_from_features(source, target)
            dim = source.shape[1]
            small = min(len(source), len(target)) - 1 < dim
            sources["fid"] = FROM_CACHES_N_LE_D if small else FROM_CACHES
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
        fake_ks = (K_PR,) if "pr" in which else ()
        real_ks = tuple(k for k, name in ((K_PR, "pr"), (K_DC, "dc")) if name in which)
        fake = _radii_of(blocks[0], fake_ks)
        real = _radii_of(blocks[1], real_ks)
        result.update(m.manifold_metrics(source, target, k_pr=K_PR, k_dc=K_DC, which=which,
                                         real_sq_radii=real, fake_sq_radii=fake))  # fmt: skip
        for name in which:  # dc needs only the target's radii, pr both sets'
            sources[name] = _radii_from(real is not None, fake is not None and name == "pr",
                                        name == "pr")  # fmt: skip
    return result


def _radii_from(target_given: bool, source_given: bool, needs_source: bool) -> str:
    """Where a k-NN metric's radii came from (`statistics_from`)."""
    if target_given and (source_given or not needs_source):
        return FROM_STATISTICS
    if not target_given and not source_given:
        return FROM_CACHES
    given, other = ("target", "source") if target_given else ("source", "target")
    return f"{given} radii from statistics files, {other} radii from the caches"


def _fid_from_statistics(source: StatisticsBlock, target: StatisticsBlock, x, y) -> bool:
    """Both blocks hold moments and, where the arrays `x`, `y` are at hand, both sets have
    more rows than dimensions (else FID takes the feature-space form, exact for singular
    covariances, which needs the features)."""
    if not (source.has_moments and target.has_moments):
        return False
    return x is None or y is None or min(len(x), len(y)) - 1 >= x.shape[1]


def _radii_of(block: StatisticsBlock, ks: tuple[int, ...]) -> dict | None:
    """The block's squared radii if it has every k in `ks`, else None (computed then)."""
    if ks and all(k in block.sq_radii for k in ks):
        return {k: block.sq_radii[k] for k in ks}
    return None


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
    source_statistics: str | os.PathLike | None = None,
    target_statistics: str | os.PathLike | None = None,
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

    source_statistics / target_statistics: per-dataset statistics files of these caches
    (fidlens.statistics; checked to belong to them: layer, N x D and the cache's sha256, an
    error naming both files otherwise). FID of a block comes from their mean and covariance
    where both files hold them, PR/DC use the radii they hold; the values equal those from
    the caches bit for bit. `statistics_from` ({block: {metric: where}}) and
    `source_statistics` / `target_statistics` in the result say what was used. With FID
    alone (no intervals) from two files, only the caches' headers are read.

    intervals: when given, every metric gets its confidence interval (`<name>_ci`: [lo, hi] in
    each block; `interval_*` settings beside) from subsamples of both sets
    (fidlens.metrics.intervals), and the per-resample values are returned under
    "interval_draws" ({block: {name: [R values]}}; compute_metrics.py writes them to a CSV).
    The subsets follow from the seed and the sets' names, so every comparison against one
    target uses the same target subsets (the subsamples' statistics are their own, never
    the files'). `device`: where the intervals' products run (auto: CUDA when present).
    Raises ValueError for subsets too small for a metric.
    """
    metrics = parse_metrics(metrics)
    if normalize not in NORMALIZE_MODES:
        raise ValueError(
            f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
        )
    if kid_subsets < 1 or kid_subset_size < 2:
        raise ValueError("kid_subsets must be >= 1 and kid_subset_size >= 2")
    source_path, target_path = Path(source_path), Path(target_path)
    blocks_asked = NORMALIZE_MODES[normalize]
    stats = (_maybe_statistics(source_statistics), _maybe_statistics(target_statistics))
    if _headers_suffice(metrics, blocks_asked, intervals, *stats):
        source, target = _read_header(source_path, layer), _read_header(target_path, layer)
    else:
        source, target = _read_layer(source_path, layer), _read_layer(target_path, layer)
    _validate(source, source_path, target, target_path, metrics, allow_mixed)
    for found, stats_path, cache, path in (
        (stats[0], source_statistics, source, source_path),
        (stats[1], target_statistics, target, target_path),
    ):
        if found is not None:
            check_statistics_match(found, stats_path, path, layer, cache.features.shape,
                                   _cache_sha256(cache, path, layer))  # fmt: skip

    x, y = source.features, target.features
    n_x, n_y, dim = len(x), len(y), int(x.shape[1])
    kid_indices = kid_method = None
    if "kid" in metrics:
        kid_method, kid_indices = _kid_plan(n_x, n_y, kid_subsets, kid_subset_size, seed)
    whole_sets = kid_method == KID_WHOLE_SETS  # then no subsets: one estimate, 1 "subset"
    names = (
        _provenance(source, source_path, source_name, "source")
        | _provenance(target, target_path, target_name, "target")
    )
    plans = None
    if intervals is not None:
        iv = _intervals()
        plans = (
            intervals.plan(n_x, "source", names["source_name"]),
            intervals.plan(n_y, "target", names["target_name"]),
        )
        _check_interval_sizes(metrics, *plans)
    result: dict = {}
    draws: dict = {}
    used: dict = {}
    for block in blocks_asked:
        if isinstance(x, _Shape):  # headers only: FID from the statistics files
            a = b = None
        else:
            a, b = (x, y) if block == "raw" else (m.l2_normalize(x), m.l2_normalize(y))
        pair = tuple(StatisticsBlock() if s is None else s.block(block) for s in stats)
        used[block] = {}
        result[block] = feature_metrics(a, b, metrics, kid_indices, pair, used[block])
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
        from fidlens.metrics.cmmd import CMMD_METHOD, cmmd  # torch: only when asked for

        # CMMD unit-normalises the embeddings itself: one value serves raw and L2 blocks
        value = cmmd(x, y)
        for block in blocks_asked:
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
        n_source=n_x,
        n_target=n_y,
        feature_dim=dim,
        metrics=list(metrics),
        normalize=normalize,
        seed=seed,
        kid_method=kid_method,
        kid_subsets=1 if whole_sets else kid_subsets,
        kid_subset_size=None if whole_sets else min(kid_subset_size, n_x, n_y),
        k_precision_recall=K_PR,
        k_density_coverage=K_DC,
        extractor=_shared(source, target, "extractor"),
        feature_layer=_shared(source, target, "feature_layer") if layer == POOL else LOGITS,
        layer=layer,
        preprocess=_shared(source, target, "preprocess"),
        weights=_combined_weights(source, target),
        allow_mixed=allow_mixed,
        source_statistics=None if source_statistics is None else str(source_statistics),
        target_statistics=None if target_statistics is None else str(target_statistics),
        statistics_from={block: found for block, found in used.items() if found},
        package_versions=package_versions(),
    )
    return result


def _maybe_statistics(path) -> DatasetStatistics | None:
    return None if path is None else read_statistics(path)


def _headers_suffice(metrics, blocks, intervals, source, target) -> bool:
    """FID is all that is asked, without intervals, and both statistics files hold the
    moments of every block, of sets with more rows than dimensions: then the caches'
    values are not needed (their headers are checked against the files)."""
    if metrics != ("fid",) or intervals is not None or source is None or target is None:
        return False
    if min(source.n, target.n) - 1 < source.dim:
        return False
    return all(s.block(block).has_moments for s in (source, target) for block in blocks)


@dataclasses.dataclass(frozen=True)
class _Shape:
    """Shape and dtype of a cache array whose values were not read (`_read_header`)."""

    shape: tuple[int, int]
    dtype: np.dtype
    sha256: str | None

    def __len__(self) -> int:
        return self.shape[0]


def _read_header(path: Path, layer: str) -> FeatureCache:
    """A cache's attributes, with `features` a _Shape of the array `layer` reads (its shape,
    dtype and stored sha256): the checks of `_read_layer` without reading the values."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise CorruptCacheError(f"{path} is not a readable HDF5 file ({error})") from error
    with handle:
        if "features" not in handle:
            raise ValueError(f"{path} has no 'features' dataset (found: {sorted(handle)})")
        attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
        name = "features" if layer == POOL else "logits"
        if name not in handle:
            made_by = attrs.get("extractor_type", attrs.get("extractor", "its extractor"))
            raise ValueError(
                f"{path} has no 'logits' ({made_by} is not a classifier): layer logits needs "
                "an extractor with classifier logits"
            )
        array = handle[name]
        if array.ndim != 2:
            raise ValueError(f"{path}: {name!r} must be 2-D (N x D), got shape {array.shape}")
        stored = array.attrs.get("sha256")
        digest = None if stored is None else attr_value(stored)
        shape = _Shape(tuple(array.shape), array.dtype, digest)
    return FeatureCache(features=shape, attrs=attrs)


def _cache_sha256(cache: FeatureCache, path: Path, layer: str) -> str:
    """The sha256 of the array the metrics read, as the cache stores it (read_features has
    checked it against the content) or, for a cache that stores none, of its content."""
    if isinstance(cache.features, _Shape) and cache.features.sha256 is not None:
        return cache.features.sha256
    with h5py.File(path, "r") as handle:
        stored = handle["features" if layer == POOL else "logits"].attrs.get("sha256")
    if stored is not None:
        return str(attr_value(stored))
    values = cache.features
    if isinstance(values, _Shape):  # another tool's file: its content, read and checked
        values = _read_layer(path, layer).features
    return array_sha256(values)



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
        # Values not read (_read_header): their statistics file, made only of finite values,
        # is checked to belong to this very content (its sha256).
        bad = 0 if isinstance(features, _Shape) else int(
            np.count_nonzero(~np.isfinite(features).all(axis=1)))
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
