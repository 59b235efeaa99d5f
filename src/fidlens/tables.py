"""Tables of metric results: one long CSV, and Markdown laid out like the seed paper's tables.

Table 1 (features as extracted): one row per extractor x source, columns FID, KID, P, R, D, C.
Table 2 (L2-normalised features): FID x 10^3 and KID x 10^3, as in the paper's normalised tables.
Rows computed with random-init weights are labelled "(random-init)" and a warning stands above
each table that holds them: such numbers show the workflow running, not what a metric measures.

Pure functions: metric documents (parsed JSON) in, a DataFrame or Markdown text out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from fidlens.provenance import RANDOM_INIT

# Long-format columns, in order; provenance columns follow the numbers.
LONG_COLUMNS = [
    "extractor",
    "weights",
    "source",
    "target",
    "normalization",
    "metric",
    "value",
    "n_source",
    "n_target",
    "ci_low",
    "ci_high",
    "feature_layer",
    "preprocess",
    "weights_sha256",
    "seed",
    "kid_method",
    "kid_subsets",
    "kid_subset_size",
    "k_precision_recall",
    "k_density_coverage",
    "interval_method",
    "interval_resamples",
    "interval_level",
    "interval_seed",
    "interval_subset_size",
    "fidlens_version",
    "metrics_file",
    "note",  # why a value is missing: "unavailable: target given as statistics"
]
# Metric names as compute_metrics.py writes them, in report order.
METRIC_ORDER = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage")
NORMALIZATIONS = ("raw", "l2")

# metric name in the long table -> (column title, scale, decimals)
TABLE_1 = {
    "fid": ("FID", 1.0, 2),
    "kid_mean": ("KID", 1.0, 4),
    "precision": ("P", 1.0, 3),
    "recall": ("R", 1.0, 3),
    "density": ("D", 1.0, 3),
    "coverage": ("C", 1.0, 3),
}
# Table 1's CMMD column, where a row has CMMD (CLIP-type extractors; x1000 already, as
# Jayasumana et al. report it)
CMMD_COLUMN = {"cmmd": ("CMMD", 1.0, 3)}
TABLE_2 = {
    # L2-normalised features live on the unit sphere: the numbers are small, so both are
    # shown x1000, as in the seed paper's Tables II and IV.
    "fid": ("FID×10³", 1000.0, 2),
    "kid_mean": ("KID×10³", 1000.0, 3),
}
NORMALIZATION_TITLES = {
    "raw": "Table 1: features as extracted",
    "l2": "Table 2: L2-normalised features (FID×10³ and KID×10³)",
}

RANDOM_INIT_WARNING = (
    "> **Warning: rows marked (random-init) use randomly initialised network weights**, "
    "not the official pretrained file (it was not found, or `weights: random` was set). "
    "They show the workflow running; they do not measure what the metric measures and are not "
    'comparable with published numbers. See README.md, "Weights", to use the real file.'
)
RANDOM_INIT_REMINDER = (
    "> **Warning:** rows marked (random-init) use randomly initialised weights (see above)."
)


def metric_rows(doc: dict, metrics_file: str | None = None) -> list[dict]:
    """Flatten one compute_metrics.py document into long rows, one per normalisation x metric.

    The document holds a block of numbers per normalisation ("raw", "l2") beside the
    comparison's settings and provenance; every row repeats the provenance. A number that is
    not defined (null, e.g. kid_std when KID is one estimate on the whole sets) keeps its row
    with the value None: an empty cell in the CSV, "–" in the Markdown tables.
    """
    for key in ("source_name", "target_name", "extractor", "weights"):
        if key not in doc:
            raise ValueError(f"{metrics_file or 'metric document'}: no {key!r} key")
    provenance = {
        "extractor": doc["extractor"],
        "weights": doc["weights"],
        "source": doc["source_name"],
        "target": doc["target_name"],
        "n_source": doc.get("n_source"),
        "n_target": doc.get("n_target"),
        "feature_layer": doc.get("feature_layer"),
        "preprocess": doc.get("preprocess"),
        "weights_sha256": _shared_value(
            doc.get("source_weights_sha256"), doc.get("target_weights_sha256")
        ),
        "seed": doc.get("seed"),
        "kid_method": doc.get("kid_method"),
        "kid_subsets": doc.get("kid_subsets"),
        "kid_subset_size": doc.get("kid_subset_size"),
        "k_precision_recall": doc.get("k_precision_recall"),
        "k_density_coverage": doc.get("k_density_coverage"),
        "interval_method": doc.get("interval_method"),
        "interval_resamples": doc.get("interval_resamples"),
        "interval_level": doc.get("interval_level"),
        "interval_seed": doc.get("interval_seed"),
        "interval_subset_size": _sizes(doc.get("interval_subset_size")),
        "fidlens_version": (doc.get("package_versions") or {}).get("fidlens"),
        "metrics_file": metrics_file,
    }
    rows = []
    for normalization in NORMALIZATIONS:
        values = doc.get(normalization) or {}
        names = [name for name in METRIC_ORDER if name in values]
        names += sorted(name for name in values if name not in METRIC_ORDER)
        names = [name for name in names if not name.endswith("_ci")]
        for name in names:
            low, high = values.get(f"{name}_ci") or (None, None)
            rows.append(
                {
                    **provenance,
                    "normalization": normalization,
                    "metric": name,
                    "value": None if values[name] is None else float(values[name]),
                    "ci_low": low,
                    "ci_high": high,
                    # why a value is missing (a target given only as statistics)
                    "note": (doc.get("unavailable") or {}).get(f"{normalization}.{name}"),
                }
            )
    if not rows:
        raise ValueError(f"{metrics_file or 'metric document'}: holds no raw or l2 metrics")
    return rows


def long_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows in the long layout, columns in LONG_COLUMNS order (missing provenance left empty)."""
    frame = pd.DataFrame(list(rows))
    for column in LONG_COLUMNS:
        if column not in frame:
            frame[column] = None
    extra = [column for column in frame.columns if column not in LONG_COLUMNS]
    return frame[LONG_COLUMNS + extra]


