"""Figures of the PaCMAP maps (seed 001 Fig. 3), from the CSVs and JSONs `fidlens.embedding`
writes: per (extractor, comparison) a scatter with one panel per normalisation, and per
comparison a grid with a column per extractor and a row per normalisation. Target (real) points
are blue circles, source (generated) points red triangles (the shapes tell them apart in grey).
Figures have a fixed size (`pixel_size`), so a test can check it.
"""

from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from fidlens.embedding import read_embedding  # noqa: E402
from fidlens.files import atomic_path  # noqa: E402
from fidlens.provenance import RANDOM_INIT  # noqa: E402

DPI = 130
PANEL_IN = 4.2  # side of one panel with its labels, inches
TITLE_IN = 0.8  # the figure's title, above the panels
BOTTOM_IN = 1.0  # the legend and the footer, below them (whole pixels at DPI)
MARGIN_W_IN = 0.4
STYLE = {
    "target": {"color": "#1f5fbf", "marker": "o"},  # blue
    "source": {"color": "#d62728", "marker": "^"},  # red
}
BLOCK_LABELS = {"raw": "raw features", "l2": "L2-normalised features"}


def figure_size(columns: int, rows: int) -> tuple[float, float]:
    """Inches of a figure of columns x rows panels."""
    return PANEL_IN * columns + MARGIN_W_IN, PANEL_IN * rows + TITLE_IN + BOTTOM_IN


