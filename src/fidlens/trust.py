"""Trust checks no single metric gives: leakage / memorisation, and whether the sample sizes
let the metrics be compared.

- Byte-identical overlap: images of the generated (source) set whose sha1, from the
  manifests, equals a reference (real / training) image's.
- Near-identical overlap: a source image whose nearest reference image in an extractor's
  feature space is closer than `ratio` x the reference set's typical spacing: the median, over
  reference images, of the distance to their own nearest other reference image (leave one
  out). The ratio is scale-free, so one threshold serves every extractor; features are
  L2-normalised first by default (cosine geometry), as face-identity embeddings are compared.
- Memorisation sheets: for a sample of generated images, the nearest reference image in each
  extractor's feature space, side by side, with the distance and the ratio under each.
- Sample-size diagnostics: a warning when a set has no more images than the features have
  dimensions (its covariance is singular and FID is biased by O(D / N)), or when the two sets'
  sizes differ by more than a factor; FD∞ (fidlens.metrics.fd_infinity) beside FID.

The maths takes arrays; the functions at the end read caches and manifests and draw figures.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fidlens.metrics._common import _matrix, _same_dim, l2_normalize
from fidlens.provenance import RANDOM_INIT, package_versions

if TYPE_CHECKING:
    import torch

NEAR_RATIO = 0.3  # default: near-identical below 0.3 x the reference set's median NN spacing
SIZE_RATIO = 2.0  # default: warn when one set is more than twice the other's size
BYTE, NEAR = "byte-identical (sha1)", "near-identical (features)"
NORMALIZATIONS = ("none", "l2")


# ---------------------------------------------------------------- the maths


def _device(device) -> torch.device:
    import torch  # here, not at the top: the table jobs import this module without torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def nearest_neighbours(x, y, exclude_self: bool = False, block: int | None = None, device=None):
    """For each row of x (n x D), the index of its nearest row of y (m x D) and the Euclidean
    distance to it, exactly (float64). Rows of x go in blocks of `block` (default: 2^25 / m,
    so one block of squared distances is 256 MiB); `device` None = CUDA when available.
    `exclude_self` (x is y): a row's own index is never its neighbour (leave one out).
    Ties go to the lowest index. Returns (indices (n,) int64, distances (n,) float64)."""
    import torch

    x, y = _matrix(x, "x"), _matrix(y, "y", min_rows=2 if exclude_self else 1)
    _same_dim(x, y)
    where = _device(device)
    block = block or max(64, 2**25 // len(y))
    tx, ty = torch.from_numpy(x).to(where), torch.from_numpy(y).to(where)
    squared_y = (ty * ty).sum(1)
    indices, distances = [], []
    for start in range(0, len(x), block):
        rows = tx[start : start + block]
        squared = (rows * rows).sum(1)[:, None] + squared_y[None, :] - 2.0 * rows @ ty.T
        squared = squared.clamp_min(0.0)
        if exclude_self:
            own = torch.arange(start, start + len(rows), device=where)
            squared[torch.arange(len(rows), device=where), own] = math.inf
        best = torch.argmin(squared, dim=1)
        indices.append(best.cpu())
        # the distance of the chosen pair recomputed directly: no cancellation error
        distances.append(torch.linalg.vector_norm(rows - ty[best], dim=1).cpu())
    return torch.cat(indices).numpy(), torch.cat(distances).numpy()


def reference_spacing(y) -> float:
    """The median, over the rows of y (m >= 2), of the distance to their nearest other row:
    the typical spacing of the reference set that near-identical distances are measured in."""
    _, distances = nearest_neighbours(y, y, exclude_self=True)
    return float(np.median(distances))


def near_identical(x, y, ratio: float = NEAR_RATIO, normalize: str = "l2") -> pd.DataFrame:
    """Each source row's nearest reference row and whether it is near-identical.

    x: source features (n x D), y: reference features (m x D, m >= 2); normalize "l2" (rows
    to unit length first) or "none". Columns: source_index, reference_index, distance (in the
    normalised space), spacing (`reference_spacing` of y, one value), ratio = distance /
    spacing, near_identical = ratio < `ratio`. Raises ValueError for bad input.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    if not ratio > 0:
        raise ValueError(f"the near-identical ratio must be positive, got {ratio}")
    if normalize == "l2":
        x, y = l2_normalize(x), l2_normalize(y)
    index, distance = nearest_neighbours(x, y)
    spacing = reference_spacing(y)
    scaled = distance / spacing if spacing > 0 else np.where(distance > 0, np.inf, 0.0)
    return pd.DataFrame(
        {
            "source_index": np.arange(len(index)),
            "reference_index": index,
            "distance": distance,
            "spacing": spacing,
            "ratio": scaled,
            "near_identical": scaled < ratio,
        }
    )


