"""Feature statistics in other tools' formats: pytorch-fid's and clean-fid's `.npz` files, in
and out.

- pytorch-fid (mseitzer/pytorch-fid `fid_score.py`): an `.npz` with `mu` (D,) and `sigma`
  (D x D), read by `compute_statistics_of_path` as `np.load(path)["mu"][:]`, `["sigma"][:]` and
  written by `save_fid_stats` with `np.savez_compressed(path, mu=m, sigma=s)` (sigma from
  `np.cov(act, rowvar=False)`: divided by N - 1, as ours).
- clean-fid (GaParmar/clean-fid `features.py`, `fid.py`): the same two arrays, in a file its
  stats folder (`<cleanfid package>/stats/`) names `{name}_{mode}{model}_{split}_{res}.npz`,
  lower-cased: mode `clean`, `legacy_pytorch` or `legacy_tensorflow`; model "" for Inception,
  `_clip_vit_b_32` for CLIP ViT-B/32; split `custom` and res `na` for a user's own set
  (`make_custom_stats`), which also writes the features themselves as `..._kid.npz`
  (`feats`, N x D) for KID. `get_reference_statistics(name, res, mode, model_name, split)`
  reads both.

Files written here carry one extra array, `fidlens_provenance` (a JSON string: extractor,
preprocessing, weights and their sha256, n, the layer, package versions), which both tools
ignore and `read_npz_statistics` returns, so an exported file re-imported elsewhere is checked
like a shared cache (fidlens.interop). Files from the tools themselves have none: their
provenance is unknown and said so.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from fidlens.files import atomic_path
from fidlens.metrics.fid import check_statistics
from fidlens.statistics import DatasetStatistics
from fidlens.trust_plan import (  # the names are known at parse time too
    clean_fid_file_name,
    clean_fid_names,
)

PYTORCH_FID, CLEAN_FID, FIDLENS = "pytorch-fid", "clean-fid", "fidlens"
FORMATS = (PYTORCH_FID, CLEAN_FID, FIDLENS)
PROVENANCE_KEY = "fidlens_provenance"

_CLEAN_FID_NAME = re.compile(
    r"^(?P<name>.+?)_(?P<mode>clean|legacy_pytorch|legacy_tensorflow)(?P<rest>(?:_[^_]+)+?)"
    r"(?P<kid>_kid)?\.npz$"
)


class StatisticsFormatError(ValueError):
    """A statistics file that is not in the format it is said to be in."""


# ---------------------------------------------------------------- the .npz files


def write_npz_statistics(path, mu, sigma, provenance: dict | None = None) -> None:
    """`mu` (D,) and `sigma` (D x D) as float64 in a compressed `.npz`, as pytorch-fid's
    `save_fid_stats` and clean-fid's `make_custom_stats` write them, plus `fidlens_provenance`
    (JSON) when given. Written atomically."""
    mu, sigma = check_statistics(mu, sigma, name=str(path))
    arrays = {"mu": mu, "sigma": sigma}
    if provenance is not None:
        arrays[PROVENANCE_KEY] = np.array(json.dumps(provenance, sort_keys=True, default=str))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_npz_features(path, features) -> None:
    """clean-fid's KID file: `feats` (N x D) in a compressed `.npz` (its `make_custom_stats`
    stores the float32 features so), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, feats=np.asarray(features))


def read_npz_statistics(path) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """(mu, sigma, provenance or None) of a pytorch-fid / clean-fid `.npz`, validated
    (finite, matching shapes, sigma symmetric positive semi-definite: `check_statistics`).
    Raises FileNotFoundError, or StatisticsFormatError naming the file and what it holds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = sorted(data.files)
            if "mu" not in keys or "sigma" not in keys:
                raise StatisticsFormatError(
                    f"{path}: a pytorch-fid / clean-fid statistics file holds 'mu' and 'sigma'; "
                    f"this one holds {keys or 'nothing'}"
                    + (
                        " (a clean-fid KID file of features: give its statistics file, "
                        "without _kid)"
                        if keys == ["feats"]
                        else ""
                    )
                )
            mu, sigma = data["mu"][()], data["sigma"][()]
            provenance = (
                json.loads(str(data[PROVENANCE_KEY][()])) if PROVENANCE_KEY in keys else None
            )
    except (OSError, ValueError) as error:
        if isinstance(error, StatisticsFormatError):
            raise
        raise StatisticsFormatError(f"{path} is not a readable .npz file ({error})") from error
    try:
        mu, sigma = check_statistics(mu, sigma, name=str(path))
    except ValueError as error:
        raise StatisticsFormatError(str(error)) from error
    return mu, sigma, provenance


# ---------------------------------------------------------------- clean-fid's names


def parse_clean_fid_name(file_name: str) -> dict | None:
    """{name, mode, model_name, split, res, kid} of a clean-fid statistics file name
    (`ffhq_clean_trainval70k_1024.npz`, `x_legacy_pytorch_clip_vit_b_32_custom_na.npz`), or None
    when the name does not follow clean-fid's pattern."""
    match = _CLEAN_FID_NAME.match(os.path.basename(file_name).lower())
    if match is None:
        return None
    parts = match["rest"].lstrip("_").split("_")
    if len(parts) < 2:
        return None
    model = "_".join(parts[:-2]) or "inception_v3"
    return {
        "name": match["name"],
        "mode": match["mode"],
        "model_name": model,
        "split": parts[-2],
        "res": parts[-1],
        "kid": bool(match["kid"]),
    }