def pixel_size(columns: int, rows: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG of a figure of columns x rows panels."""
    width, height = figure_size(columns, rows)
    return round(width * DPI), round(height * DPI)


def extractor_label(provenance: dict) -> str:
    random_init = provenance["weights"] == RANDOM_INIT
    return provenance["extractor"] + (f" ({RANDOM_INIT})" if random_init else "")


def _count(provenance: dict, role: str) -> str:
    kept, total = provenance[f"n_{role}_kept"], provenance[f"n_{role}"]
    return f"{kept} of {total} images" if kept < total else f"{total} images"


def _legend(figure, provenance: dict) -> None:
    handles = [
        Line2D([], [], linestyle="", markersize=8, alpha=0.8, **STYLE[role],
               label=f"{role}: {provenance[f'{role}_name']} ({_count(provenance, role)})")
        for role in ("target", "source")
    ]
    figure.legend(handles=handles, loc="lower center", ncol=2, frameon=False,
                  bbox_to_anchor=(0.5, 0.42 / figure.get_size_inches()[1]), fontsize=10)


def _footer(figure, provenances: list[dict]) -> None:
    """The settings shared by the maps (those of the first), each map's dimensions, and a
    warning when any of them was made with random-init weights."""
    first = provenances[0]
    pacmap = first["pacmap"]
    dims = "; ".join(
        f"{p['extractor']} {p['feature_dim']}-D ({p['layer']}), exact PCA to "
        f"{p['pca_components']}-D first" for p in provenances
    )
    text = (
        f"PaCMAP {pacmap['version']}: n_neighbors {pacmap['n_neighbors']}, MN ratio "
        f"{pacmap['mn_ratio']}, FP ratio {pacmap['fp_ratio']}, iterations "
        f"{'+'.join(str(i) for i in pacmap['num_iters'])}, seed {first['seed']}, at most "
        f"{first['max_points']} points per set. {dims}."
    )
    if any(p["weights"] == RANDOM_INIT for p in provenances):
        text += f" {RANDOM_INIT}: randomly initialised weights, not the network's own."
    width = figure.get_size_inches()[0]
    figure.text(0.01, 0.008, textwrap.fill(text, int(width * 19)), fontsize=7, va="bottom",
                color="0.35")


def _panel(axis, rows, title: str, ylabel: str = "PaCMAP 2") -> None:
    """One map: target first, the source drawn over it, half transparent."""
    size = min(40.0, max(4.0, 3000.0 / max(1, len(rows))))
    for role in ("target", "source"):
        part = rows[rows["role"] == role]
        axis.scatter(part["x"], part["y"], s=size, alpha=0.6, linewidths=0.3,
                     edgecolors="white", **STYLE[role])
    axis.set_aspect("equal", adjustable="datalim")  # PaCMAP's two axes share one scale
    axis.set_title(title, fontsize=11)
    axis.set_xlabel("PaCMAP 1")
    axis.set_ylabel(ylabel)


def _save(figure, path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format=os.path.splitext(str(path))[1][1:] or "png")
    plt.close(figure)


def _layout(figure) -> None:
    # tight_layout keeps the suptitle clear by itself (TITLE_IN is the room it takes)
    figure.tight_layout(rect=(0, BOTTOM_IN / figure.get_size_inches()[1], 1, 1))


def scatter_figure(table, provenance: dict, path) -> None:
    """One extractor and comparison: a panel per normalisation (the CSV's rows of each)."""
    sns.set_theme(style="whitegrid", context="notebook")
    blocks = provenance["normalizations"]
    figure, axes = plt.subplots(1, len(blocks), figsize=figure_size(len(blocks), 1),
                                squeeze=False)
    for axis, block in zip(axes[0], blocks, strict=True):
        _panel(axis, table[table["normalization"] == block], BLOCK_LABELS[block])
    figure.suptitle(
        f"PaCMAP of {extractor_label(provenance)} features:\n"
        f"{provenance['source_name']} (source, red) with {provenance['target_name']} "
        "(target, blue)",
        fontsize=12,
    )
    _legend(figure, provenance)
    _footer(figure, [provenance])
    _layout(figure)
    _save(figure, path)


def grid_figure(entries: list[tuple[object, dict]], path) -> None:
    """One comparison, seed 001's grid: a column per extractor (in the given order), a row
    per normalisation. entries: (table, provenance) of each extractor, one comparison."""
    sns.set_theme(style="whitegrid", context="notebook")
    first = entries[0][1]
    blocks = first["normalizations"]
    figure, axes = plt.subplots(len(blocks), len(entries),
                                figsize=figure_size(len(entries), len(blocks)), squeeze=False)
    for column, (table, provenance) in enumerate(entries):
        for row, block in enumerate(blocks):
            title = extractor_label(provenance) if row == 0 else ""
            ylabel = f"{BLOCK_LABELS[block]}\nPaCMAP 2" if column == 0 else "PaCMAP 2"
            _panel(axes[row, column], table[table["normalization"] == block], title, ylabel)
    figure.suptitle(
        f"PaCMAP maps, one per extractor: {first['source_name']} (source, red) with "
        f"{first['target_name']} (target, blue)",
        fontsize=13,
    )
    _legend(figure, first)
    _footer(figure, [provenance for _, provenance in entries])
    _layout(figure)
    _save(figure, path)


def comparison_figures(csvs, jsons, scatters, grid) -> None:
    """Read each extractor's embedding of one comparison (csvs[i] with jsons[i]), draw its
    scatter to scatters[i] and the grid of all of them to `grid`. Raises ValueError when the
    files are of different comparisons or normalisations, or the lists differ in length."""
    if not (len(csvs) == len(jsons) == len(scatters)) or not csvs:
        raise ValueError(
            f"one JSON and one scatter path per CSV needed, got {len(csvs)} CSVs, "
            f"{len(jsons)} JSONs, {len(scatters)} scatter paths"
        )
    entries = [read_embedding(csv, json_path) for csv, json_path in zip(csvs, jsons, strict=True)]
    keys = {(p["source_name"], p["target_name"], tuple(p["normalizations"])) for _, p in entries}
    if len(keys) > 1:
        raise ValueError(
            f"embeddings of different comparisons or normalisations: {sorted(keys)} "
            f"({', '.join(map(str, jsons))})"
        )
    for (table, provenance), path in zip(entries, scatters, strict=True):
        scatter_figure(table, provenance, path)
    grid_figure(entries, grid)
