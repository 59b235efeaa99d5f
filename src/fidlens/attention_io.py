"""The files and pictures of Grad-CAM maps, without torch: the map containers (`MapBatch`,
`AttentionResult`, `PairResult`), their HDF5 / CSV writers and readers, and the maps' placement
on the image (`upsample`, `image_map`, `normalised`).

Split from `fidlens.attention` (which re-exports every name here) so that the plotting jobs,
which only read maps, start without importing torch (about a second per process).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from fidlens.cache import attr_value
from fidlens.files import atomic_path
from fidlens.pairs import Pair


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two input indices and the weight of the second, as
    torch.nn.functional.interpolate(mode="bilinear", align_corners=False) computes them
    (ATen's area_pixel_compute_source_index: source = (i + 0.5) * n_in / n_out - 0.5,
    clamped at 0; the last input index repeats at the edge)."""
    source = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    first = source.astype(np.int64)  # floor: source >= 0
    second = np.minimum(first + 1, n_in - 1)
    return first, second, source - first


def upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """A map (h, w) resized to (height, width), bilinear, align_corners=False (float64), as
    torch's F.interpolate does it (equal to it within float64 rounding; numpy, so the plots
    need no torch). Raises ValueError for a map that is not 2-D or an empty size."""
    grid = np.asarray(grid, np.float64)
    if grid.ndim != 2 or min(grid.shape) < 1 or int(height) < 1 or int(width) < 1:
        raise ValueError(f"cannot upsample a map of shape {grid.shape} to ({height}, {width})")
    r0, r1, wr = _bilinear_taps(grid.shape[0], int(height))
    c0, c1, wc = _bilinear_taps(grid.shape[1], int(width))
    rows = grid[r0] * (1 - wr)[:, None] + grid[r1] * wr[:, None]  # (height, w)
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc


@dataclass
class MapBatch:
    grids: np.ndarray  # (n, h, w) float64
    image_sizes: np.ndarray  # (n, 2) int: H, W of the decoded image
    regions: np.ndarray  # (n, 4) float: top, left, height, width
    exact_regions: np.ndarray  # (n,) bool


@dataclass
class AttentionResult:
    """Per source image (cache order): its map and its influence on the comparison's FID."""

    paths: list[str]
    maps: MapBatch
    gradient_norm: np.ndarray  # (N,) |dFID/df|
    fid_without: np.ndarray  # (N,) exact FID of the source set without the image
    fid: float  # FID of the whole source set
    attrs: dict = field(default_factory=dict)

    @property
    def fid_change(self) -> np.ndarray:
        """(N,) FID without the image minus FID with it: negative = the image raises FID."""
        return self.fid_without - self.fid

    def ranks(self) -> np.ndarray:
        """(N,) 1 = the image FID blames most (largest drop when left out); ties: cache order."""
        order = np.argsort(self.fid_change, kind="stable")
        ranks = np.empty(len(order), np.int64)
        ranks[order] = np.arange(1, len(order) + 1)
        return ranks


@dataclass
class PairResult:
    """Per pair (file order): the good image swapped in for the bad one."""

    pairs: list[Pair]
    good: MapBatch  # maps of the good images, from dFID/d(good) in the swapped set
    bad: MapBatch  # maps of the bad images, as members of the source set
    fid: float  # FID of the source set as it is
    fid_swapped: np.ndarray  # (P,) FID with the bad image replaced by the good one
    good_gradient_norm: np.ndarray  # (P,)
    bad_gradient_norm: np.ndarray  # (P,)
    attrs: dict = field(default_factory=dict)

    @property
    def fid_change(self) -> np.ndarray:
        """(P,) FID swapped minus FID as it is: negative = the swap lowers (improves) FID."""
        return self.fid_swapped - self.fid


