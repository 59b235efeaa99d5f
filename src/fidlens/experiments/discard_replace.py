"""Seed 000 §3.2: discard or replace the generated images closest to known bad samples in w
space, and what FID says about it (its Table 2).

With W_bad and W_good the w codes of the bad and good images of the pair file,

    d_i = ||w_i - mean(W_bad)|| - ||w_i - mean(W_good)||                     (seed 000, §3.2)

is negative when image i is nearer the bad examples' mean than the good ones'. Seed 000 says
"the larger d_i is, the relatively closer sample i is to bad examples" and then selects "the
smallest 1.5 % distance d_i"; by its own formula the SMALLEST d_i are the images closest to the
bad examples, so those are selected here: the `fraction` of the set (at least MIN_SELECTED)
with the smallest d_i (ties: dataset order). Each selected image is replaced by

    w'_i = w_i + mean(W_good) - mean(W_bad)                                  (seed 000, §3.2)

drawn by the generator. Then, with the training set as the reference, per extractor:
FID (the generated set), FID_Replace (the selected images swapped for their replacements),
FID_Delete (the selected images dropped), FID_Sub_Good (the replacements alone) and
FID_Sub_Bad (the selected images alone).

Pure maths first (arrays in, numbers out), then the I/O edges the workflow scripts call
(`select_and_replace`, `discard_replace_fids`), then the table and the sheet.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from fidlens.files import atomic_path, write_text_atomic
from fidlens.metrics import fid_from_features
from fidlens.provenance import RANDOM_INIT, package_versions

DEFAULT_FRACTION = 0.015  # seed 000: 1.5 % of 50k images
MIN_SELECTED = 2  # a covariance (FID_Sub_Good / FID_Sub_Bad) needs two images
SHEET_MAX = 24  # selected images shown on the sheet
UNKNOWN = "unknown"
SELECTION_RULE = (
    "selected: the images with the SMALLEST d_i = ||w_i - mean(W_bad)|| - ||w_i - "
    "mean(W_good)||, i.e. those relatively closest to the bad examples ({count} of {n}: "
    "round({fraction} x {n}), at least {minimum}; ties in dataset order). Seed 000 §3.2 says "
    "'the larger d_i, the relatively closer sample i is to bad examples', which contradicts "
    "its own formula; it selects the smallest d_i, as done here. Replacement: w'_i = w_i + "
    "mean(W_good) - mean(W_bad), drawn by the generator."
)
COLUMNS = ("FID", "FID_Replace", "FID_Delete", "FID_Sub_Good", "FID_Sub_Bad")
KEYS = ("fid", "fid_replace", "fid_delete", "fid_sub_good", "fid_sub_bad")
SELECTION_FIELDS = ("path", "seed", "d", "distance_to_bad_mean", "distance_to_good_mean",
                    "selected", "rank", "replacement_path")  # fmt: skip

# ---------------------------------------------------------------------------------------------
# The maths
# ---------------------------------------------------------------------------------------------


def distance_differences(w, w_bad, w_good) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, distance to mean(W_bad), distance to mean(W_good)), each (N,) float64, for w
    (N, w_dim) and the pairs' W_bad (B, w_dim), W_good (G, w_dim). ValueError for empty or
    mismatched arrays."""
    w, w_bad, w_good = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (w, w_bad,
                                                                               w_good))
    if min(len(w_bad), len(w_good)) == 0:
        raise ValueError("W_bad and W_good need at least one code each")
    if not w.shape[1] == w_bad.shape[1] == w_good.shape[1]:
        raise ValueError(f"w dimensions differ: {w.shape[1]}, {w_bad.shape[1]}, "
                         f"{w_good.shape[1]}")
    to_bad = np.linalg.norm(w - w_bad.mean(axis=0), axis=1)
    to_good = np.linalg.norm(w - w_good.mean(axis=0), axis=1)
    return to_bad - to_good, to_bad, to_good


