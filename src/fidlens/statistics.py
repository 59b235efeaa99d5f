"""Per-dataset feature statistics: one file per (extractor, dataset), computed once from its
feature cache, for every later step that needs a set's mean and covariance (the class and
resampling experiments, attention maps, confidence intervals).

Layout (HDF5, results/statistics/{extractor}/{dataset}.h5): `mean` (D, float64) and
`covariance` (D x D, float64, unbiased: divided by N - 1, from fidlens.metrics.
feature_statistics), each with the sha256 of its content (checked on every read); attributes
`n`, `dim`, `layer` (the cached array: pool = `features`, logits = `logits`), `cache_path`,
`cache_sha256` (the stored sha256 of that array in the cache), every provenance attribute of
the cache (extractor, weights, preprocess, ...) under its own name, and
`statistics_package_versions`. Written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from fidlens.cache import CorruptCacheError, read_features
from fidlens.files import atomic_path
from fidlens.metrics import feature_statistics
from fidlens.provenance import package_versions

POOL, LOGITS = "pool", "logits"
LAYER_ARRAYS = {POOL: "features", LOGITS: "logits"}


@dataclass
class DatasetStatistics:
    mean: np.ndarray
    covariance: np.ndarray
    n: int
    layer: str
    attrs: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


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


def compute_statistics(cache_path: str | os.PathLike, layer: str = POOL) -> DatasetStatistics:
    """Mean and covariance (float64) of one cache's `layer` array, with its provenance."""
    cache, values = read_layer(cache_path, layer)
    if len(values) < 2:
        raise ValueError(f"{cache_path}: a covariance needs at least 2 rows, found {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{cache_path}: the {LAYER_ARRAYS[layer]} have NaN or Inf values")
    mean, covariance = feature_statistics(values)
    with h5py.File(cache_path, "r") as handle:
        stored = handle[LAYER_ARRAYS[layer]].attrs.get("sha256")
    attrs = dict(cache.attrs)
    attrs.update(
        n=int(len(values)),
        dim=int(values.shape[1]),
        layer=layer,
        cache_path=str(cache_path),
        cache_sha256=_plain(stored) if stored is not None else "not recorded",
        statistics_package_versions=json.dumps(package_versions(), sort_keys=True),
    )
    return DatasetStatistics(mean=mean, covariance=covariance, n=len(values), layer=layer,
                             attrs=attrs)


def write_statistics(path: str | os.PathLike, stats: DatasetStatistics) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, values in (("mean", stats.mean), ("covariance", stats.covariance)):
            values = np.ascontiguousarray(values, dtype=np.float64)
            handle.create_dataset(name, data=values).attrs["sha256"] = _digest(values)
        for key, value in stats.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def read_statistics(path: str | os.PathLike) -> DatasetStatistics:
    """Read a statistics file, checking each array against its stored sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    with h5py.File(path, "r") as handle:
        arrays = {}
        for name in ("mean", "covariance"):
            if name not in handle:
                raise ValueError(f"{path} has no {name!r} dataset: not a statistics file?")
            values = handle[name][()]
            stored = handle[name].attrs.get("sha256")
            if stored is not None and _plain(stored) != _digest(values):
                raise CorruptCacheError(
                    f"{path}: {name!r} does not match its stored sha256: the file is damaged. "
                    f"Rebuild it: snakemake --forcerun {path} (or delete it and run again)"
                )
            arrays[name] = values
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    return DatasetStatistics(
        mean=arrays["mean"],
        covariance=arrays["covariance"],
        n=int(attrs.get("n", 0)),
        layer=str(attrs.get("layer", POOL)),
        attrs=attrs,
    )


def _digest(values: np.ndarray) -> str:
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    digest.update(memoryview(np.ascontiguousarray(values)).cast("B"))
    return digest.hexdigest()


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
