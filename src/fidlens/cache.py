"""HDF5 feature caches: one file per (extractor, dataset).

Layout: `features` (N x D float32), `paths` and `sha1` (utf-8 strings, one per row),
`logits` for classifiers (and `logit_names`, their class names, where known), `outputs/<name>`
for any further per-image output of the extractor (dlib's `face_found`: N rows, any dtype),
`skipped` (files that could not be decoded, with the reason), `excluded` (images the
extractor left out, such as images without a face, with the reason) and provenance in the
file attributes. Files are written to a temporary name and renamed, so a
cache either exists whole or not at all.

Every dataset carries the sha256 of its content in its `sha256` attribute, checked on every
read: a cache damaged by bit rot, a bad copy or a partial sync is an error naming the file
and how to rebuild it, never a source of numbers. Files without the attribute (from other
tools, or older caches) are read unchecked.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from fidlens.files import atomic_path

_STR = h5py.string_dtype("utf-8")


class CorruptCacheError(ValueError):
    """A cache whose content does not match its stored checksums, or cannot be read."""


@dataclass
class FeatureCache:
    features: np.ndarray
    attrs: dict = field(default_factory=dict)
    paths: list[str] | None = None
    sha1: list[str] | None = None
    logits: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # per image, beyond these
    excluded: list[str] = field(default_factory=list)  # "path: reason", left out by the extractor
    logit_names: list[str] | None = None


def read_features(
    path: str | os.PathLike, with_logits: bool = False, with_outputs: bool = False
) -> FeatureCache:
    """Read any HDF5 file that has a 2-D `features` dataset (ours or a user's own);
    `logits` (and `logit_names`) and `outputs/*` only when asked for."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise CorruptCacheError(
            f"{path} is not a readable HDF5 file ({error}): truncated or damaged? "
            f"{_rebuild_hint(path)}"
        ) from error
    with handle:
        if "features" not in handle:
            raise ValueError(f"{path} has no 'features' dataset (found: {sorted(handle)})")
        try:
            features = _read_checked(handle, "features", path)
            if features.ndim != 2:
                raise ValueError(
                    f"{path}: 'features' must be 2-D (N x D), got shape {features.shape}"
                )
            logits = None
            if with_logits and "logits" in handle:
                logits = _read_checked(handle, "logits", path)
            outputs = {}
            if with_outputs and "outputs" in handle:
                outputs = {
                    name: _read_checked(handle, f"outputs/{name}", path)
                    for name in handle["outputs"]
                }
            return FeatureCache(
                features=features,
                attrs={key: attr_value(value) for key, value in handle.attrs.items()},
                paths=_strings(handle, "paths", path),
                sha1=_strings(handle, "sha1", path),
                logits=logits,
                skipped=_strings(handle, "skipped", path) or [],
                outputs=outputs,
                excluded=_strings(handle, "excluded", path) or [],
                logit_names=_strings(handle, "logit_names", path) if with_logits else None,
            )
        except OSError as error:  # HDF5 could not decode a damaged chunk or heap
            raise CorruptCacheError(
                f"{path} is damaged ({error}). {_rebuild_hint(path)}"
            ) from error


def write_cache(path: str | os.PathLike, cache: FeatureCache) -> None:
    """Write atomically: a crash leaves either the old file or none, never a partial one."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        arrays = {"features": np.asarray(cache.features, dtype=np.float32)}
        if cache.logits is not None:
            arrays["logits"] = np.asarray(cache.logits, dtype=np.float32)
        for name, values in cache.outputs.items():
            if name in arrays or "/" in name:
                raise ValueError(f"output name {name!r} is taken or not a plain name")
            arrays[f"outputs/{name}"] = np.asarray(values)
        for name, values in arrays.items():
            handle.create_dataset(name, data=values).attrs["sha256"] = _digest(values)
        strings = {
            "paths": cache.paths,
            "sha1": cache.sha1,
            "skipped": cache.skipped,
            "excluded": cache.excluded,
            "logit_names": cache.logit_names,
        }
        for name, values in strings.items():
            if values is not None:
                values = [str(value) for value in values]
                dataset = handle.create_dataset(name, data=values, dtype=_STR)
                dataset.attrs["sha256"] = _digest(values)
        for key, value in cache.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def _strings(handle: h5py.File, name: str, path: Path) -> list[str] | None:
    if name not in handle:
        return None
    values = [s.decode() if isinstance(s, bytes) else str(s) for s in handle[name][()]]
    _check(handle[name], values, name, path)
    return values


def _read_checked(handle: h5py.File, name: str, path: Path) -> np.ndarray:
    values = handle[name][()]
    _check(handle[name], values, name, path)
    return values


def _check(dataset, values, name: str, path: Path) -> None:
    stored = dataset.attrs.get("sha256")
    if stored is None:
        return  # a file from another tool, or made before checksums were stored
    stored = attr_value(stored)
    found = _digest(values)
    if found != stored:
        raise CorruptCacheError(
            f"{path}: dataset {name!r} does not match its stored sha256 (stored {stored}, "
            f"content {found}): the file is damaged. {_rebuild_hint(path)}"
        )


def _digest(values) -> str:
    """sha256 of an array's dtype, shape and bytes, or of a list of strings."""
    digest = hashlib.sha256()
    if isinstance(values, np.ndarray):
        values = np.ascontiguousarray(values)
        digest.update(f"{values.dtype.str}{values.shape}".encode())
        digest.update(memoryview(values).cast("B"))
    else:
        digest.update("\0".join(values).encode())
    return digest.hexdigest()


def _rebuild_hint(path: Path) -> str:
    return f"Rebuild it: snakemake --forcerun {path} (or delete it and run again)"


def attr_value(value):
    """An HDF5 attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