def extractor_label(extractor: str, weights: str) -> str:
    return f"{extractor} ({RANDOM_INIT})" if weights == RANDOM_INIT else extractor


def wide_table(long: pd.DataFrame, normalization: str, columns: dict) -> pd.DataFrame:
    """One row per (extractor, weights, source, target), in first-appearance order; one column
    per metric in `columns` (title, scale, decimals), scaled; absent metrics are NaN. A metric
    with a confidence interval gets it as a (low, high) tuple, scaled, in the column
    "<title> CI" (`markdown_table` shows it in the metric's cell)."""
    subset = long[long["normalization"] == normalization]
    keys = ["extractor", "weights", "source", "target"]
    rows = []
    for key, group in subset.groupby(keys, sort=False):
        values = dict(zip(group["metric"], group["value"], strict=True))
        lows = dict(zip(group["metric"], group.get("ci_low", [None] * len(group)), strict=True))
        highs = dict(zip(group["metric"], group.get("ci_high", [None] * len(group)), strict=True))
        first = group.iloc[0]
        row = {
            "Extractor": extractor_label(key[0], key[1]),
            "Source": key[2],
            "Target": key[3],
            "N": f"{_count(first['n_source'])}/{_count(first['n_target'])}",
        }
        for metric, (title, scale, _) in columns.items():
            value = values.get(metric)  # NaN or None where not computed or not defined
            row[title] = math.nan if value is None else float(value) * scale
            if _number(lows.get(metric)) and _number(highs.get(metric)):
                row[f"{title} CI"] = (float(lows[metric]) * scale, float(highs[metric]) * scale)
        rows.append(row)
    titles = ["Extractor", "Source", "Target", "N", *(title for title, _, _ in columns.values())]
    with_ci = [f"{t} CI" for t in titles if any(f"{t} CI" in row for row in rows)]
    return pd.DataFrame(rows, columns=titles + with_ci)


