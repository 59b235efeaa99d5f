"""Figures of the experiments, from their JSON results (matplotlib with the Agg backend)."""

from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from fidlens.files import atomic_path  # noqa: E402
from fidlens.provenance import RANDOM_INIT  # noqa: E402

TOP_CLASSES = 20  # classes shown in a Top-1 histogram (by real count, then generated)
DPI = 130


def _label(entry: dict) -> str:
    return entry["extractor"] + (" (random-init)" if entry["weights"] == RANDOM_INIT else "")


def _save(figure, path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format=os.path.splitext(str(path))[1][1:] or "png")
    plt.close(figure)


def _footer(figure, result: dict) -> None:
    figure.text(0.01, 0.005, textwrap.fill(result["note"], 170), fontsize=7, va="bottom",
                color="0.35")


def top1_figure(result: dict, path) -> None:
    """Real, generated and Top-1-matched generated class histograms, and FID before/after."""
    sns.set_theme(style="whitegrid", context="notebook")
    rows = sorted(result["histograms"], key=lambda h: (-h["real"], -h["generated_before"]))
    shown, rest = rows[:TOP_CLASSES], rows[TOP_CLASSES:]
    names = [textwrap.shorten(h["name"], 22, placeholder="…") for h in shown]
    series = {
        f"real ({result['target_name']})": [h["real"] for h in shown],
        f"generated ({result['source_name']})": [h["generated_before"] for h in shown],
        "generated, Top-1 matched": [h["generated_after"] for h in shown],
    }
    if rest:
        names.append(f"{len(rest)} other classes")
        for key, field in zip(series, ("real", "generated_before", "generated_after"),
                              strict=True):
            series[key].append(sum(h[field] for h in rest))
    figure, (bars, fids) = plt.subplots(
        1, 2, figsize=(15, 6.2), gridspec_kw={"width_ratios": [3, 1.1]}
    )
    x = np.arange(len(names))
    width = 0.27
    colours = sns.color_palette("deep", 3)
    for offset, (key, values), colour in zip((-1, 0, 1), series.items(), colours, strict=True):
        bars.bar(x + offset * width, values, width, label=key, color=colour)
    bars.set_xticks(x, names, rotation=60, ha="right", fontsize=9)
    bars.set_ylabel("images")
    bars.set_xlabel(f"Top-1 class ({result['classifier']})")
    bars.set_title(
        f"Top-1 class histograms: {result['source_name']} → {result['target_name']} "
        f"(unmatched real mass {result['unmatched_mass']:.0%})"
    )
    bars.legend(fontsize=9)
    if result.get("matched", True):
        _fid_bars(fids, result["extractors"], "Top-1 matched")
    else:
        fids.axis("off")
        fids.text(0.5, 0.5, "Top-1 matching not possible:\n"
                  + textwrap.fill(result["not_matched_because"], 40)
                  + "\n\nFID as generated:\n"
                  + "\n".join(f"{_label(e)}: {e['fid_before']:.4g}"
                               for e in result["extractors"]),
                  ha="center", va="center", fontsize=9, transform=fids.transAxes)
    figure.suptitle(
        f"Top-1 histogram matching with {result['classifier']}'s classes "
        f"({result['n_source']} generated, {result['n_target']} real images)",
        fontsize=13,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    _footer(figure, result)
    _save(figure, path)


def _fid_bars(axis, entries, after_label: str) -> None:
    """Relative FID change (%) per extractor, the resampled mean with its std."""
    labels = [_label(e) for e in entries]
    change = [100 * (e["relative_change"] or 0.0) for e in entries]
    spread = [
        100 * e["fid_after"]["std"] / e["fid_before"] if e["fid_before"] else 0.0
        for e in entries
    ]
    control = [100 * (e.get("control_relative_change") or 0.0) for e in entries]
    colours = ["tab:green" if value < 0 else "tab:red" for value in change]
    y = np.arange(len(labels))
    axis.barh(y, change, xerr=spread, color=colours, alpha=0.8, capsize=3, label=after_label)
    axis.scatter(control, y, marker="D", color="0.15", zorder=3,
                 label="control: same repeats, random images")
    axis.legend(fontsize=7, loc="best")
    axis.set_yticks(y, labels, fontsize=9)
    axis.invert_yaxis()
    axis.axvline(0, color="0.2", linewidth=0.8)
    axis.set_xlabel(f"FID change, {after_label} vs as generated (%)")
    axis.set_title("FID of each extractor")
    for position, (value, entry) in enumerate(zip(change, entries, strict=True)):
        axis.annotate(
            f"FID {entry['fid_before']:.3g} → {entry['fid_after']['mean']:.3g}",
            (max(value, 0.0), position), xytext=(4, -14), textcoords="offset points",
            ha="left", fontsize=8,
        )


def topn_figure(result: dict, path) -> None:
    """Relative FID change against N, one line per extractor (resampled: solid, with the
    spread over repeats; weighted statistics: dashed)."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, (lines, mismatch) = plt.subplots(
        1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    ns = [entry["n"] for entry in result["by_n"]]
    names = [e["extractor"] for e in result["by_n"][0]["extractors"]]
    colours = dict(zip(names, sns.color_palette("deep", len(names)), strict=True))
    for index, name in enumerate(names):
        entries = [entry["extractors"][index] for entry in result["by_n"]]
        change = [100 * (e["relative_change"] or 0.0) for e in entries]
        spread = [100 * e["fid_after"]["std"] / e["fid_before"] for e in entries]
        weighted = [100 * (e["weighted_relative_change"] or 0.0) for e in entries]
        lines.errorbar(ns, change, yerr=spread, marker="o", capsize=3, color=colours[name],
                       label=f"{_label(entries[0])}: resampled")
        lines.plot(ns, weighted, linestyle="--", marker=".", color=colours[name], alpha=0.7,
                   label=f"{_label(entries[0])}: weighted statistics")
    lines.axhline(0, color="0.2", linewidth=0.8)
    lines.set_xscale("log")
    lines.set_xticks(ns, [str(n) for n in ns])
    lines.set_xlabel("N (Top-N classes matched)")
    lines.set_ylabel("FID change vs as generated (%)")
    lines.set_title(f"FID after Top-N matching: {result['source_name']} → {result['target_name']}")
    lines.legend(fontsize=8)
    mismatch.plot(ns, [100 * e["mean_mismatch_before"] for e in result["by_n"]], marker="o",
                  label="as generated")
    mismatch.plot(ns, [100 * e["mean_mismatch_after"] for e in result["by_n"]], marker="o",
                  label="Top-N matched (weighted)")
    mismatch.set_xscale("log")
    mismatch.set_xticks(ns, [str(n) for n in ns])
    mismatch.set_xlabel("N")
    mismatch.set_ylabel("Top-N class-frequency mismatch (%)")
    mismatch.set_title("Mean N-hot mismatch (TV / N)")
    mismatch.legend(fontsize=8)
    figure.suptitle(
        f"Top-N matching with {result['classifier']}'s classes "
        f"({result['n_source']} generated, {result['n_target']} real images)",
        fontsize=13,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    _footer(figure, result)
    _save(figure, path)


def resampling_figure(result: dict, path) -> None:
    """The optimisation trace of the chosen extractor's FID, and every extractor's change."""
    sns.set_theme(style="whitegrid", context="notebook")
    figure, (trace, fids) = plt.subplots(1, 2, figsize=(13, 5.4))
    iterations = [0] + [point["iteration"] for point in result["trace"]]
    values = [result["fid_uniform"]] + [point["fid"] for point in result["trace"]]
    trace.plot(iterations, values, marker="." if len(values) < 60 else None)
    trace.set_xlabel("L-BFGS iteration")
    trace.set_ylabel(f"FID of {result['optimised_extractor']}\n(weighted statistics)")
    trace.set_title(
        f"L-BFGS: {result['fid_uniform']:.4g} → {result['fid_optimum']:.4g} "
        f"(effective sample size {result['effective_sample_size']:.0f} of {result['size']})",
        fontsize=11,
    )
    _fid_bars(fids, result["extractors"], "resampled")
    figure.suptitle(
        f"FID-minimising resampling: {result['source_name']} → {result['target_name']} "
        f"({result['n_source']} generated, {result['n_target']} real images)",
        fontsize=13,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    _footer(figure, result)
    _save(figure, path)


FIGURES = {"top1": top1_figure, "topn": topn_figure, "resampling": resampling_figure}


def experiment_figure(result: dict, path) -> None:
    FIGURES[result["experiment"]](result, path)
