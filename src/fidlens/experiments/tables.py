"""Tables of the experiments and of the Inception Score: one long CSV each, and Markdown.

Pure functions: parsed JSON results in, a DataFrame or Markdown text out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from fidlens.experiments.run import result_rows
from fidlens.provenance import RANDOM_INIT

RANDOM_INIT_WARNING = (
    "> **Warning: rows marked (random-init) use randomly initialised network weights** (the "
    "official file was not found, or `weights: random` was set): they show the workflow "
    "running, not what the seed paper measured."
)
TITLES = {
    "top1": "Top-1 histogram matching",
    "topn": "Top-N matching",
    "resampling": "FID-minimising resampling",
}


def experiment_table(results: Sequence[dict]) -> pd.DataFrame:
    """Every experiment result's rows in one long table (one row per extractor, and N)."""
    rows = [row for result in results for row in result_rows(result)]
    return pd.DataFrame(rows)


def _label(extractor: str, weights: str) -> str:
    return f"{extractor} ({RANDOM_INIT})" if weights == RANDOM_INIT else extractor


def _percent(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):+.1f} %"


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.{digits}g}"


def _pipe(header: list[str], rows: list[list[str]], right_from: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i < right_from else "---:" for i in range(len(header)))
                 + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def experiment_markdown(results: Sequence[dict], sources: Sequence[str] = ()) -> str:
    """One section per experiment; FID values, and their change relative to the generated set
    as it is, beside the control (the same repeated images chosen at random)."""
    parts = [
        "# Experiment tables (seed 002: ImageNet classes and FID)",
        "",
        "FID of the features as cached, source (generated) against target (real). "
        "*As generated*: the set itself; *after*: the mean over resamples of the same size, "
        "drawn with replacement; *control*: each resample's repetitions moved to random images "
        "(how much repeating images alone moves FID). Every number, with its provenance, is in "
        "results/tables/experiments.csv and the per-comparison JSON files.",
    ]
    if sources:
        parts += ["", f"Made by workflow_scripts/experiment_tables.py from {len(sources)} files."]
    notes = sorted({result["note"] for result in results})
    parts += [""] + [f"> {note}." for note in notes]
    if any(row["weights"] == RANDOM_INIT for r in results for row in result_rows(r)):
        parts += ["", RANDOM_INIT_WARNING]
    for experiment in ("top1", "topn", "resampling"):
        chosen = [r for r in results if r["experiment"] == experiment]
        if chosen:
            parts += ["", f"## {TITLES[experiment]}", ""] + _SECTIONS[experiment](chosen)
    return "\n".join(parts) + "\n"


def _top1_section(results) -> list[str]:
    first = results[0]
    lines = [
        f"Classes: {first['classifier']}'s Top-1 predictions. Unmatched real mass: the share "
        "of real images whose Top-1 class no generated image predicts; it is spread over the "
        "matchable classes in proportion to their real counts, and generated images of classes "
        "the real set lacks are never drawn.",
        "",
    ]
    header = ["Source", "Target", "Extractor", "N", "unmatched real mass",
              "FID as generated", "FID Top-1 matched", "change", "control change"]
    rows = []
    for result in results:
        for entry in result["extractors"]:
            rows.append([
                result["source_name"], result["target_name"],
                _label(entry["extractor"], entry["weights"]),
                f"{entry['n_source']}/{entry['n_target']}",
                f"{100 * result['unmatched_mass']:.0f} %",
                _number(entry["fid_before"]),
                _after(entry),
                _percent(entry["relative_change"]),
                _percent(entry["control_relative_change"]),
            ])
    return lines + _pipe(header, rows, 3)


def _after(entry) -> str:
    after = entry["fid_after"]
    if after["mean"] is None:
        return "not possible (no class in common)"
    return f"{_number(after['mean'])} ± {_number(after['std'], 2)}"


