"""Per-image latent codes in an HDF5 file beside the images, keyed by relative path.

Layout: `paths` (N utf-8 strings: each image's path relative to its dataset folder, POSIX),
`w` (N x w_dim float64), optionally `z` (N x z_dim float64) and `seeds` (N int64) when the
images were drawn from seeds, and further per-image arrays under `extra/` (the procedural
generator's ground truth `extra/defective`). Attributes: `generator` (the generator's
provenance as JSON: adapter, settings, network hash), `truncation_psi`, `description`,
`package_versions` (JSON). Written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import h5py
import numpy as np

from fidlens.files import atomic_path
from fidlens.provenance import package_versions

_STR = h5py.string_dtype("utf-8")


def as_matrix(values, width: int, what: str) -> np.ndarray:
    """A (N, width) float64 copy of `values` (a single vector becomes one row); ValueError
    naming `what` for another width or non-finite values."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{what} must have shape (N, {width}), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} has NaN or Inf values")
    return array


@dataclass
class Latents:
    paths: list[str]
    w: np.ndarray  # (N, w_dim) float64
    z: np.ndarray | None = None  # (N, z_dim) float64
    seeds: np.ndarray | None = None  # (N,) int64
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.w = np.asarray(self.w, dtype=np.float64)
        n = len(self.paths)
        if self.w.ndim != 2 or len(self.w) != n:
            raise ValueError(f"w must be ({n}, w_dim), got {self.w.shape}")
        for name, values in (("z", self.z), ("seeds", self.seeds), *self.extra.items()):
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} rows for {n} paths")
        if len(set(self.paths)) != n:
            raise ValueError("latent paths must be unique")

    @property
    def generator(self) -> dict:
        return json.loads(self.attrs.get("generator", "{}"))

    def rows(self, paths: Sequence[str], where: str = "the latents file") -> np.ndarray:
        """Row index of each path; KeyError naming the paths `where` lacks."""
        index = {path: row for row, path in enumerate(self.paths)}
        missing = [path for path in paths if path not in index]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise KeyError(f"{where} has no latent code for {', '.join(missing[:5])}{more}")
        return np.array([index[path] for path in paths], dtype=np.int64)

    def w_of(self, paths: Sequence[str], where: str = "the latents file") -> np.ndarray:
        """(len(paths), w_dim) float64: the w of each path, in that order."""
        return self.w[self.rows(paths, where)]


def write_latents(path: str | os.PathLike, latents: Latents, description: str = "") -> None:
    """Write `latents` (with package versions and `description` in the attributes)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("paths", data=list(latents.paths), dtype=_STR)
        handle.create_dataset("w", data=latents.w)
        if latents.z is not None:
            handle.create_dataset("z", data=np.asarray(latents.z, dtype=np.float64))
        if latents.seeds is not None:
            handle.create_dataset("seeds", data=np.asarray(latents.seeds, dtype=np.int64))
        for name, values in latents.extra.items():
            handle.create_dataset(f"extra/{name}", data=np.asarray(values))
        attrs = {**latents.attrs, "description": description or latents.attrs.get(
            "description", ""), "package_versions": json.dumps(package_versions(),
                                                               sort_keys=True)}
        for key, value in attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def read_latents(path: str | os.PathLike) -> Latents:
    """Read a latents file; FileNotFoundError or ValueError naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"latents file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file ({error})") from error
    with handle:
        if "paths" not in handle or "w" not in handle:
            raise ValueError(f"{path} is not a latents file: it needs 'paths' and 'w' "
                             f"(found {sorted(handle)})")
        paths = [p.decode() if isinstance(p, bytes) else str(p) for p in handle["paths"][()]]
        try:
            return Latents(
                paths=paths,
                w=handle["w"][()],
                z=handle["z"][()] if "z" in handle else None,
                seeds=handle["seeds"][()] if "seeds" in handle else None,
                extra={name: handle[f"extra/{name}"][()] for name in handle.get("extra", {})},
                attrs={key: value.decode() if isinstance(value, bytes) else
                       value.item() if isinstance(value, np.generic) else value
                       for key, value in handle.attrs.items()},
            )
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