def image_map(grid: np.ndarray, image_size: Sequence[int], region: Sequence[float]) -> np.ndarray:
    """The map on the whole image (H, W): upsampled bilinearly onto `region` (top, left,
    height, width; see `input_region`), NaN where the network does not look (outside a
    centre crop)."""
    height, width = (int(v) for v in image_size)
    top, left, rows, cols = region
    rows, cols = max(1, round(rows)), max(1, round(cols))
    top, left = round(top), round(left)
    placed = upsample(grid, rows, cols)
    canvas = np.full((height, width), np.nan)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + rows, height), min(left + cols, width)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = placed[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


def normalised(grids: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1] (a constant map becomes 0), as maps are shown."""
    grids = np.asarray(grids, np.float64)
    low = np.nanmin(grids.reshape(len(grids), -1), axis=1)[:, None, None]
    high = np.nanmax(grids.reshape(len(grids), -1), axis=1)[:, None, None]
    span = np.where(high > low, high - low, 1.0)
    return (grids - low) / span


def average_maps(grids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the per-image min-max scaled maps: every image counts alike, as seed 001's
    averaged heat maps; mean of the raw maps, in FID units, dominated by the images with the
    largest gradients)."""
    return normalised(grids).mean(axis=0), np.asarray(grids, np.float64).mean(axis=0)


_STR = h5py.string_dtype("utf-8")


def write_maps(path: str | Path, result: AttentionResult) -> None:
    """One HDF5 per (extractor, comparison), written atomically: `paths` (N), `grids`
    (N, h, w) float32 raw maps, `image_size` (N, 2: H, W), `input_region` (N, 4: top, left,
    height, width in image px), `region_exact` (N), `gradient_norm`, `fid_without`,
    `fid_change`, `rank` (N), `mean_grid` and `mean_grid_raw` (h, w; `average_maps`), and
    the provenance in the file attributes."""
    mean, mean_raw = average_maps(result.maps.grids)
    arrays = {
        "grids": result.maps.grids.astype(np.float32),
        "image_size": result.maps.image_sizes,
        "input_region": result.maps.regions,
        "region_exact": result.maps.exact_regions,
        "gradient_norm": result.gradient_norm,
        "fid_without": result.fid_without,
        "fid_change": result.fid_change,
        "rank": result.ranks(),
        "mean_grid": mean,
        "mean_grid_raw": mean_raw,
    }
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("paths", data=list(result.paths), dtype=_STR)
        for name, values in arrays.items():
            handle.create_dataset(name, data=values)
        for key, value in result.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def read_maps(path: str | Path) -> AttentionResult:
    """An attention HDF5 written by `write_maps` (or `write_pair_maps`'s per-role groups)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"attention maps not found: {path}")
    with h5py.File(path, "r") as handle:
        return _result_from(handle, path)


def _result_from(group, path) -> AttentionResult:
    try:
        maps = MapBatch(group["grids"][()].astype(np.float64), group["image_size"][()],
                        group["input_region"][()], group["region_exact"][()])
        attrs = {key: attr_value(value) for key, value in group.file.attrs.items()}
        return AttentionResult(
            paths=[p.decode() if isinstance(p, bytes) else str(p) for p in group["paths"][()]],
            maps=maps,
            gradient_norm=group["gradient_norm"][()],
            fid_without=group["fid_without"][()],
            fid=float(attrs.get("fid", np.nan)),
            attrs=attrs,
        )
    except KeyError as error:
        raise ValueError(f"{path} is not an attention file ({error})") from None



INFLUENCE_COLUMNS = (
    "rank", "path", "fid_without", "fid_change", "gradient_norm", "fid", "extractor",
    "weights", "layer", "normalize", "source", "target",
)


def write_influence(path: str | Path, result: AttentionResult) -> None:
    """The influence CSV, most blamed first: rank, the image's path, FID of the source set
    without it, the change (without - with), |dFID/df|, and what made the numbers (FID, the
    extractor, its weights - `random-init` marked -, layer, normalisation, the comparison)."""
    import csv

    ranks = result.ranks()
    attrs = result.attrs
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(INFLUENCE_COLUMNS)
        for i in np.argsort(ranks, kind="stable"):
            writer.writerow([
                int(ranks[i]), result.paths[i], repr(float(result.fid_without[i])),
                repr(float(result.fid_change[i])), repr(float(result.gradient_norm[i])),
                repr(result.fid), attrs.get("extractor", ""), attrs.get("weights", ""),
                attrs.get("layer", ""), attrs.get("normalize", ""), attrs.get("source", ""),
                attrs.get("target", ""),
            ])


PAIR_RESULT_COLUMNS = (
    "good_dataset", "good_path", "bad_dataset", "bad_path", "fid", "fid_swapped", "fid_change",
    "good_gradient_norm", "bad_gradient_norm", "extractor", "weights", "layer", "normalize",
    "target",
)


def write_pair_maps(path: str | Path, result: PairResult) -> None:
    """The pairs' HDF5: groups `good` and `bad`, each with `paths`, `datasets`, `grids`,
    `image_size`, `input_region`, `region_exact` and `gradient_norm`; `fid_swapped`,
    `fid_change` (P); the provenance in the file attributes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for role, maps, norms in (("good", result.good, result.good_gradient_norm),
                                  ("bad", result.bad, result.bad_gradient_norm)):
            group = handle.create_group(role)
            group.create_dataset("paths", dtype=_STR,
                                 data=[getattr(p, f"{role}_path") for p in result.pairs])
            group.create_dataset("datasets", dtype=_STR,
                                 data=[getattr(p, f"{role}_dataset") for p in result.pairs])
            group.create_dataset("grids", data=maps.grids.astype(np.float32))
            group.create_dataset("image_size", data=maps.image_sizes)
            group.create_dataset("input_region", data=maps.regions)
            group.create_dataset("region_exact", data=maps.exact_regions)
            group.create_dataset("gradient_norm", data=norms)
        handle.create_dataset("fid_swapped", data=result.fid_swapped)
        handle.create_dataset("fid_change", data=result.fid_change)
        handle.create_dataset("pair_row", data=[p.row for p in result.pairs])
        for key, value in result.attrs.items():
            handle.attrs[key] = value if isinstance(value, (int, float, bool)) else str(value)


def read_pair_maps(path: str | Path) -> PairResult:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair maps not found: {path}")
    with h5py.File(path, "r") as handle:
        def strings(name):
            return [v.decode() if isinstance(v, bytes) else str(v) for v in handle[name][()]]

        pairs = [Pair(gd, gp, bd, bp, int(row)) for gd, gp, bd, bp, row in zip(
            strings("good/datasets"), strings("good/paths"), strings("bad/datasets"),
            strings("bad/paths"), handle["pair_row"][()], strict=True)]
        batches = {
            role: MapBatch(handle[f"{role}/grids"][()].astype(np.float64),
                           handle[f"{role}/image_size"][()], handle[f"{role}/input_region"][()],
                           handle[f"{role}/region_exact"][()])
            for role in ("good", "bad")
        }
        attrs = {key: attr_value(value) for key, value in handle.attrs.items()}
        return PairResult(pairs, batches["good"], batches["bad"], float(attrs["fid"]),
                          handle["fid_swapped"][()], handle["good/gradient_norm"][()],
                          handle["bad/gradient_norm"][()], attrs)


def write_pair_table(path: str | Path, result: PairResult) -> None:
    """The pairs CSV (file order): the pair, FID as it is and swapped, the change, both
    gradient norms, and what made the numbers."""
    import csv

    attrs = result.attrs
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PAIR_RESULT_COLUMNS)
        for i, pair in enumerate(result.pairs):
            writer.writerow([
                pair.good_dataset, pair.good_path, pair.bad_dataset, pair.bad_path,
                repr(result.fid), repr(float(result.fid_swapped[i])),
                repr(float(result.fid_change[i])), repr(float(result.good_gradient_norm[i])),
                repr(float(result.bad_gradient_norm[i])), attrs.get("extractor", ""),
                attrs.get("weights", ""), attrs.get("layer", ""), attrs.get("normalize", ""),
                attrs.get("target", ""),
            ])