def _topn_section(results) -> list[str]:
    ns = [entry["n"] for entry in results[0]["by_n"]]
    lines = [
        "Weights that match the sets' N-hot Top-N class statistics (L-BFGS), then every "
        "extractor's FID over resamples with those weights: change relative to the set as "
        "generated (control change in brackets).",
        "",
    ]
    header = ["Source", "Target", "Extractor", "FID as generated"] + [f"N = {n}" for n in ns]
    rows = []
    for result in results:
        names = [e["extractor"] for e in result["by_n"][0]["extractors"]]
        for index, _ in enumerate(names):
            entries = [entry["extractors"][index] for entry in result["by_n"]]
            rows.append(
                [result["source_name"], result["target_name"],
                 _label(entries[0]["extractor"], entries[0]["weights"]),
                 _number(entries[0]["fid_before"])]
                + [f"{_percent(e['relative_change'])} ({_percent(e['control_relative_change'])})"
                   for e in entries]
            )
        mismatch = [
            f"{100 * e['mean_mismatch_before']:.0f} → {100 * e['mean_mismatch_after']:.0f} %"
            for e in result["by_n"]
        ]
        rows.append([result["source_name"], result["target_name"],
                     "*Top-N class mismatch (TV / N)*", ""] + mismatch)
    return lines + _pipe(header, rows, 3)


def _resampling_section(results) -> list[str]:
    first = results[0]
    lines = [
        f"Weights that minimise {first['optimised_extractor']}'s FID (L-BFGS on log-weights, "
        f"analytic gradient; at most {first['max_iterations']} iterations), then every "
        "extractor's FID with the weighted statistics and over resamples with those weights.",
        "",
    ]
    header = ["Source", "Target", "Extractor", "ESS", "FID as generated", "FID weighted",
              "FID resampled", "change", "control change"]
    rows = []
    for result in results:
        for entry in result["extractors"]:
            chosen = " (optimised)" if entry["extractor"] == result["optimised_extractor"] else ""
            rows.append([
                result["source_name"], result["target_name"],
                _label(entry["extractor"], entry["weights"]) + chosen,
                f"{result['effective_sample_size']:.0f}/{result['size']}",
                _number(entry["fid_before"]),
                _number(entry["fid_weighted"]),
                _after(entry),
                _percent(entry["relative_change"]),
                _percent(entry["control_relative_change"]),
            ])
    return lines + _pipe(header, rows, 3)


_SECTIONS = {"top1": _top1_section, "topn": _topn_section, "resampling": _resampling_section}


# ---------------------------------------------------------------------------------------------
# Inception Score
# ---------------------------------------------------------------------------------------------

IS_COLUMNS = [
    "extractor", "weights", "dataset", "inception_score_mean", "inception_score_std", "n",
    "splits", "shuffle_seed", "classes", "logits_asked", "logits_used", "preprocess",
    "weights_sha256", "cache_path",
]


def inception_score_table(docs: Sequence[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{key: doc.get(key) for key in IS_COLUMNS} for doc in docs])
    return frame[IS_COLUMNS]


def inception_score_markdown(frame: pd.DataFrame) -> str:
    parts = [
        "# Inception Score",
        "",
        "exp(E_x KL(p(y|x) ‖ p(y))) from each classifier's cached logits, per dataset (no "
        "target): mean ± standard deviation over the splits. *Logits* says which were used.",
    ]
    if (frame["weights"] == RANDOM_INIT).any():
        parts += ["", RANDOM_INIT_WARNING]
    small = frame[frame["n"] < 5000]
    if len(small):
        low, high = int(small["n"].min()), int(small["n"].max())
        sizes = f"{low}" if low == high else f"{low}–{high}"
        parts += ["", f"> Sets of {sizes} images: the Inception Score is usually reported on "
                  "50,000 in 10 splits (it grows with the split size), so these are not "
                  "comparable with published scores."]
    header = ["Extractor", "Dataset", "logits", "N", "splits", "IS"]
    rows = [
        [_label(row.extractor, row.weights), row.dataset, str(row.logits_used).split(":")[0],
         str(row.n), str(row.splits),
         f"{row.inception_score_mean:.4f} ± {row.inception_score_std:.4f}"]
        for row in frame.itertuples()
    ]
    return "\n".join(parts + [""] + _pipe(header, rows, 3)) + "\n"
