"""HDF5 feature caches: one file per (extractor, dataset).

Layout: `features` (N x D float32), `paths` and `sha1` (utf-8 strings, one per row),
`logits` for classifiers, `skipped` (files that could not be decoded, with the reason) and
provenance in the file attributes. Files are written to a temporary name and renamed, so a
cache either exists whole or not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from fidlens.files import atomic_path

_STR = h5py.string_dtype("utf-8")


@dataclass
class FeatureCache:
    features: np.ndarray
    attrs: dict = field(default_factory=dict)
    paths: list[str] | None = None
    sha1: list[str] | None = None
    logits: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)


def read_features(path: str | os.PathLike, with_logits: bool = False) -> FeatureCache:
    """Read any HDF5 file that has a 2-D `features` dataset (ours or a user's own)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file ({error})") from error
    with handle:
        if "features" not in handle:
            raise ValueError(f"{path} has no 'features' dataset (found: {sorted(handle)})")
        features = handle["features"][()]
        if features.ndim != 2:
            raise ValueError(f"{path}: 'features' must be 2-D (N x D), got shape {features.shape}")
        return FeatureCache(
            features=features,
            attrs={key: _plain(value) for key, value in handle.attrs.items()},
            paths=_strings(handle, "paths"),
            sha1=_strings(handle, "sha1"),
            logits=handle["logits"][()] if with_logits and "logits" in handle else None,
            skipped=_strings(handle, "skipped") or [],
        )


def write_cache(path: str | os.PathLike, cache: FeatureCache) -> None:
    """Write atomically: a crash leaves either the old file or none, never a partial one."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("features", data=np.asarray(cache.features, dtype=np.float32))
        if cache.logits is not None:
            handle.create_dataset("logits", data=np.asarray(cache.logits, dtype=np.float32))
        for name in ("paths", "sha1"):
            values = getattr(cache, name)
            if values is not None:
                handle.create_dataset(name, data=list(values), dtype=_STR)
        handle.create_dataset("skipped", data=list(cache.skipped), dtype=_STR)
        for key, value in cache.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def _strings(handle: h5py.File, name: str) -> list[str] | None:
    if name not in handle:
        return None
    return [s.decode() if isinstance(s, bytes) else str(s) for s in handle[name][()]]


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
