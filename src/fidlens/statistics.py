"""Per-dataset feature statistics: one file per (extractor, dataset), computed once from its
feature cache and read by every later step that needs them (the comparisons' FID,
precision/recall and density/coverage, the class and resampling experiments, attention maps,
exports).

Layout (HDF5, results/statistics/{extractor}/{dataset}.h5), one group per normalisation
block: `raw` (the cached rows as they are) and `l2` (rows scaled to unit norm, as
fidlens.metrics.l2_normalize does). A block holds, where asked for:

- `mean` (D, float64) and `covariance` (D x D, float64, unbiased: divided by N - 1), from
  fidlens.metrics.feature_statistics; `raw` always has them (the experiments, attention maps
  and exports read them);
- `sq_radii_k{k}` (N, float64): each row's exact squared distance to its k-th nearest other
  row, in the features' own units (fidlens.metrics.knn_sq_radii), for the k of
  precision/recall (K_PR) and density/coverage (K_DC) that some comparison needs.

Every array carries the sha256 of its content (attribute `sha256`, checked on every read).
`mean` and `covariance` at the root are soft links to `raw/mean` and `raw/covariance`.
File attributes: `n`, `dim`, `layer` (the cached array: pool = `features`, logits =
`logits`), `cache_path`, `cache_sha256` (the sha256 of that array as the cache stores it, or
of its content where the cache stores none), every provenance attribute of the cache
(extractor, weights, preprocess, ...) under its own name, and `statistics_package_versions`.
Written atomically. Files of the earlier layout (root `mean` / `covariance` datasets) are
not read: the workflow rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from fidlens.cache import CorruptCacheError, attr_value, read_features
from fidlens.files import atomic_path
from fidlens.metrics import feature_statistics, l2_normalize
from fidlens.provenance import package_versions

POOL, LOGITS = "pool", "logits"
LAYER_ARRAYS = {POOL: "features", LOGITS: "logits"}
RAW, L2 = "raw", "l2"
BLOCKS = (RAW, L2)
RADII_PREFIX = "sq_radii_k"


@dataclass
class StatisticsBlock:
    """One normalisation block: mean (D,) and covariance (D x D), or None where not
    computed, and {k: squared k-NN radii (N,)} in the features' units (float64)."""

    mean: np.ndarray | None = None
    covariance: np.ndarray | None = None
    sq_radii: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def has_moments(self) -> bool:
        return self.mean is not None and self.covariance is not None


@dataclass
class DatasetStatistics:
    """A set's statistics; `mean` / `covariance` are the raw block's (blocks[RAW] holds the
    same arrays), `blocks` every block in the file."""

    mean: np.ndarray
    covariance: np.ndarray
    n: int
    layer: str
    attrs: dict = field(default_factory=dict)
    blocks: dict[str, StatisticsBlock] = field(default_factory=dict)

    def __post_init__(self):
        raw = self.blocks.setdefault(RAW, StatisticsBlock())
        raw.mean, raw.covariance = self.mean, self.covariance

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def block(self, name: str) -> StatisticsBlock:
        """The block `name` (raw or l2), empty when the file has none."""
        return self.blocks.get(name, StatisticsBlock())


def parse_plan(moments=(RAW,), radii: dict | None = None) -> dict[str, dict]:
    """What to compute per block: {block: {"moments": bool, "radii": sorted ks}}, with raw's
    moments always. `moments`: block names; `radii`: {block: ks}. Raises ValueError for an
    unknown block or k < 1."""
    radii = radii or {}
    unknown = sorted((set(moments) | set(radii)) - set(BLOCKS))
    if unknown:
        raise ValueError(f"unknown block(s) {unknown}; blocks are {', '.join(BLOCKS)}")
    plan = {}
    for name in BLOCKS:
        ks = sorted({int(k) for k in radii.get(name, ())})
        if ks and ks[0] < 1:
            raise ValueError(f"radii of block {name}: k must be >= 1, got {ks[0]}")
        if name == RAW or name in moments or ks:
            plan[name] = {"moments": name == RAW or name in moments, "radii": ks}
    return plan


def read_layer(path: str | os.PathLike, layer: str = POOL):
    """(cache, the array of `layer`): `features` for pool, the classifier `logits` for logits."""
    if layer not in LAYER_ARRAYS:
        raise ValueError(f"layer must be one of {', '.join(LAYER_ARRAYS)}, got {layer!r}")
    cache = read_features(path, with_logits=layer == LOGITS)
    if layer == POOL:
        return cache, cache.features
    if cache.logits is None:
        raise ValueError(f"{path} has no 'logits': layer logits needs a classifier's cache")
    return cache, cache.logits