def byte_identical(source_rows, reference_rows) -> pd.DataFrame:
    """Pairs (source_path, reference_path, sha1) of images with equal sha1: each a
    (path, size, sha1) manifest row, or any (path, sha1, ...) tuple with `.path`, `.sha1`."""
    by_sha1: dict[str, list[str]] = {}
    for row in reference_rows:
        by_sha1.setdefault(row.sha1, []).append(row.path)
    pairs = [
        (row.path, match, row.sha1) for row in source_rows for match in by_sha1.get(row.sha1, ())
    ]
    return pd.DataFrame(pairs, columns=["source_path", "reference_path", "sha1"])


def sample_size_warnings(
    n_source: int, n_target: int | None, dim: int, size_ratio: float = SIZE_RATIO
) -> list[str]:
    """The warnings a comparison's sizes call for (empty when none): N <= D for either set
    (its covariance is singular; FID's bias, O(D / N), dominates), and sizes differing by more
    than `size_ratio` (FID is biased by N, so the two sets' biases differ; compare FD∞).
    n_target None: unknown (statistics without a recorded N)."""
    warnings = []
    for role, n in (("source", n_source), ("target", n_target)):
        if n is not None and n <= dim:
            warnings.append(
                f"N < D ({role}): {n} images for {dim}-dimensional features (N <= D), so the "
                f"{role}'s covariance is singular and FID is biased upward by O(D/N); compare "
                "FD∞ or add images"
            )
    if n_target and n_source and max(n_source, n_target) > size_ratio * min(n_source, n_target):
        warnings.append(
            f"sizes differ: {n_source} source vs {n_target} target images (a ratio above "
            f"{size_ratio:g}x); FID's bias depends on N, so compare FD∞"
        )
    return warnings


# ---------------------------------------------------------------- jobs: caches in, files out


def _plain_attrs(attrs: dict) -> dict:
    keep = (
        "extractor",
        "extractor_type",
        "feature_layer",
        "preprocess",
        "weights",
        "weights_sha256",
        "weights_origin",
        "dataset",
    )
    return {key: attrs.get(key) for key in keep}


def neighbour_report(
    source_path,
    reference_path,
    ratio: float = NEAR_RATIO,
    normalize: str = "l2",
    layer: str = "pool",
    source_name=None,
    reference_name=None,
) -> tuple[pd.DataFrame, dict]:
    """`near_identical` between two feature caches of one extractor, rows named by their
    image paths; and a provenance dict (extractor, weights incl. random-init, settings,
    counts, package versions)."""
    from fidlens.statistics import read_layer

    source, x = read_layer(Path(source_path), layer)
    reference, y = read_layer(Path(reference_path), layer)
    table = near_identical(x, y, ratio, normalize)
    paths = source.paths or [str(i) for i in range(len(x))]
    reference_paths = reference.paths or [str(i) for i in range(len(y))]
    table.insert(0, "source_path", [paths[i] for i in table["source_index"]])
    table.insert(1, "reference_path", [reference_paths[i] for i in table["reference_index"]])
    weights = (
        RANDOM_INIT
        if RANDOM_INIT in (source.attrs.get("weights"), reference.attrs.get("weights"))
        else source.attrs.get("weights")
    )
    about = {
        "source_name": source_name or source.attrs.get("dataset"),
        "reference_name": reference_name or reference.attrs.get("dataset"),
        "source_path": str(source_path),
        "reference_path": str(reference_path),
        "extractor": source.attrs.get("extractor"),
        "weights": weights,
        "source_provenance": _plain_attrs(source.attrs),
        "reference_provenance": _plain_attrs(reference.attrs),
        "layer": layer,
        "normalize": normalize,
        "ratio_threshold": ratio,
        "spacing": float(table["spacing"].iloc[0]),
        "n_source": int(len(x)),
        "n_reference": int(len(y)),
        "n_near_identical": int(table["near_identical"].sum()),
        "median_ratio": float(np.median(table["ratio"])),
        "rule": "near-identical: distance to the nearest reference image < ratio_threshold x "
        "spacing (the median leave-one-out nearest-neighbour distance within the "
        "reference set), in the "
        + ("L2-normalised" if normalize == "l2" else "raw")
        + " feature space",
        "package_versions": package_versions(),
    }
    return table, about