# ---------------------------------------------------------------- in and out of our own files


def export_provenance(stats: DatasetStatistics) -> dict:
    """What an exported file records: the statistics file's attributes (the cache's
    provenance: extractor, its type, preprocessing, weights and sha256, ...) and n."""
    attrs = {key: value for key, value in stats.attrs.items()}
    attrs.update(n=int(stats.n), dim=int(stats.dim), layer=stats.layer, exported_by="fidlens")
    return attrs


def export_pytorch_fid(stats: DatasetStatistics, path) -> None:
    """Our statistics as a pytorch-fid `.npz` (with fidlens_provenance)."""
    write_npz_statistics(path, stats.mean, stats.covariance, export_provenance(stats))


def export_clean_fid(stats: DatasetStatistics, features, folder, name: str) -> tuple[Path, Path]:
    """Our statistics as clean-fid's custom statistics of dataset `name`, into `folder`: the
    statistics file and the KID features file (`features`: the N x D array the statistics were
    computed from), named as `make_custom_stats` names them for the cache's extractor type and
    preprocessing. Returns both paths; copy them into clean-fid's stats folder to use them
    there (`fid.compute_fid(..., dataset_name=name, mode=..., dataset_split="custom")`)."""
    mode, model = clean_fid_names(
        str(stats.attrs.get("extractor_type", stats.attrs.get("extractor", ""))),
        str(stats.attrs.get("preprocess", "")),
    )
    features = np.asarray(features)
    if features.shape != (stats.n, stats.dim):
        raise ValueError(
            f"the KID features are {features.shape}, the statistics {stats.n} x {stats.dim}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    provenance = export_provenance(stats) | {"clean_fid_mode": mode, "clean_fid_model": model}
    statistics_path = folder / clean_fid_file_name(name, mode, model)
    kid_path = folder / clean_fid_file_name(name, mode, model, kid=True)
    write_npz_statistics(statistics_path, stats.mean, stats.covariance, provenance)
    write_npz_features(kid_path, features)
    return statistics_path, kid_path


def import_statistics(path, fmt: str) -> DatasetStatistics:
    """Statistics of a target given only as statistics: a pytorch-fid or clean-fid `.npz`
    (`fmt`), or one of our statistics HDF5 files (`fidlens`). The result's attrs hold the
    file's recorded provenance, or `provenance: unknown` for other tools' files, and
    `statistics_format`, `statistics_path`; `n` is 0 when the file does not record it.
    Raises StatisticsFormatError for a file not in that format."""
    if fmt not in FORMATS:
        raise ValueError(f"statistics format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    if fmt == FIDLENS:
        from fidlens.statistics import read_statistics

        try:
            stats = read_statistics(path)
        except (OSError, KeyError) as error:
            raise StatisticsFormatError(
                f"{path}: not a fidlens statistics file ({error})"
            ) from error
        attrs = dict(stats.attrs)
    else:
        mu, sigma, provenance = read_npz_statistics(path)
        attrs = dict(provenance) if provenance else {"provenance": "unknown"}
        if fmt == CLEAN_FID:
            parsed = parse_clean_fid_name(path.name)
            if parsed and parsed["kid"]:
                raise StatisticsFormatError(
                    f"{path}: a clean-fid KID file; give the statistics file"
                )
            if parsed:
                attrs.update(
                    {f"clean_fid_{key}": value for key, value in parsed.items() if key != "kid"}
                )
        stats = DatasetStatistics(
            mean=mu,
            covariance=sigma,
            n=int(attrs.get("n", 0) or 0),
            layer=str(attrs.get("layer", "pool")),
            attrs=attrs,
        )
    stats.attrs.update(statistics_format=fmt, statistics_path=str(path))
    return stats