def markdown_table(frame: pd.DataFrame, decimals: dict[str, int]) -> str:
    """A GitHub pipe table; numbers right-aligned with fixed decimals, NaN as an en dash; a
    number with an interval (column "<title> CI") reads "value [low, high]"."""
    shown = [column for column in frame.columns if not str(column).endswith(" CI")]
    header = "| " + " | ".join(shown) + " |"
    rule = "|" + "|".join("---:" if column in decimals else "---" for column in shown) + "|"
    lines = [header, rule]
    for _, row in frame.iterrows():
        cells = [
            _format(row[column], decimals[column]) if column in decimals else str(row[column])
            for column in shown
        ]
        for index, column in enumerate(shown):
            interval = row.get(f"{column} CI")
            if column in decimals and isinstance(interval, tuple):
                low, high = (_format(v, decimals[column]) for v in interval)
                cells[index] += f" [{low}, {high}]"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(long: pd.DataFrame, sources: Sequence[str] = ()) -> str:
    """The Markdown file: a short header, then Table 1 and Table 2 where their rows exist."""
    parts = [
        "# Metric tables",
        "",
        "Source = generated set, target = real set; N = images in source/target. "
        "P, R = precision and recall; D, C = density and coverage (k-NN, source against "
        "target). Every number is in results/tables/metrics.csv with its provenance.",
    ]
    if "ci_low" in long and long["ci_low"].notna().any():
        levels = sorted({float(v) for v in long["interval_level"].dropna()})
        level = "/".join(f"{100 * v:g} %" for v in levels) or "the"
        parts.append(
            f"[low, high]: {level} confidence interval of the expected value at these set sizes "
            "(subsampling without replacement; README.md, \"Confidence intervals\")."
        )
    if sources:
        parts.append("")
        parts.append(f"Made by workflow_scripts/make_tables.py from {len(sources)} metric files.")
    warned = False
    for normalization, columns in (("raw", TABLE_1), ("l2", TABLE_2)):
        if normalization == "raw" and (long["metric"] == "cmmd").any():
            columns = {**columns, **CMMD_COLUMN}
        frame = wide_table(long, normalization, columns)
        if frame.empty:
            continue
        parts += ["", f"## {NORMALIZATION_TITLES[normalization]}", ""]
        if (long.loc[long["normalization"] == normalization, "weights"] == RANDOM_INIT).any():
            parts += [RANDOM_INIT_REMINDER if warned else RANDOM_INIT_WARNING, ""]
            warned = True
        decimals = {title: places for title, _, places in columns.values()}
        parts.append(markdown_table(frame, decimals))
    parts += unavailable_notes(long)
    return "\n".join(parts) + "\n"


SIGNIFICANT_DIGITS = 3  # at least, so small values (dlib's FID ~0.14) stay comparable


def _format(value, decimals: int) -> str:
    """Fixed decimals, widened where a nonzero value would otherwise keep fewer than
    SIGNIFICANT_DIGITS digits (0.1403 and 0.1422 must not both read 0.14)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value != 0 and math.isfinite(value):
        leading = math.floor(math.log10(abs(value)))  # 10^leading <= |value|
        decimals = max(decimals, SIGNIFICANT_DIGITS - 1 - leading)
    return f"{value:.{decimals}f}"


def _number(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _sizes(value):
    """interval_subset_size [source, target] as "source/target" (one CSV cell)."""
    if value is None:
        return None
    return "/".join(str(int(v)) for v in value) if isinstance(value, list | tuple) else value


def _count(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    return str(int(value))


def _shared_value(a, b):
    if a is None or b is None:
        return a if b is None else b
    return a if a == b else "mixed"


def unavailable_notes(long: pd.DataFrame) -> list[str]:
    """Markdown lines naming every value left out and why (the metric JSON's `unavailable`:
    a target given only as statistics has FID and nothing else)."""
    if "note" not in long or not long["note"].notna().any():
        return []
    lines = ["", "Unavailable values (–):", ""]
    noted = long[long["note"].notna()]
    for (extractor, source, target, note), group in noted.groupby(
        ["extractor", "source", "target", "note"], sort=False
    ):
        names = ", ".join(dict.fromkeys(group["metric"]))
        lines.append(f"- {extractor}, {source} vs {target}: {names} ({note})")
    return lines