def overlap_table(
    source_rows,
    reference_rows,
    neighbours: dict[str, pd.DataFrame],
    source_name: str,
    reference_name: str,
) -> pd.DataFrame:
    """Every flagged source image of one (source, reference) pair: byte-identical pairs from
    the manifests (extractor "sha1"), then near-identical ones per extractor (`neighbours`:
    extractor -> `neighbour_report` table). Columns: source, reference, check, extractor,
    source_path, reference_path, distance, ratio."""
    parts = []
    same = byte_identical(source_rows, reference_rows)
    if len(same):
        parts.append(
            pd.DataFrame(
                {
                    "check": BYTE,
                    "extractor": "sha1",
                    "source_path": same["source_path"],
                    "reference_path": same["reference_path"],
                    "distance": 0.0,
                    "ratio": 0.0,
                }
            )
        )
    for extractor, table in neighbours.items():
        flagged = table[table["near_identical"]]
        if len(flagged):
            parts.append(
                pd.DataFrame(
                    {
                        "check": NEAR,
                        "extractor": extractor,
                        "source_path": flagged["source_path"].to_numpy(),
                        "reference_path": flagged["reference_path"].to_numpy(),
                        "distance": flagged["distance"].to_numpy(),
                        "ratio": flagged["ratio"].to_numpy(),
                    }
                )
            )
    columns = ["check", "extractor", "source_path", "reference_path", "distance", "ratio"]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    frame.insert(0, "reference", reference_name)
    frame.insert(0, "source", source_name)
    return frame


def overlap_summary(
    overlap: pd.DataFrame,
    abouts: dict[str, dict],
    n_source: int,
    n_reference: int,
    source_name: str,
    reference_name: str,
) -> list[dict]:
    """Long rows of the study-wide overlap table for one pair: one for the sha1 check, one per
    extractor (flagged count, median ratio, threshold, weights)."""
    rows = [
        {
            "source": source_name,
            "reference": reference_name,
            "check": BYTE,
            "extractor": "sha1",
            "weights": None,
            "n_source": n_source,
            "n_reference": n_reference,
            "n_flagged": int((overlap["check"] == BYTE).sum()) if len(overlap) else 0,
            "median_ratio": None,
            "ratio_threshold": None,
            "normalize": None,
        }
    ]
    for extractor, about in abouts.items():
        rows.append(
            {
                "source": source_name,
                "reference": reference_name,
                "check": NEAR,
                "extractor": extractor,
                "weights": about["weights"],
                "n_source": n_source,
                "n_reference": n_reference,
                "n_flagged": about["n_near_identical"],
                "median_ratio": about["median_ratio"],
                "ratio_threshold": about["ratio_threshold"],
                "normalize": about["normalize"],
            }
        )
    return rows


def sheet_sample(
    n: int, count: int, seed: int = 0, ratios: np.ndarray | None = None, selection: str = "random"
) -> np.ndarray:
    """Rows of the source set shown on a memorisation sheet: `count` of them (all if fewer),
    a seeded random sample (numpy default_rng(seed), sorted), or with `selection` "closest"
    the rows with the smallest `ratios` (mean over extractors), closest first."""
    count = min(int(count), n)
    if selection == "closest":
        if ratios is None:
            raise ValueError("selection 'closest' needs the ratios")
        return np.argsort(np.asarray(ratios), kind="stable")[:count]
    if selection != "random":
        raise ValueError(f"selection must be random or closest, got {selection!r}")
    return np.sort(np.random.default_rng(seed).choice(n, count, replace=False))