def selection_count(n: int, fraction: float, minimum: int = MIN_SELECTED) -> int:
    """How many of n images are selected: round(fraction x n) (halves up), at least
    `minimum`, at most n - 2 (FID_Delete keeps two). ValueError when n is too small."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if n < minimum + 2:
        raise ValueError(f"need at least {minimum + 2} images to select {minimum} and keep 2, "
                         f"got {n}")
    return int(min(n - 2, max(minimum, math.floor(fraction * n + 0.5))))


def select_smallest(d, count: int) -> np.ndarray:
    """Indices of the `count` smallest d, smallest first (stable: ties in index order)."""
    return np.argsort(np.asarray(d, dtype=np.float64), kind="stable")[:count]


def replacement_codes(w, w_bad, w_good) -> np.ndarray:
    """w' = w + mean(W_good) - mean(W_bad), (K, w_dim) float64."""
    shift = np.mean(w_good, axis=0) - np.mean(w_bad, axis=0)
    return np.asarray(w, dtype=np.float64) + shift


def table2_fids(generated, train, selected: np.ndarray, replacements) -> dict[str, float]:
    """The five FIDs of seed 000 Table 2 against the training set's features.

    generated (N, D), train (M, D), replacements (K', D) features (rows are images);
    `selected`: the generated rows that were selected (K). FID_Replace uses the generated set
    with the selected rows dropped and the replacements added; FID_Delete drops them;
    FID_Sub_Good / FID_Sub_Bad are the replacements / the selected rows alone. Exact for
    N < D (fid_from_features). ValueError when a set has fewer than 2 rows.
    """
    generated = np.asarray(generated, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    replacements = np.asarray(replacements, dtype=np.float64)
    keep = np.ones(len(generated), dtype=bool)
    keep[np.asarray(selected, dtype=np.int64)] = False
    return {
        "fid": fid_from_features(generated, train),
        "fid_replace": fid_from_features(np.concatenate([generated[keep], replacements]),
                                         train),
        "fid_delete": fid_from_features(generated[keep], train),
        "fid_sub_good": fid_from_features(replacements, train),
        "fid_sub_bad": fid_from_features(generated[~keep], train),
    }


# ---------------------------------------------------------------------------------------------
# Selection and replacement (extractor-independent)
# ---------------------------------------------------------------------------------------------


def pair_codes(pairs, latents_by_dataset: dict, pairs_file: str) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(W_good, W_bad) of a pair file's rows, each side looked up by (dataset, path) in
    `latents_by_dataset` (dataset name -> Latents). ValueError naming the file, the row and
    the datasets with known codes when a side has none."""
    if not pairs:
        raise ValueError(f"{pairs_file} holds no pairs")
    good, bad = [], []
    for index, pair in enumerate(pairs, start=2):
        line = pair.row or index  # the file's line when read from one
        for dataset, path, into in ((pair.good_dataset, pair.good_path, good),
                                    (pair.bad_dataset, pair.bad_path, bad)):
            latents = latents_by_dataset.get(dataset)
            if latents is None:
                raise ValueError(
                    f"{pairs_file} line {line}: no latent codes are known for dataset "
                    f"{dataset!r} (known: {', '.join(latents_by_dataset)}); pairs must name "
                    "images whose w is in a latents file"
                )
            try:
                into.append(latents.w_of([path], f"{dataset}'s latents")[0])
            except KeyError as error:
                raise ValueError(f"{pairs_file} line {line}: {error.args[0]}") from None
    return np.array(good), np.array(bad)


def check_same_generator(recorded: dict, current: dict, latents_file: str, setting: str):
    """The latents were drawn by the generator the config describes: the same adapter, w
    size and image resolution, and the same network file (by sha256) for StyleGAN.
    ValueError naming both otherwise (replacements from another generator mean nothing)."""
    for key in ("adapter", "w_dim", "resolution", "network_sha256"):
        ours, theirs = current.get(key), recorded.get(key)
        if ours is not None and theirs is not None and ours != theirs:
            raise ValueError(
                f"{latents_file} was made by a generator with {key} {theirs!r}, but "
                f"{setting} describes one with {key} {ours!r}: replacements must come from "
                "the generator that drew the set"
            )


def replacement_name(path: str) -> str:
    """Replacement file of a selected image: the same relative path, as PNG."""
    return str(PurePosixPath(path).with_suffix(".png"))


def select_and_replace(
    dataset_paths: Sequence[str],
    latents,
    pairs,
    generator,
    fraction: float = DEFAULT_FRACTION,
    dataset_name: str = "generated",
    pairs_file: str = "pairs.csv",
    latents_by_dataset: dict | None = None,
    batch_size: int = 32,
) -> dict:
    """Select the images of a generated dataset closest to the bad examples and draw their
    replacements.

    dataset_paths: the dataset's images (relative paths, its manifest order); latents: their
    `Latents` (every path must have a w); pairs: the pair file's rows; generator: the
    `Generator` that drew the set; latents_by_dataset: codes of other datasets the pairs may
    name (the dataset's own are added). Returns {"rows": per-image dicts (SELECTION_FIELDS),
    "selected": row indices, "w_replacement": (K, w_dim), "images": (K, H, W, 3) uint8,
    "summary": JSON-ready counts, means and the rule}.
    """
    dataset_paths = list(dataset_paths)
    w = latents.w_of(dataset_paths, f"{dataset_name}'s latents")
    known = {**(latents_by_dataset or {}), dataset_name: latents}
    w_good, w_bad = pair_codes(pairs, known, pairs_file)
    d, to_bad, to_good = distance_differences(w, w_bad, w_good)
    count = selection_count(len(w), fraction)
    selected = select_smallest(d, count)
    names = [replacement_name(dataset_paths[i]) for i in selected]
    if len(set(names)) < len(names):
        raise ValueError(f"{dataset_name}: two selected images share a replacement name "
                         f"({sorted(n for n in names if names.count(n) > 1)[:3]}): rename "
                         "images that differ only in their extension")
    w_new = replacement_codes(w[selected], w_bad, w_good)
    images = generator.synthesis(w_new, batch_size=batch_size, progress=True)
    seeds = None
    if latents.seeds is not None:
        seeds = latents.seeds[latents.rows(dataset_paths)]
    rank = np.full(len(w), -1)
    rank[selected] = np.arange(1, count + 1)
    rows = [
        {
            "path": path,
            "seed": "" if seeds is None else int(seeds[i]),
            "d": float(d[i]),
            "distance_to_bad_mean": float(to_bad[i]),
            "distance_to_good_mean": float(to_good[i]),
            "selected": bool(rank[i] > 0),
            "rank": int(rank[i]) if rank[i] > 0 else "",
            "replacement_path": replacement_name(path) if rank[i] > 0 else "",
        }
        for i, path in enumerate(dataset_paths)
    ]
    truth_selected = generator.known_defective(w[selected])
    truth_replaced = generator.known_defective(w_new)
    truth_all = generator.known_defective(w)
    summary = {
        "dataset": dataset_name,
        "n_images": len(w),
        "n_pairs": len(pairs),
        "fraction": float(fraction),
        "n_selected": int(count),
        "rule": SELECTION_RULE.format(count=count, n=len(w), fraction=fraction,
                                      minimum=MIN_SELECTED),
        "mean_w_bad": w_bad.mean(axis=0).tolist(),
        "mean_w_good": w_good.mean(axis=0).tolist(),
        "shift_norm": float(np.linalg.norm(w_good.mean(axis=0) - w_bad.mean(axis=0))),
        "d_threshold": float(d[selected[-1]]),
        "generator": generator.provenance(),
    }
    if truth_all is not None:
        summary["ground_truth"] = {
            "defective_in_set": int(truth_all.sum()),
            "selected_in_defective_region": int(truth_selected.sum()),
            "replacements_in_defective_region": int(truth_replaced.sum()),
        }
    return {"rows": rows, "selected": selected, "w_replacement": w_new, "images": images,
            "summary": summary}


def write_selection_outputs(result: dict, out_dir, selection_csv, about_json, latents_out,
                            sheet_png, dataset_images, source_description: dict) -> None:
    """Write the replacement PNGs under out_dir (the selected images' relative paths), their
    w (a latents file), the per-image selection CSV, the JSON summary with provenance, and
    the sheet of selected images (read from `dataset_images`, an ImageSource) beside their
    replacements."""
    from PIL import Image

    from fidlens.datasets import decode_rgb
    from fidlens.generators.latents import Latents, write_latents

    out_dir = Path(out_dir)
    chosen = [result["rows"][i] for i in result["selected"]]
    for row, image in zip(chosen, result["images"], strict=True):
        target = out_dir / row["replacement_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    summary = result["summary"]
    write_latents(
        latents_out,
        Latents(paths=[row["replacement_path"] for row in chosen], w=result["w_replacement"],
                attrs={"generator": json.dumps(summary["generator"], sort_keys=True),
                       "replaces": json.dumps([row["path"] for row in chosen])}),
        description=f"replacements w' = w + mean(W_good) - mean(W_bad) of the selected "
        f"images of {summary['dataset']}",
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SELECTION_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["rows"])
    write_text_atomic(selection_csv, buffer.getvalue())
    about = {**summary, **source_description, "package_versions": package_versions()}
    write_text_atomic(about_json, json.dumps(about, indent=2, sort_keys=True) + "\n")
    originals = [decode_rgb(dataset_images.read_bytes(row["path"])) for row in
                 chosen[:SHEET_MAX]]
    selection_sheet(originals, list(result["images"][:SHEET_MAX]), chosen[:SHEET_MAX],
                    summary, sheet_png)


def run_selection(
    images,
    latents_file,
    pairs_file,
    generator_spec: dict,
    out: dict,
    dataset_name: str,
    manifest=None,
    fraction: float = DEFAULT_FRACTION,
    device: str = "auto",
    batch_size: int = 32,
    pair_latents: dict | None = None,
) -> dict:
    """The workflow's selection step for one generated dataset: read its images (folder or
    zip; `manifest`: its manifest, whose order and paths are used), latents and pair file
    (`pair_latents`: name -> latents file of other datasets the pairs name, e.g. probes),
    load the generator `generator_spec` describes ({adapter, network, trust_pickle,
    truncation_psi, resolution}), check that it drew the latents, select, draw the
    replacements and write `out` = {replacements, replacement_latents, selection, about,
    sheet}. Returns the summary."""
    from fidlens.datasets import open_source, read_manifest
    from fidlens.generators import load_generator
    from fidlens.generators.latents import read_latents
    from fidlens.pairs import read_pairs

    setting = f"discard_replace.datasets.{dataset_name}.generator"
    source = open_source(images, dataset_name)
    paths = [row.path for row in read_manifest(manifest)] if manifest else source.images
    latents = read_latents(latents_file)
    generator = load_generator(generator_spec, device=device, setting=setting)
    check_same_generator(latents.generator, generator.provenance(), str(latents_file), setting)
    psi = latents.attrs.get("truncation_psi")
    wanted = generator_spec.get("truncation_psi")
    if psi is not None and wanted is not None and float(psi) != float(wanted):
        raise ValueError(f"{latents_file} was drawn with truncation_psi {psi}, but {setting} "
                         f"says {wanted}")
    others = {name: read_latents(path) for name, path in (pair_latents or {}).items()}
    result = select_and_replace(paths, latents, read_pairs(pairs_file), generator, fraction,
                                dataset_name, str(pairs_file), latents_by_dataset=others,
                                batch_size=batch_size)
    write_selection_outputs(
        result, out["replacements"], out["selection"], out["about"],
        out["replacement_latents"], out["sheet"], source,
        {"images": str(images), "latents_file": str(latents_file),
         "pairs_file": str(pairs_file), "truncation_psi": wanted,
         "pair_latents": {name: str(path) for name, path in (pair_latents or {}).items()}},
    )
    return result["summary"]


def read_selection(path: str | os.PathLike) -> list[dict]:
    """The selected rows of a selection CSV (rank order): path, replacement_path, d."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["selected"] == "True"]
    if not rows:
        raise ValueError(f"{path} selects no image")
    return sorted(rows, key=lambda row: int(row["rank"]))


# ---------------------------------------------------------------------------------------------
# FIDs per extractor (from the caches)
# ---------------------------------------------------------------------------------------------


def training_set_note(name: str) -> str | None:
    """What the demo's training set is (it is no real photographs), for the outputs."""
    from fidlens.generators import demo

    return demo.DESCRIPTIONS[demo.TRAIN] if name == demo.TRAIN else None


def _weights_label(attrs) -> str:
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


def _check_same_making(caches: dict, allow_mixed: bool) -> None:
    """The three caches come from one extractor type and (unless allow_mixed) the same
    preprocessing and weights; ValueError naming the files otherwise."""
    for key in ("extractor_type", "preprocess", "weights_sha256"):
        values = {label: str(attrs[key]) for label, (_, attrs) in caches.items()
                  if attrs.get(key) is not None}
        if len(set(values.values())) > 1 and (key == "extractor_type" or not allow_mixed):
            listed = "; ".join(f"{caches[label][0]} has {value}"
                               for label, value in values.items())
            raise ValueError(f"the caches differ in {key}: {listed}; their FIDs are not "
                             "comparable (metrics.allow_mixed allows preprocessing and "
                             "weights to differ)")


def discard_replace_fids(
    selection_csv,
    generated_cache,
    train_cache,
    replacements_cache,
    selection_json=None,
    layer: str = "pool",
    generated_name: str | None = None,
    train_name: str | None = None,
    allow_mixed: bool = False,
) -> dict:
    """Table 2's five FIDs of one generated set for one extractor, with provenance.

    Rows are matched by image path: an image the extractor left out of a cache (dlib's
    images without a face, a skipped bad image) is left out of every set it belongs to and
    counted in `left_out`.
    """
    from fidlens.statistics import read_layer

    generated, x = read_layer(generated_cache, layer)
    train, y = read_layer(train_cache, layer)
    replaced, r = read_layer(replacements_cache, layer)
    _check_same_making({"generated": (generated_cache, generated.attrs),
                        "train": (train_cache, train.attrs),
                        "replacements": (replacements_cache, replaced.attrs)}, allow_mixed)
    chosen = read_selection(selection_csv)
    rows_of = {path: row for row, path in enumerate(generated.paths or [])}
    replacement_rows = {path: row for row, path in enumerate(replaced.paths or [])}
    selected = [rows_of[c["path"]] for c in chosen if c["path"] in rows_of]
    present = [replacement_rows[c["replacement_path"]] for c in chosen
               if c["replacement_path"] in replacement_rows]
    left_out = {"selected": len(chosen) - len(selected),
                "replacements": len(chosen) - len(present),
                "generated": len(generated.skipped) + len(generated.excluded),
                "train": len(train.skipped) + len(train.excluded)}
    fids = table2_fids(x, y, np.array(selected, dtype=np.int64), r[present])
    about = json.loads(Path(selection_json).read_text()) if selection_json else {}
    attrs = generated.attrs
    train_name = train_name or str(train.attrs.get("dataset", UNKNOWN))
    return {
        "experiment": "discard_replace",
        "dataset": train_name,
        "model": generated_name or str(attrs.get("dataset", UNKNOWN)),
        "adapter": about.get("generator", {}).get("adapter", UNKNOWN),
        "extractor": str(attrs.get("extractor", UNKNOWN)),
        "extractor_type": str(attrs.get("extractor_type", UNKNOWN)),
        "weights": _weights_label(attrs),
        "weights_sha256": str(attrs.get("weights_sha256", UNKNOWN)),
        "weights_origin": str(attrs.get("weights_origin", UNKNOWN)),
        "preprocess": str(attrs.get("preprocess", UNKNOWN)),
        "layer": layer,
        "feature_dim": int(x.shape[1]),
        "n_generated": int(len(x)),
        "n_train": int(len(y)),
        "n_selected": len(selected),
        "n_replacements": len(present),
        "left_out": left_out,
        "fraction": about.get("fraction"),
        "rule": about.get("rule", SELECTION_RULE),
        "ground_truth": about.get("ground_truth"),
        **fids,
        "inputs": {"selection": str(selection_csv), "generated_cache": str(generated_cache),
                   "train_cache": str(train_cache),
                   "replacements_cache": str(replacements_cache)},
        "train_description": training_set_note(train_name),
        "package_versions": package_versions(),
    }


# ---------------------------------------------------------------------------------------------
# Table 2 and the sheet
# ---------------------------------------------------------------------------------------------

RANDOM_INIT_WARNING = (
    "> **Warning: rows marked (random-init) use randomly initialised network weights** (the "
    "official file was not found, or `weights: random` was set): they show the workflow "
    "running, not what seed 000 measured."
)


def table_rows(results: Sequence[dict]) -> list[dict]:
    """One CSV row per result: seed 000's columns, then the provenance."""
    rows = []
    for result in results:
        row = {"Dataset": result["dataset"], "Model": result["model"]}
        row.update({column: result[key] for column, key in zip(COLUMNS, KEYS, strict=True)})
        for key in ("adapter", "extractor", "extractor_type", "weights", "weights_sha256",
                    "preprocess", "layer", "feature_dim", "n_generated", "n_train",
                    "n_selected", "n_replacements", "fraction"):
            row[key] = result[key]
        rows.append(row)
    return rows


def table_csv(results: Sequence[dict]) -> str:
    rows = table_rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_markdown(results: Sequence[dict], sources: Sequence[str] = ()) -> str:
    """Seed 000 Table 2 for one extractor: one row per (training set, generated set)."""
    first = results[0]
    label = first["extractor"] + (f" ({RANDOM_INIT})" if first["weights"] == RANDOM_INIT
                                  else "")
    lines = [
        f"# Discard / replace in w space (seed 000 Table 2): {label}",
        "",
        f"FID against the training set (Dataset) of each generated set (Model), on "
        f"{first['extractor']}'s `{first['layer']}` features ({first['feature_dim']}-d). "
        "FID: the set as generated; FID_Replace: the selected images swapped for their "
        "replacements; FID_Delete: the selected images dropped; FID_Sub_Good: the "
        "replacements alone; FID_Sub_Bad: the selected images alone.",
        "",
        f"> {first['rule']}",
    ]
    if any(r["weights"] == RANDOM_INIT for r in results):
        lines += ["", RANDOM_INIT_WARNING]
    if any(r["n_selected"] <= r["feature_dim"] for r in results):
        lines += ["", "> FID_Sub_Good and FID_Sub_Bad compare a few selected images with the "
                  "training set: FID is biased upwards on small sets, so compare the two with "
                  "each other (same size), not with FID."]
    lines += ["", "| Dataset | Model | " + " | ".join(COLUMNS) + " | selected |",
              "|---|---|" + "---:|" * (len(COLUMNS) + 1)]
    for r in results:
        values = " | ".join(f"{r[key]:.4g}" for key in KEYS)
        lines.append(f"| {r['dataset']} | {r['model']} ({r['adapter']}) | {values} | "
                     f"{r['n_selected']} of {r['n_generated']} |")
    for r in results:
        truth = r.get("ground_truth")
        if truth:
            lines += ["", f"{r['model']}: {truth['selected_in_defective_region']} of "
                      f"{r['n_selected']} selected images lie in the generator's known "
                      f"defective region ({truth['defective_in_set']} of {r['n_generated']} "
                      f"in the set); {truth['replacements_in_defective_region']} of their "
                      "replacements do."]
        if r.get("train_description"):
            lines += ["", f"{r['dataset']}: {r['train_description']}."]
    if sources:
        lines += ["", f"Made by workflow_scripts/discard_replace_table.py from "
                  f"{len(sources)} result file(s); every number with its provenance is in the CSV "
                  "beside this file and the per-set JSON files."]
    return "\n".join(lines) + "\n"


def selection_sheet(originals, replacements, rows, summary: dict, path) -> None:
    """Seed 000 Fig. 4 style: selected images (top of each pair of rows, with d_i) above their
    replacements, up to 8 per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    per_row = min(8, max(n, 1))
    bands = max(1, math.ceil(n / per_row))
    height = 2.95 * bands + 0.8
    figure, axes = plt.subplots(2 * bands, per_row, figsize=(1.35 * per_row + 0.9, height),
                                squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for k in range(n):
        band, column = divmod(k, per_row)
        top, bottom = axes[2 * band, column], axes[2 * band + 1, column]
        top.imshow(originals[k])
        bottom.imshow(replacements[k])
        top.set_title(f"#{rows[k]['rank']} d={float(rows[k]['d']):.2f}", fontsize=7)
        bottom.set_title(rows[k]["path"], fontsize=6)
    for band in range(bands):
        axes[2 * band, 0].set_ylabel("selected", fontsize=8)
        axes[2 * band + 1, 0].set_ylabel("replacement", fontsize=8)
    shown = f" (first {n} shown)" if n < summary["n_selected"] else ""
    figure.suptitle(
        f"{summary['dataset']}: the {summary['n_selected']} of {summary['n_images']} images "
        f"with the smallest d_i{shown}\nabove their replacements w' = w + mean(W_good) - "
        f"mean(W_bad) ({summary['generator']['adapter']} generator)", fontsize=9,
        y=1 - 0.08 / height, va="top")
    truth = summary.get("ground_truth")
    if truth:
        figure.text(0.5, 0.01, f"{truth['selected_in_defective_region']} of "
                    f"{summary['n_selected']} selected in the known defective region; "
                    f"{truth['replacements_in_defective_region']} replacements in it",
                    ha="center", fontsize=7, color="0.3")
    figure.tight_layout(rect=(0, 0.25 / height, 1, 1 - 0.45 / height), h_pad=1.2)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=130, format="png")
    plt.close(figure)
