"""Paired confidence intervals of the difference between two sources against one target.

The I/O edge around `fidlens.metrics.intervals.difference_intervals`: it takes the metric
documents (compute_metrics.py's JSON, made with --intervals) and the per-resample values
(their --draws CSVs) of comparisons that share a target, checks that they were subsampled the
same way (the same target subsets in every resample: `interval_target_plan`), and returns a
JSON-ready document and long-format rows for every pair of sources, A - B in the order given.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fidlens.metric_specs import METRIC_KEYS
from fidlens.metrics import interval_bounds as iv
from fidlens.provenance import RANDOM_INIT, package_versions

NORMALIZATIONS = ("raw", "l2")
# What must agree between the comparisons (beside the target's subsets).
SHARED = (
    "extractor", "target_name", "n_target", "layer", "feature_layer", "interval_resamples",
    "interval_level", "interval_seed", "interval_subset_fraction", "interval_target_plan",
)  # fmt: skip
LONG_COLUMNS = [
    "extractor", "weights", "target", "source_a", "source_b", "normalization", "metric",
    "difference", "ci_low", "ci_high", "excludes_zero", "value_a", "value_b", "n_a", "n_b",
    "n_target", "interval_method", "interval_resamples", "interval_level", "interval_seed",
    "interval_subset_size", "metrics_file_a", "metrics_file_b",
]  # fmt: skip
# Metrics in report order (kid_std has no interval, so no difference).
ORDER = [key for keys in METRIC_KEYS.values() for key in keys if key != "kid_std"]


def read_draws(text_or_frame) -> dict[str, dict[str, np.ndarray]]:
    """{block: {metric: (R,) values}} from compute_metrics.py's draws CSV (a DataFrame, or a
    path for pandas)."""
    frame = text_or_frame if isinstance(text_or_frame, pd.DataFrame) else pd.read_csv(text_or_frame)
    draws: dict[str, dict[str, np.ndarray]] = {}
    for column in frame.columns:
        block, _, name = column.partition("_")
        if block in NORMALIZATIONS and name:
            draws.setdefault(block, {})[name] = frame[column].to_numpy(dtype=np.float64)
    return draws


def paired_differences(
    documents: Sequence[dict],
    draws: Sequence[dict],
    files: Sequence[str] | None = None,
) -> tuple[dict, list[dict]]:
    """Every pair (A, B), A before B, of the comparisons `documents` (metric JSONs with
    intervals) and their `draws` (`read_draws`): the difference metric(A) - metric(B) of each
    metric and normalisation with its paired interval.

    Returns (document, rows): the document holds the shared settings and a list "differences"
    of {source_a, source_b, raw: {fid: d, fid_ci: [lo, hi], ...}, l2: {...}}; rows are the long
    table (LONG_COLUMNS). Raises ValueError (naming the files) for fewer than two comparisons,
    a document without intervals, or comparisons that do not share the target, its subsets or
    the interval settings.
    """
    files = list(files) if files is not None else [f"comparison {i}" for i in range(len(documents))]
    if len(documents) < 2 or len(documents) != len(draws) or len(files) != len(documents):
        raise ValueError("paired differences need at least two comparisons, each with its draws")
    for doc, name in zip(documents, files, strict=True):
        if "interval_target_plan" not in doc:
            raise ValueError(f"{name}: no intervals (compute it with --intervals)")
    first = documents[0]
    for doc, name in zip(documents[1:], files[1:], strict=True):
        differ = [key for key in SHARED if doc.get(key) != first.get(key)]
        if differ:
            raise ValueError(
                f"{name} and {files[0]} cannot be paired: they differ in "
                + ", ".join(f"{key} ({doc.get(key)!r} vs {first.get(key)!r})" for key in differ)
            )
    for found, doc, name in zip(draws, documents, files, strict=True):
        for block in NORMALIZATIONS:
            for values in (found.get(block) or {}).values():
                if len(values) != doc["interval_resamples"]:
                    raise ValueError(
                        f"{name}: {len(values)} draws, but interval_resamples is "
                        f"{doc['interval_resamples']}"
                    )
    level = float(first["interval_level"])
    pairs, rows = [], []
    for a, b in itertools.combinations(range(len(documents)), 2):
        doc_a, doc_b = documents[a], documents[b]
        fractions = [*doc_a["interval_fractions"], doc_b["interval_fractions"][0]]
        scale = iv.interval_scale(*fractions)
        entry = {
            "source_a": doc_a["source_name"],
            "source_b": doc_b["source_name"],
            "n_a": doc_a["n_source"],
            "n_b": doc_b["n_source"],
            "metrics_files": [files[a], files[b]],
        }
        for block in NORMALIZATIONS:
            if block not in doc_a or block not in doc_b:
                continue
            extra = {"kid_mean": _kid_extra(doc_a, doc_b, block)}
            found = iv.difference_intervals(
                doc_a[block], doc_b[block], draws[a].get(block, {}), draws[b].get(block, {}),
                scale, level, extra,
            )  # fmt: skip
            entry[block] = found
            for name in [key for key in ORDER if key in found]:
                low, high = found[f"{name}_ci"]
                rows.append({
                    "extractor": first["extractor"],
                    "weights": _weights(doc_a, doc_b),
                    "target": first["target_name"],
                    "source_a": entry["source_a"],
                    "source_b": entry["source_b"],
                    "normalization": block,
                    "metric": name,
                    "difference": found[name],
                    "ci_low": low,
                    "ci_high": high,
                    "excludes_zero": bool(low > 0 or high < 0),
                    "value_a": doc_a[block][name],
                    "value_b": doc_b[block][name],
                    "n_a": entry["n_a"],
                    "n_b": entry["n_b"],
                    "n_target": first["n_target"],
                    "interval_method": first["interval_method"],
                    "interval_resamples": first["interval_resamples"],
                    "interval_level": level,
                    "interval_seed": first["interval_seed"],
                    "interval_subset_size": "/".join(
                        str(n) for n in (doc_a["interval_subset_size"][0],
                                         doc_b["interval_subset_size"][0],
                                         first["interval_subset_size"][1])),  # fmt: skip
                    "metrics_file_a": files[a],
                    "metrics_file_b": files[b],
                })  # fmt: skip
        pairs.append(entry)
    document = {key: first.get(key) for key in SHARED}
    document.update(
        weights=_weights(*documents),
        preprocess=first.get("preprocess"),
        interval_method=first["interval_method"],
        interval_subset_size={doc["source_name"]: doc["interval_subset_size"][0]
                              for doc in documents} | {"target": first["interval_subset_size"][1]},
        sources=[doc["source_name"] for doc in documents],
        metrics_files=files,
        differences=pairs,
        package_versions=package_versions(),
    )  # fmt: skip
    return document, rows


def long_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _kid_extra(doc_a: dict, doc_b: dict, block: str) -> float:
    """Variance KID's random subsets add to kid_mean(A) - kid_mean(B) given the data, at most
    (std_A + std_B)^2 / subsets (the two may use the same subset indices, so the bound, not
    the sum of the variances)."""
    if doc_a.get("kid_method") != "subsets" or doc_b.get("kid_method") != "subsets":
        return 0.0
    std_a, std_b = doc_a[block].get("kid_std"), doc_b[block].get("kid_std")
    subsets = min(int(doc_a["kid_subsets"]), int(doc_b["kid_subsets"]))
    if std_a is None or std_b is None or subsets <= 1:
        return 0.0
    return (math.fabs(std_a) + math.fabs(std_b)) ** 2 / subsets


def _weights(*documents: dict) -> str:
    labels = {doc.get("weights") for doc in documents}
    if RANDOM_INIT in labels:
        return RANDOM_INIT
    return labels.pop() if len(labels) == 1 else "mixed"