def _thumbnail(source, relpath: str, size: int) -> np.ndarray | None:
    from PIL import Image

    from fidlens.datasets import BadImageError, decode_rgb

    try:
        rgb = decode_rgb(source.read_bytes(relpath))
    except (OSError, KeyError, BadImageError):
        return None
    image = Image.fromarray(rgb)
    image.thumbnail((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image)


def memorisation_sheet(
    path,
    source_images,
    reference_images,
    rows: list[str],
    neighbours: dict[str, pd.DataFrame],
    abouts: dict[str, dict],
    source_name: str,
    reference_name: str,
    thumb: int = 112,
) -> tuple[int, int]:
    """Draw the sheet: one row per generated image in `rows` (relative paths), its image
    first, then for each extractor its nearest reference image with the distance and the
    ratio under it ("NEAR-IDENTICAL" when flagged). source_images / reference_images: opened
    datasets (fidlens.datasets.open_source). Returns the PNG's (width, height) in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fidlens.files import atomic_path

    extractors = list(neighbours)
    columns = 1 + len(extractors)
    cell_in, dpi = 1.75, 110
    figure, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(cell_in * columns + 0.3, cell_in * 1.22 * len(rows) + 1.0),
        squeeze=False,
        dpi=dpi,
    )
    by_path = {name: table.set_index("source_path") for name, table in neighbours.items()}
    for r, relpath in enumerate(rows):
        cells = [
            (
                _thumbnail(source_images, relpath, thumb),
                f"{textwrap.shorten(relpath, 22)}",
                source_name if r == 0 else None,
                False,
            )
        ]
        for name in extractors:
            hit = by_path[name].loc[relpath]
            flagged = bool(hit["near_identical"])
            label = f"d = {hit['distance']:.3g}, ratio {hit['ratio']:.2f}"
            label += (
                "\nNEAR-IDENTICAL"
                if flagged
                else f"\n{textwrap.shorten(hit['reference_path'], 22)}"
            )
            title = None
            if r == 0:
                title = name + (
                    f"\n({RANDOM_INIT})" if abouts[name]["weights"] == RANDOM_INIT else ""
                )
            cells.append(
                (_thumbnail(reference_images, hit["reference_path"], thumb), label, title, flagged)
            )
        for c, (image, label, title, flagged) in enumerate(cells):
            axis = axes[r][c]
            if image is None:
                axis.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=7)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_linewidth(3 if flagged else 0.5)
                spine.set_linestyle("--" if flagged else "-")
            axis.set_xlabel(label, fontsize=6.5, fontweight="bold" if flagged else "normal")
            if title:
                axis.set_title(title if c else f"generated: {title}", fontsize=8)
    width = max(40, int(cell_in * columns * 12))  # characters of 9-pt text across the figure
    explanation = (
        "Nearest reference image in each extractor's feature space; ratio = distance / the "
        "reference set's median nearest-neighbour spacing; framed: near-identical (ratio < "
        f"{next(iter(abouts.values()))['ratio_threshold']:g})"
    )
    figure.suptitle(
        "\n".join(
            textwrap.wrap(f"Memorisation check: {source_name} (generated) against "
                          f"{reference_name} (reference)", width)
            + textwrap.wrap(explanation, width)
        ),
        fontsize=9,
    )  # fmt: skip
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    width, height = figure.get_size_inches() * dpi
    plt.close(figure)
    return round(width), round(height)


def markdown_overlap(summary: pd.DataFrame) -> str:
    """The study-wide overlap table: a row per (source, reference), the sha1 count, then per
    extractor the near-identical count and the median ratio."""
    lines = [
        "# Trust checks: overlap between generated and reference images",
        "",
        "Byte-identical: equal sha1 (from the manifests). Near-identical: the nearest reference "
        "image in the extractor's feature space is closer than the threshold x the reference "
        "set's median nearest-neighbour spacing (ratio below the threshold). Cells: flagged "
        "images of the source set (median ratio). Every flagged image is listed in "
        "results/trust/<source>__<reference>/overlap.csv; the memorisation sheets are beside it.",
        "",
    ]
    if summary.empty:
        return "\n".join(lines + ["No (source, reference) pairs were checked."]) + "\n"
    near = summary[summary["check"] == NEAR]
    extractors = list(dict.fromkeys(near["extractor"]))
    random_init = set(near.loc[near["weights"] == RANDOM_INIT, "extractor"])
    titles = [f"{e} ({RANDOM_INIT})" if e in random_init else e for e in extractors]
    if random_init:
        lines += [
            "> **Warning:** columns marked (random-init) use randomly initialised weights: "
            "their neighbours show the workflow running, not what the network sees.",
            "",
        ]
    threshold = near["ratio_threshold"].dropna()
    if len(threshold):
        lines += [
            f"Threshold: ratio < {threshold.iloc[0]:g}; features: "
            f"{'L2-normalised' if (near['normalize'] == 'l2').all() else 'as configured'}.",
            "",
        ]
    lines.append("| Source | Reference | N | byte-identical | " + " | ".join(titles) + " |")
    lines.append("|---|---|---:|---:|" + "---:|" * len(titles))
    for (source, reference), group in summary.groupby(["source", "reference"], sort=False):
        byte = group[group["check"] == BYTE]
        cells = [
            source,
            reference,
            f"{int(group['n_source'].iloc[0])}/{int(group['n_reference'].iloc[0])}",
            str(int(byte["n_flagged"].iloc[0])) if len(byte) else "–",
        ]
        for extractor in extractors:
            hit = group[(group["check"] == NEAR) & (group["extractor"] == extractor)]
            cells.append(
                f"{int(hit['n_flagged'].iloc[0])} ({hit['median_ratio'].iloc[0]:.2f})"
                if len(hit)
                else "–"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sample_size_row(doc: dict) -> dict:
    """One row of the sample-size table from an FD∞ document (`workflow_scripts/fd_infinity.py`)."""
    return {
        key: doc.get(key)
        for key in (
            "extractor",
            "weights",
            "source",
            "target",
            "target_kind",
            "n_source",
            "n_target",
            "feature_dim",
            "fid",
            "fd_infinity",
            "fd_infinity_slope",
        )
    } | {
        "fd_infinity_sizes": " ".join(str(n) for n in doc.get("fd_infinity_sizes", [])),
        "warnings": " | ".join(doc.get("warnings", [])),
    }


def markdown_sample_size(table: pd.DataFrame) -> str:
    """FID beside FD∞ per extractor and comparison, and every sample-size warning."""
    lines = [
        "# Sample-size diagnostics: FID and FD∞",
        "",
        "FID is biased upward by a term that shrinks like 1/N, so sets of different sizes cannot "
        "be compared by FID alone. FD∞ (Chong & Forsyth 2020): FID on random subsets of the "
        "source at several sizes N, a least-squares line in 1/N, its value at 1/N = 0 "
        "(the source's subsets; the target's full statistics). Raw features.",
        "",
    ]
    if table.empty:
        return "\n".join(lines + ["No comparisons."]) + "\n"
    if (table["weights"] == RANDOM_INIT).any():
        lines += ["> **Warning:** rows marked (random-init) use randomly initialised weights.", ""]
    lines += [
        "| Extractor | Source | Target | N | D | FID | FD∞ | slope (FID·N) | warnings |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in table.iterrows():
        label = row["extractor"] + (f" ({RANDOM_INIT})" if row["weights"] == RANDOM_INIT else "")
        n_target = (
            "?" if row["n_target"] is None or pd.isna(row["n_target"]) else int(row["n_target"])
        )
        target = row["target"] + (" (statistics)" if row.get("target_kind") == "statistics" else "")
        flags = "; ".join(w.split(":")[0] for w in str(row["warnings"] or "").split(" | ") if w)
        lines.append(
            f"| {label} | {row['source']} | {target} | {int(row['n_source'])}/{n_target} "
            f"| {int(row['feature_dim'])} | {row['fid']:.4g} | {row['fd_infinity']:.4g} "
            f"| {row['fd_infinity_slope']:.4g} | {flags or '–'} |"
        )
    warned = [
        (row, w)
        for _, row in table.iterrows()
        for w in str(row["warnings"] or "").split(" | ")
        if w
    ]
    if warned:
        lines += ["", "Warnings:", ""]
        lines += sorted({f"- {w}" for _, w in warned})
    return "\n".join(lines) + "\n"


def write_frame(frame: pd.DataFrame, path) -> None:
    from fidlens.files import write_text_atomic

    write_text_atomic(path, frame.to_csv(index=False))


def write_json(path, document: dict) -> None:
    from fidlens.files import write_text_atomic

    def plain(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, os.PathLike):
            return str(value)
        raise TypeError(type(value).__name__)

    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=plain) + "\n")


# ---------------------------------------------------------------- whole jobs (one call a script)


def overlap_job(
    source_manifest,
    reference_manifest,
    extractors: list[str],
    source_caches,
    reference_caches,
    source_images,
    reference_images,
    source_name: str,
    reference_name: str,
    ratio: float = NEAR_RATIO,
    normalize: str = "l2",
    layers=None,
    sheet_images: int = 8,
    selection: str = "random",
    seed: int = 0,
    source_hidden: bool = False,
    reference_hidden: bool = False,
    csv=None,
    neighbours_csv=None,
    json_path=None,
    sheet=None,
) -> dict:
    """One (source, reference) pair: `neighbour_report` in each extractor's caches (the
    i-th extractor's source and reference caches; `layers` its layer, default pool), the
    overlap CSV (`overlap_table`: sha1 matches from the manifests, near-identical images per
    extractor), every neighbour in one long CSV, a JSON summary with each extractor's
    provenance, and the memorisation sheet (images from the two dataset folders)."""
    from fidlens.datasets import open_source, read_manifest

    source_rows, reference_rows = read_manifest(source_manifest), read_manifest(reference_manifest)
    layers = layers or ["pool"] * len(extractors)
    abouts, neighbours = {}, {}
    for name, x_path, y_path, layer in zip(
        extractors, source_caches, reference_caches, layers, strict=True
    ):
        table, about = neighbour_report(
            x_path, y_path, ratio, normalize, layer, source_name, reference_name
        )
        neighbours[name], abouts[name] = (
            table.drop(columns=["source_index", "reference_index"]),
            about,
        )
    overlap = overlap_table(source_rows, reference_rows, neighbours, source_name, reference_name)
    summary = overlap_summary(
        overlap, abouts, len(source_rows), len(reference_rows), source_name, reference_name
    )
    # images every extractor kept (one may leave some out, e.g. dlib without a face)
    kept = [set(table["source_path"]) for table in neighbours.values()]
    order = [path for path in (row.path for row in source_rows) if all(path in k for k in kept)]
    ratios = None
    if order and neighbours:
        ratios = np.mean(
            [
                t.set_index("source_path").loc[order, "ratio"].to_numpy()
                for t in neighbours.values()
            ],
            axis=0,
        )
    picked = sheet_sample(len(order), sheet_images, seed, ratios, selection) if order else []
    rows = [order[i] for i in picked]
    document = {
        "source_name": source_name,
        "reference_name": reference_name,
        "n_source": len(source_rows),
        "n_reference": len(reference_rows),
        "n_byte_identical": int((overlap["check"] == BYTE).sum()),
        "summary": summary,
        "extractors": abouts,
        "sheet_images": rows,
        "sheet_selection": selection,
        "sheet_seed": seed,
        "package_versions": package_versions(),
    }
    if csv is not None:
        write_frame(overlap, csv)
    if neighbours_csv is not None:
        long = pd.concat(
            [table.assign(extractor=name) for name, table in neighbours.items()], ignore_index=True
        )
        write_frame(
            long[["extractor", *[c for c in long.columns if c != "extractor"]]], neighbours_csv
        )
    if sheet is not None:
        if not rows:
            raise ValueError(f"{source_name} vs {reference_name}: no image to draw a sheet of")
        memorisation_sheet(
            sheet,
            open_source(source_images, include_hidden=source_hidden),
            open_source(reference_images, include_hidden=reference_hidden),
            rows,
            neighbours,
            abouts,
            source_name,
            reference_name,
        )
    if json_path is not None:
        write_json(json_path, document)
    return document


def fd_job(
    source_path,
    target_path=None,
    target_statistics=None,
    layer: str = "pool",
    points: int = 15,
    min_fraction: float = 0.1,
    seed: int = 0,
    size_ratio: float = SIZE_RATIO,
    source_name=None,
    target_name=None,
) -> dict:
    """FD∞ and FID of one comparison (target features from a cache, or target statistics from
    an imported statistics file), with the sample-size warnings and provenance."""
    from fidlens.metrics.fd_infinity import fd_infinity, fd_infinity_sizes
    from fidlens.statistics import read_layer, read_statistics

    source, x = read_layer(Path(source_path), layer)
    if (target_path is None) == (target_statistics is None):
        raise ValueError("give the target's cache or its statistics, not both")
    if target_path is not None:
        target_cache, y = read_layer(Path(target_path), layer)
        target, n_target, attrs, kind = y, len(y), target_cache.attrs, "features"
    else:
        stats = read_statistics(target_statistics)
        target, n_target, attrs, kind = (
            (stats.mean, stats.covariance),
            stats.n or None,
            stats.attrs,
            "statistics",
        )
    sizes = fd_infinity_sizes(len(x), points, min_fraction)
    fit = fd_infinity(x, target, sizes, seed)
    # the largest subset is the whole set (in another order): its FID is the set's FID
    fid = float(fit.fids[-1])
    weights = (
        RANDOM_INIT
        if RANDOM_INIT in (source.attrs.get("weights"), attrs.get("weights"))
        else source.attrs.get("weights", "unknown")
    )
    return {
        "extractor": source.attrs.get("extractor"),
        "weights": weights,
        "source": source_name or source.attrs.get("dataset"),
        "target": target_name or attrs.get("dataset"),
        "target_kind": kind,
        "source_path": str(source_path),
        "target_path": str(target_path or target_statistics),
        "layer": layer,
        "n_source": int(len(x)),
        "n_target": n_target,
        "feature_dim": int(x.shape[1]),
        "fid": fid,
        **fit.as_dict(),
        "fd_infinity_method": "Chong & Forsyth 2020: FID of random source subsets (a fresh "
        "permutation per size, numpy default_rng(seed)) against the full "
        "target, least-squares line in 1/N, value at 1/N = 0",
        "points": points,
        "min_fraction": min_fraction,
        "seed": seed,
        "size_ratio": size_ratio,
        "warnings": sample_size_warnings(len(x), n_target, int(x.shape[1]), size_ratio),
        "source_provenance": _plain_attrs(source.attrs),
        "target_provenance": _plain_attrs(attrs),
        "package_versions": package_versions(),
    }


def fd_comparison_job(
    extractors: list[str],
    sources,
    targets=None,
    target_statistics=None,
    layers=None,
    points: int = 15,
    min_fraction: float = 0.1,
    seed: int = 0,
    size_ratio: float = SIZE_RATIO,
    source_name=None,
    target_name=None,
) -> dict:
    """`fd_job` for every extractor of one comparison (the i-th extractor's source cache and
    target cache or imported target statistics): {"results": [one document each]}."""
    layers = layers or ["pool"] * len(extractors)
    targets = targets or [None] * len(extractors)
    target_statistics = target_statistics or [None] * len(extractors)
    results = [
        fd_job(source, target, statistics, layer, points, min_fraction, seed, size_ratio,
               source_name, target_name)
        for source, target, statistics, layer in zip(
            sources, targets, target_statistics, layers, strict=True
        )
    ]  # fmt: skip
    return {"extractors": list(extractors), "results": results}


def tables_job(kind: str, inputs, csv, markdown) -> pd.DataFrame:
    """The study-wide table of `kind` "overlap" (from overlap_job JSONs) or "sample_size"
    (from fd_job JSONs), as CSV and Markdown."""
    from fidlens.files import write_text_atomic

    documents = [json.loads(Path(path).read_text()) for path in inputs]
    if kind == "overlap":
        frame = pd.DataFrame([row for doc in documents for row in doc["summary"]])
        text = markdown_overlap(frame)
    elif kind == "sample_size":
        frame = pd.DataFrame(
            [sample_size_row(result) for doc in documents for result in doc["results"]]
        )
        text = markdown_sample_size(frame)
    else:
        raise ValueError(f"kind must be overlap or sample_size, got {kind!r}")
    write_frame(frame, csv)
    write_text_atomic(markdown, text)
    return frame
