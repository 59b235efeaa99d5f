"""One figure per target: every metric with its interval, per extractor and source, raw vs L2.

A grid of small panels (seaborn's whitegrid theme): a row per extractor, a column per metric and
normalisation (FID ↓, KID ↓, P ↑, R ↑, each on the features as extracted and L2-normalised,
FID and KID × 1000 on L2 as in seed 001's Tables II/IV). In a panel each source is a point at
its value with a vertical bar over its interval (the metric JSON's `<metric>_ci`), coloured
and shaped per source (viridis colours and distinct markers, readable in grey print); real
sources have hollow markers. Each panel has its own y scale (FIDs of different extractors
differ by orders of magnitude); P and R share [0, 1]. Which source an extractor prefers is
then read along its row. Random-init rows are labelled RANDOM-INIT in red.

Input: fidlens.paper_tables.Entry values (from the metric JSONs); output: a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fidlens.files import atomic_path
from fidlens.paper_tables import COLUMNS, NORMALIZATIONS, Entry, Measure
from fidlens.provenance import RANDOM_INIT

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "<", ">")
PANEL_WIDTH_IN, PANEL_HEIGHT_IN = 1.9, 1.9
DPI = 110


def panel_columns() -> list[tuple[str, int]]:
    """(normalisation, column index in COLUMNS) per panel column: each metric raw then L2."""
    metrics = len(COLUMNS["raw"])
    return [(normalization, index) for index in range(metrics) for normalization in
            NORMALIZATIONS]


def figure_rows(entries: Sequence[Entry]) -> list[dict]:
    """The plotted numbers, one dict per (extractor, source, normalisation, metric): value and
    interval scaled as in the tables (a tidy table; also what the tests check)."""
    rows = []
    for entry in entries:
        for normalization, index in panel_columns():
            column = COLUMNS[normalization][index]
            measure = entry.measures.get((normalization, column.metric), Measure(None))
            measure = measure.scaled(column.scale)
            rows.append({
                "extractor": entry.extractor, "weights": entry.weights,
                "source": entry.source, "kind": entry.kind, "normalization": normalization,
                "metric": column.metric, "title": column.title, "value": measure.value,
                "low": measure.low, "high": measure.high,
            })
    return rows


def metrics_figure(entries: Sequence[Entry], target: str, path: str | Path) -> Path:
    """Write the figure of every comparison against `target` to `path` (PNG).

    entries: the comparisons against `target` (any extractors and sources; order kept).
    Raises ValueError when `entries` is empty or holds another target.
    """
    entries = list(entries)
    if not entries:
        raise ValueError(f"no comparison against {target!r} to plot")
    others = sorted({e.target for e in entries} - {target})
    if others:
        raise ValueError(f"entries against {', '.join(others)} given for target {target!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    extractors = list(dict.fromkeys(e.extractor for e in entries))
    sources = list(dict.fromkeys(e.source for e in entries))
    kinds = {e.source: e.kind for e in entries}
    # viridis without its palest end (yellow on white), still ordered in lightness
    cmap = sns.color_palette("viridis", as_cmap=True)
    steps = [0.8 * i / max(len(sources) - 1, 1) for i in range(len(sources))]
    palette = {source: cmap(step) for source, step in zip(sources, steps, strict=True)}
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(sources)}
    columns = panel_columns()
    rows = figure_rows(entries)
    sns.set_theme(style="whitegrid", context="paper", font_scale=0.9)
    figure, axes = plt.subplots(
        len(extractors), len(columns), squeeze=False,
        figsize=(PANEL_WIDTH_IN * len(columns) + 0.6,
                 PANEL_HEIGHT_IN * len(extractors) + 1.3),
    )
    for r, extractor in enumerate(extractors):
        for c, (normalization, index) in enumerate(columns):
            column = COLUMNS[normalization][index]
            ax = axes[r][c]
            chosen = [row for row in rows if row["extractor"] == extractor
                      and row["normalization"] == normalization and row["metric"] == column.metric]
            for x, source in enumerate(sources):
                for row in (row for row in chosen if row["source"] == source):
                    if row["value"] is None:
                        continue
                    if row["low"] is not None and row["high"] is not None:
                        ax.vlines(x, row["low"], row["high"], color=palette[source], lw=1.6)
                    hollow = kinds[source] == "real"
                    ax.scatter([x], [row["value"]], s=34, marker=markers[source], zorder=3,
                               color="white" if hollow else palette[source],
                               edgecolors=palette[source], linewidths=1.4)
            ax.set_xticks(range(len(sources)))
            ax.set_xticklabels(sources if r == len(extractors) - 1 else [], rotation=35,
                               ha="right")
            ax.set_xlim(-0.6, len(sources) - 0.4)
            if column.metric in ("precision", "recall"):
                ax.set_ylim(-0.04, 1.04)
            ax.tick_params(axis="y", labelsize=7)
            if r == 0:
                norm = "L2" if normalization == "l2" else "raw"
                ax.set_title(f"{column.title} {column.arrow} ({norm})", fontsize=9)
            if c == 0:
                weights = [e.weights for e in entries if e.extractor == extractor]
                random = RANDOM_INIT in weights
                label = f"{extractor}\n(RANDOM-INIT)" if random else extractor
                ax.set_ylabel(label, fontsize=9, color="#b00000" if random else "black",
                              fontweight="bold" if random else "normal")
    handles = [Line2D([], [], ls="", marker=markers[s], markersize=7,
                      markerfacecolor="white" if kinds[s] == "real" else palette[s],
                      markeredgecolor=palette[s], label=f"{s} ({kinds[s]})") for s in sources]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(sources), 6),
                  frameon=False, title="source (hollow: real set)")
    note = ""
    if any(e.weights == RANDOM_INIT for e in entries):
        note = "\nRows marked RANDOM-INIT use randomly initialised weights: not a measurement."
    figure.suptitle(
        f"Every metric against {target}: value (point) and interval (bar) per extractor "
        f"(rows) and source; raw vs L2-normalised features (FID, KID ×10³ on L2){note}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.09, 1, 0.94 if note else 0.96))
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    plt.close(figure)
    return path


def write_metrics_figure(metric_files: Sequence[str], target: str, path: str | Path,
                         kinds: dict[str, str] | None = None) -> Path:
    """The figure of `target` from compute_metrics.py JSON files (those against other
    targets are skipped; none against `target` is a ValueError naming it)."""
    from fidlens.paper_tables import read_entries

    entries = [e for e in read_entries(metric_files, kinds) if e.target == target]
    return metrics_figure(entries, target, path)