def compute_statistics(
    cache_path: str | os.PathLike,
    layer: str = POOL,
    moments=(RAW,),
    radii: dict | None = None,
) -> DatasetStatistics:
    """Statistics (float64) of one cache's `layer` array, with its provenance: the raw mean
    and covariance, the l2 block's if `moments` names it, and squared k-NN radii per block
    ({block: ks}, e.g. {"raw": (3, 5)}). Only radii import torch. Raises ValueError for fewer
    than 2 rows, NaN/Inf values, or too few rows for a k."""
    plan = parse_plan(moments, radii)
    cache, values = read_layer(cache_path, layer)
    if len(values) < 2:
        raise ValueError(f"{cache_path}: a covariance needs at least 2 rows, found {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{cache_path}: the {LAYER_ARRAYS[layer]} have NaN or Inf values")
    kmax = max((k for wanted in plan.values() for k in wanted["radii"]), default=0)
    if kmax >= len(values):
        raise ValueError(
            f"{cache_path}: k-NN radii with k = {kmax} need at least {kmax + 1} rows, found "
            f"{len(values)}"
        )
    blocks = {}
    for name, wanted in plan.items():
        rows = values if name == RAW else l2_normalize(values)
        block = StatisticsBlock()
        if wanted["moments"]:
            block.mean, block.covariance = feature_statistics(rows)
        if wanted["radii"]:
            from fidlens.metrics.knn import knn_sq_radii  # torch: only when radii are asked

            block.sq_radii = knn_sq_radii(rows, tuple(wanted["radii"]))
        blocks[name] = block
        del rows
    with h5py.File(cache_path, "r") as handle:
        stored = handle[LAYER_ARRAYS[layer]].attrs.get("sha256")
    attrs = dict(cache.attrs)
    attrs.update(
        n=int(len(values)),
        dim=int(values.shape[1]),
        layer=layer,
        cache_path=str(cache_path),
        cache_sha256=attr_value(stored) if stored is not None else array_sha256(values),
        statistics_package_versions=json.dumps(package_versions(), sort_keys=True),
    )
    raw = blocks[RAW]
    return DatasetStatistics(mean=raw.mean, covariance=raw.covariance, n=len(values),
                             layer=layer, attrs=attrs, blocks=blocks)  # fmt: skip


def write_statistics(path: str | os.PathLike, stats: DatasetStatistics) -> None:
    """Write `stats` in the layout of the module docstring (atomically)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, block in stats.blocks.items():
            if name not in BLOCKS:
                raise ValueError(f"unknown block {name!r}; blocks are {', '.join(BLOCKS)}")
            arrays = {}
            if block.has_moments:
                arrays.update(mean=block.mean, covariance=block.covariance)
            for k, values in sorted(block.sq_radii.items()):
                arrays[f"{RADII_PREFIX}{int(k)}"] = values
            if not arrays:
                continue
            group = handle.create_group(name)
            for key, values in arrays.items():
                values = np.ascontiguousarray(values, dtype=np.float64)
                group.create_dataset(key, data=values).attrs["sha256"] = array_sha256(values)
        for key in ("mean", "covariance"):  # readers of the single-block layout
            handle[key] = h5py.SoftLink(f"/{RAW}/{key}")
        for key, value in stats.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def read_statistics(path: str | os.PathLike) -> DatasetStatistics:
    """Read a statistics file, checking each array against its stored sha256. Raises
    FileNotFoundError, ValueError for a file without the raw block (not a statistics file,
    or the earlier layout), CorruptCacheError for a damaged array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    with h5py.File(path, "r") as handle:
        if not isinstance(handle.get(RAW, getlink=True), h5py.HardLink) or not all(
            isinstance(handle[RAW].get(key), h5py.Dataset) for key in ("mean", "covariance")
        ):
            raise ValueError(
                f"{path} has no {RAW}/mean and {RAW}/covariance: not a statistics file, or one "
                "of the earlier layout (rebuild it: snakemake --forcerun it, or delete it)"
            )
        blocks = {}
        for name in BLOCKS:
            if name not in handle:
                continue
            group, block = handle[name], StatisticsBlock()
            for key in group:
                values = _read_checked(group[key], path, f"{name}/{key}")
                if key in ("mean", "covariance"):
                    setattr(block, key, values)
                elif key.startswith(RADII_PREFIX):
                    block.sq_radii[int(key[len(RADII_PREFIX):])] = values
            blocks[name] = block
        attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
    raw = blocks[RAW]
    return DatasetStatistics(
        mean=raw.mean,
        covariance=raw.covariance,
        n=int(attrs.get("n", 0)),
        layer=str(attrs.get("layer", POOL)),
        attrs=attrs,
        blocks=blocks,
    )


def check_statistics_match(
    stats: DatasetStatistics,
    stats_path,
    cache_path,
    layer: str,
    shape: tuple[int, int],
    cache_sha256: str | None,
) -> None:
    """Raise ValueError, naming both files, unless `stats` were made from this cache: the
    same layer, n x dim = `shape` (the cache's `layer` array) and, where both record one,
    the same sha256 of that array (`cache_sha256`: as the cache stores it, or of its content)."""
    problems = []
    if stats.layer != layer:
        problems.append(f"layer {stats.layer!r}, not {layer!r}")
    if (stats.n, stats.dim) != tuple(shape):
        problems.append(f"{stats.n} x {stats.dim} rows x values, the cache has "
                        f"{shape[0]} x {shape[1]}")  # fmt: skip
    recorded = stats.attrs.get("cache_sha256")
    if cache_sha256 is not None and recorded not in (None, "not recorded") and (
        str(recorded) != str(cache_sha256)
    ):
        problems.append(f"cache sha256 {recorded}, the cache's is {cache_sha256}")
    if problems:
        raise ValueError(
            f"statistics {stats_path} do not belong to the cache {cache_path}: "
            + "; ".join(problems)
            + f". Rebuild them from this cache (snakemake --forcerun {stats_path})"
        )


def _read_checked(dataset: h5py.Dataset, path: Path, name: str) -> np.ndarray:
    values = dataset[()]
    stored = dataset.attrs.get("sha256")
    if stored is not None and attr_value(stored) != array_sha256(values):
        raise CorruptCacheError(
            f"{path}: {name!r} does not match its stored sha256: the file is damaged. "
            f"Rebuild it: snakemake --forcerun {path} (or delete it and run again)"
        )
    return values


def array_sha256(values: np.ndarray) -> str:
    """sha256 of dtype, shape and bytes: the same digest fidlens.cache stores."""
    values = np.ascontiguousarray(values)
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    digest.update(memoryview(values).cast("B"))
    return digest.hexdigest()

