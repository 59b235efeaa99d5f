"""The experiments' I/O edge: read feature caches and per-dataset statistics, run Top-1
matching, Top-N matching or the FID-minimising resampling for one comparison, and return a
JSON-ready result with its table rows. Also the Inception Score of one cache.

Every extractor's FID is computed against its real set's statistics file (results/statistics,
made once per dataset), from the generated set's cache (the same array, `layer`, that the
statistics hold), without re-extracting anything. A resampled generated set is a multiset of
images: row i of the classifier's cache drawn k_i times. Other extractors' caches are matched
to it by image path, so an image that an extractor left out (dlib's images without a face, a
skipped bad image) drops its draws there; `draws_missing` says how many.

FID numbers here are of the features as cached (the metrics' raw block).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fidlens.cache import read_features
from fidlens.experiments import class_matching as cm
from fidlens.inception_score import inception_score
from fidlens.metrics import feature_statistics
from fidlens.provenance import RANDOM_INIT, package_versions
from fidlens.statistics import read_layer, read_statistics

if TYPE_CHECKING:
    from fidlens.experiments.fid_resampling import WeightedFrechet

# The resampling maths runs on torch; it is imported on first use so that the light jobs
# (Inception Score, result tables) start without torch (about a second per process).
_RESAMPLING = ("WeightedFrechet", "minimise_fid", "reference_from_statistics",
               "sample_correction", "systematic_counts")


def _resampling():
    """The `fidlens.experiments.fid_resampling` module, imported on first call."""
    from fidlens.experiments import fid_resampling

    return fid_resampling


def __getattr__(name: str):
    # Keeps `from fidlens.experiments.run import minimise_fid` (etc.) working.
    if name in _RESAMPLING:
        return getattr(_resampling(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

UNKNOWN = "unknown"
# Below this many images per set, every output carries a warning about what FID means there.
SMALL_SET = 2048
UNMATCHED_HANDLING = (
    "real classes that no generated image predicts cannot be matched; their share of the real "
    "set (unmatched_mass) is spread over the matchable classes in proportion to their real "
    "counts, and generated images of classes absent from the real set are never drawn"
)
RESAMPLING_NOTE = (
    "resampled sets are drawn with replacement to the generated set's size by systematic "
    "resampling (each image floor(M p) or ceil(M p) times; uniform weights give the set "
    "itself); fid_weighted is the FID of the weighted statistics, which the resampled sets "
    "approach as the set grows; fid_control moves each resample's repetitions to random "
    "images (the same duplication without the weights' choice of images)"
)


@dataclass
class Solver:
    max_iterations: int = 200
    time_limit_s: float | None = None


@dataclass
class ExtractorSet:
    """One extractor's side of a comparison: generated features and the real statistics."""

    name: str
    paths: list[str] | None
    objective: WeightedFrechet
    n_target: int
    layer: str
    weights: str
    provenance: dict

    @property
    def n_source(self) -> int:
        return self.objective.n


@dataclass
class Setup:
    """What every experiment of one comparison reads."""

    source_name: str
    target_name: str
    classifier: str
    generated_logits: np.ndarray
    real_logits: np.ndarray
    generated_paths: list[str] | None
    class_names: list[str]
    classifier_weights: str
    extractors: list[ExtractorSet]


def load_setup(
    classifier_source: str | os.PathLike,
    classifier_target: str | os.PathLike,
    source_caches: Sequence[str | os.PathLike],
    target_statistics: Sequence[str | os.PathLike],
    source_name: str | None = None,
    target_name: str | None = None,
    device: str = "cpu",
    allow_mixed: bool = False,
) -> Setup:
    """Read the classifier's two caches (logits) and, per extractor, the generated cache and
    the real set's statistics file (given in the same order)."""
    if len(source_caches) != len(target_statistics):
        raise ValueError("need one target statistics file per source cache")
    generated = _classifier_cache(classifier_source)
    real = _classifier_cache(classifier_target)
    if generated.logits.shape[1] != real.logits.shape[1]:
        raise ValueError(
            f"the classifier caches have {generated.logits.shape[1]} and "
            f"{real.logits.shape[1]} classes"
        )
    classes = generated.logits.shape[1]
    names = generated.logit_names or real.logit_names or [f"class {i}" for i in range(classes)]
    extractors = []
    for cache_path, stats_path in zip(source_caches, target_statistics, strict=True):
        stats = read_statistics(stats_path)
        cache, values = read_layer(cache_path, stats.layer)
        _check_same_making(cache.attrs, cache_path, stats.attrs, stats_path, allow_mixed)
        reference = _resampling().reference_from_statistics(stats.mean, stats.covariance)
        extractors.append(
            ExtractorSet(
                name=str(cache.attrs.get("extractor") or stats.attrs.get("extractor") or
                         os.path.basename(os.path.dirname(str(cache_path)))),
                paths=cache.paths,
                objective=_resampling().WeightedFrechet(values, reference, device=device),
                n_target=stats.n,
                layer=stats.layer,
                weights=_weights_label(cache.attrs),
                provenance={
                    "source_cache": str(cache_path),
                    "target_statistics": str(stats_path),
                    "preprocess": str(cache.attrs.get("preprocess", UNKNOWN)),
                    "weights_sha256": str(cache.attrs.get("weights_sha256", UNKNOWN)),
                },
            )
        )
    return Setup(
        source_name=source_name or str(generated.attrs.get("dataset", UNKNOWN)),
        target_name=target_name or str(real.attrs.get("dataset", UNKNOWN)),
        classifier=str(generated.attrs.get("extractor", UNKNOWN)),
        generated_logits=generated.logits.astype(np.float64),
        real_logits=real.logits.astype(np.float64),
        generated_paths=generated.paths,
        class_names=list(names),
        classifier_weights=_weights_label(generated.attrs),
        extractors=extractors,
    )


def _classifier_cache(path):
    cache = read_features(path, with_logits=True)
    if cache.logits is None:
        made_by = cache.attrs.get("extractor_type", cache.attrs.get("extractor", "its extractor"))
        raise ValueError(
            f"{path} has no 'logits' ({made_by} is not a classifier): experiments.classifier "
            "must be an extractor with ImageNet logits (inception, mobilenet_v2_imagenet, "
            "resnet50, vgg16)"
        )
    return cache


def _check_same_making(cache_attrs, cache_path, stats_attrs, stats_path, allow_mixed):
    for key in ("extractor_type", "preprocess", "weights_sha256"):
        ours, theirs = cache_attrs.get(key), stats_attrs.get(key)
        if key == "extractor_type" or not allow_mixed:
            if ours is not None and theirs is not None and str(ours) != str(theirs):
                raise ValueError(
                    f"{cache_path} and {stats_path} differ in {key} ({ours} vs {theirs}): "
                    "their FID is not comparable (metrics.allow_mixed allows preprocessing "
                    "and weights to differ)"
                )


def _weights_label(attrs) -> str:
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


# ---------------------------------------------------------------------------------------------
# Moving draws and weights between caches
# ---------------------------------------------------------------------------------------------


def _rows_in(base_paths, paths, n_base: int, n_rows: int) -> np.ndarray:
    """For each row of the base cache, the row of the same image in another cache, or -1."""
    if base_paths is None or paths is None:
        if n_base != n_rows:
            raise ValueError(
                "caches without image paths can only be matched row by row, but they hold "
                f"{n_base} and {n_rows} rows"
            )
        return np.arange(n_base)
    where = {path: row for row, path in enumerate(paths)}
    return np.array([where.get(path, -1) for path in base_paths], dtype=np.int64)


def _transfer(values, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per-row values of the base cache summed onto another cache's rows (missing dropped)."""
    values = np.asarray(values, dtype=np.float64)
    present = rows >= 0
    return np.bincount(rows[present], weights=values[present], minlength=n_rows)


def _fid_of_draws(extractor: ExtractorSet, counts_base, rows) -> tuple[float, int]:
    counts = _transfer(counts_base, rows, extractor.n_source)
    missing = int(round(np.sum(counts_base) - counts.sum()))
    return extractor.objective.fid_of_counts(counts), missing


def _fid_of_weights(extractor: ExtractorSet, weights_base, rows, size: int) -> float:
    weights = _transfer(weights_base, rows, extractor.n_source)
    return extractor.objective.fid(weights / weights.sum(), _resampling().sample_correction(size))


def _summary(values) -> dict:
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def _change(before: float, after: float) -> dict:
    return {
        "change": after - before,
        "relative_change": (after - before) / before if before else None,
    }


def _evaluate_weights(setup: Setup, base_paths, weights, size, seed, repeats) -> list[dict]:
    """Every extractor's FID before (the set itself), with the weighted statistics, and over
    `repeats` systematic resamples of `size` images (seeds (seed, r))."""
    draws = [
        _resampling().systematic_counts(weights, size, np.random.default_rng([seed, r]))
        for r in range(repeats)
    ]
    results = []
    for extractor in setup.extractors:
        rows = _rows_in(base_paths, extractor.paths, len(weights), extractor.n_source)
        weighted = _fid_of_weights(extractor, weights, rows, size)
        entry = _before_after(extractor, draws, rows, seed)
        entry["fid_weighted"] = weighted
        before = entry["fid_before"]
        entry["weighted_relative_change"] = (weighted - before) / before if before else None
        results.append(entry)
    return results


def _before_after(extractor: ExtractorSet, draws, rows, seed: int) -> dict:
    """FID of the set itself, of each resample (`draws`: counts per base row), and of the
    control: each resample's counts moved to random images (the same repetitions, no class
    information), which shows how much repeating images alone moves FID."""
    before = extractor.objective.fid(extractor.objective.uniform())
    resampled = [_fid_of_draws(extractor, counts, rows) for counts in draws]
    after = _summary([fid for fid, _ in resampled])
    control = _summary([
        _fid_of_draws(extractor, np.random.default_rng([seed, r, 1]).permutation(counts), rows)[0]
        for r, counts in enumerate(draws)
    ])
    return {
        **_extractor_info(extractor),
        "fid_before": before,
        "fid_after": after,
        **_change(before, after["mean"]),
        "fid_control": control,
        "control_relative_change": (control["mean"] - before) / before if before else None,
        "draws_missing": int(max(missing for _, missing in resampled)),
    }


def _extractor_info(extractor: ExtractorSet) -> dict:
    return {
        "extractor": extractor.name,
        "weights": extractor.weights,
        "layer": extractor.layer,
        "feature_dim": extractor.objective.dim,
        "n_source": extractor.n_source,
        "n_target": extractor.n_target,
        **extractor.provenance,
    }


# ---------------------------------------------------------------------------------------------
# The experiments
# ---------------------------------------------------------------------------------------------


def top1_matching(setup: Setup, seed: int = 0, repeats: int = 5) -> dict:
    """Resample the generated set (same size, with replacement) so that its Top-1 class
    histogram matches the real set's; every extractor's FID before and after."""
    generated = cm.top1_classes(setup.generated_logits)
    real = cm.top1_classes(setup.real_logits)
    classes = setup.generated_logits.shape[1]
    size = len(generated)
    try:
        plan = cm.top1_plan(generated, real, classes, size)
    except ValueError as error:  # no class in common: report it, with the FIDs as they are
        return _top1_impossible(setup, generated, real, classes, size, seed, repeats, error)
    draws = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        counts = cm.stratified_counts(generated, plan.target_counts, rng)
        matched = cm.class_histogram(generated, classes, counts)
        if not np.array_equal(matched, plan.target_counts):  # by construction; never skipped
            raise AssertionError("the resampled Top-1 histogram differs from its target")
        draws.append(counts)
    results = [
        _before_after(
            extractor,
            draws,
            _rows_in(setup.generated_paths, extractor.paths, size, extractor.n_source),
            seed,
        )
        for extractor in setup.extractors
    ]
    real_share = plan.real_counts / plan.real_counts.sum()
    matched_share = plan.target_counts / plan.target_counts.sum()
    generated_share = plan.generated_counts / plan.generated_counts.sum()
    histogram_classes = np.flatnonzero(plan.real_counts + plan.generated_counts)
    return {
        **_header(setup, "top1"),
        "size": size,
        "seed": seed,
        "repeats": repeats,
        "matched": True,
        "real_classes": int((plan.real_counts > 0).sum()),
        "generated_classes": int((plan.generated_counts > 0).sum()),
        "unmatched_mass": plan.unmatched_mass,
        "unmatched_classes": [
            {"class": int(c), "name": setup.class_names[c], "real_images": int(plan.real_counts[c])}
            for c in plan.unmatched_classes
        ],
        "unmatched_handling": UNMATCHED_HANDLING,
        "dropped_generated_images": plan.dropped_images,
        "histogram_exact": plan.exact,
        "histogram_distance_before": 0.5 * float(np.abs(generated_share - real_share).sum()),
        "histogram_distance_after": 0.5 * float(np.abs(matched_share - real_share).sum()),
        "histograms": [
            {
                "class": int(c),
                "name": setup.class_names[c],
                "real": int(plan.real_counts[c]),
                "generated_before": int(plan.generated_counts[c]),
                "generated_after": int(plan.target_counts[c]),
            }
            for c in histogram_classes
        ],
        "extractors": results,
    }


def _top1_impossible(setup, generated, real, classes, size, seed, repeats, error) -> dict:
    real_counts = cm.class_histogram(real, classes)
    generated_counts = cm.class_histogram(generated, classes)
    unmatched = np.flatnonzero(real_counts)
    return {
        **_header(setup, "top1"),
        "size": size,
        "seed": seed,
        "repeats": repeats,
        "matched": False,
        "not_matched_because": str(error),
        "real_classes": int(len(unmatched)),
        "generated_classes": int((generated_counts > 0).sum()),
        "unmatched_mass": 1.0,
        "unmatched_classes": [
            {"class": int(c), "name": setup.class_names[c], "real_images": int(real_counts[c])}
            for c in unmatched
        ],
        "unmatched_handling": UNMATCHED_HANDLING,
        "dropped_generated_images": int(size),
        "histogram_exact": False,
        "histogram_distance_before": 1.0,
        "histogram_distance_after": None,
        "histograms": [
            {"class": int(c), "name": setup.class_names[c], "real": int(real_counts[c]),
             "generated_before": int(generated_counts[c]), "generated_after": 0}
            for c in np.flatnonzero(real_counts + generated_counts)
        ],
        "extractors": [
            {
                **_extractor_info(extractor),
                "fid_before": extractor.objective.fid(extractor.objective.uniform()),
                "fid_after": {"mean": None, "std": None, "values": []},
                "change": None,
                "relative_change": None,
                "fid_control": {"mean": None, "std": None, "values": []},
                "control_relative_change": None,
                "draws_missing": 0,
            }
            for extractor in setup.extractors
        ],
    }


def top_n_matching(
    setup: Setup,
    ns: Sequence[int],
    solver: Solver,
    seed: int = 0,
    repeats: int = 5,
) -> dict:
    """For each N: weights that minimise the Fréchet distance between the sets' N-hot Top-N
    indicator statistics (L-BFGS), then every extractor's FID with those weights."""
    size = len(setup.generated_logits)
    by_n = []
    for n in ns:
        generated_hot, real_hot, used = cm.top_n_features(setup.generated_logits,
                                                          setup.real_logits, n)
        reference = _resampling().reference_from_statistics(*feature_statistics(real_hot))
        objective = _resampling().WeightedFrechet(generated_hot, reference)
        optimum = _resampling().minimise_fid(objective, solver.max_iterations, solver.time_limit_s)
        by_n.append(
            {
                "n": int(n),
                "classes_used": int(len(used)),
                "indicator_fd_before": optimum.fid_uniform,
                "indicator_fd_after": optimum.fid,
                "mean_mismatch_before": cm.mean_mismatch(generated_hot, real_hot, None, n),
                "mean_mismatch_after": cm.mean_mismatch(generated_hot, real_hot,
                                                        optimum.weights, n),
                "effective_sample_size": optimum.effective_sample_size(),
                **_solver_info(optimum),
                "extractors": _evaluate_weights(
                    setup, setup.generated_paths, optimum.weights, size, seed, repeats
                ),
            }
        )
    return {
        **_header(setup, "topn"),
        "size": size,
        "seed": seed,
        "repeats": repeats,
        "objective": (
            "Fréchet distance between the real set's and the weighted generated set's mean and "
            "covariance of N-hot Top-N indicator vectors (the columns either set uses)"
        ),
        "resampling": RESAMPLING_NOTE,
        "max_iterations": solver.max_iterations,
        "time_limit_s": solver.time_limit_s,
        "by_n": by_n,
    }


def fid_resampling(
    setup: Setup, extractor: str, solver: Solver, seed: int = 0, repeats: int = 5
) -> dict:
    """Weights that minimise `extractor`'s FID against the real set, then every extractor's
    FID when sampling with them (and with uniform weights: the set itself)."""
    chosen = {e.name: e for e in setup.extractors}.get(extractor)
    if chosen is None:
        raise ValueError(
            f"extractor {extractor!r} is not among this comparison's extractors "
            f"({', '.join(e.name for e in setup.extractors)})"
        )
    size = chosen.n_source
    trace = []

    def progress(iteration, seconds, fid):
        trace.append((iteration, seconds, fid))

    optimum = _resampling().minimise_fid(chosen.objective, solver.max_iterations,
                                         solver.time_limit_s, progress=progress)
    # Top-1 histograms of the classifier's cache under the optimised weights.
    rows = _rows_in(chosen.paths, setup.generated_paths, size, len(setup.generated_logits))
    classifier_weights = _transfer(optimum.weights, rows, len(setup.generated_logits))
    generated = cm.top1_classes(setup.generated_logits)
    real = cm.top1_classes(setup.real_logits)
    classes = setup.generated_logits.shape[1]
    real_share = cm.class_histogram(real, classes) / len(real)

    def distance(weights):
        share = np.bincount(generated, weights=weights, minlength=classes) / weights.sum()
        return 0.5 * float(np.abs(share - real_share).sum())

    return {
        **_header(setup, "resampling"),
        "optimised_extractor": extractor,
        "size": size,
        "seed": seed,
        "repeats": repeats,
        "resampling": RESAMPLING_NOTE,
        "max_iterations": solver.max_iterations,
        "time_limit_s": solver.time_limit_s,
        "fid_uniform": optimum.fid_uniform,
        "fid_optimum": optimum.fid,
        "effective_sample_size": optimum.effective_sample_size(),
        **_solver_info(optimum),
        "trace": [{"iteration": i, "seconds": s, "fid": f} for i, s, f in _thin(trace)],
        "top1_histogram_distance_before": distance(np.ones(len(generated))),
        "top1_histogram_distance_after": distance(classifier_weights),
        "weights_quantiles": {
            q: float(np.quantile(optimum.weights * size, q / 100)) for q in (0, 10, 50, 90, 100)
        },
        "extractors": _evaluate_weights(
            setup, chosen.paths, optimum.weights, size, seed, repeats
        ),
    }


def _solver_info(optimum) -> dict:
    return {
        "solver": "L-BFGS (scipy L-BFGS-B) on per-image log-weights, analytic gradient",
        "iterations": optimum.iterations,
        "evaluations": optimum.evaluations,
        "seconds": optimum.seconds,
        "stop_reason": optimum.stop_reason,
    }


def _thin(trace, most: int = 500):
    if len(trace) <= most:
        return trace
    keep = np.unique(np.linspace(0, len(trace) - 1, most).round().astype(int))
    return [trace[i] for i in keep]


def _header(setup: Setup, experiment: str) -> dict:
    n_source, n_target = len(setup.generated_logits), len(setup.real_logits)
    note = f"{n_source} generated and {n_target} real images"
    if min(n_source, n_target) < SMALL_SET:
        note += (
            f": small sets (fewer than {SMALL_SET} images each). FID's small-sample bias is "
            "large here, covariances of high-dimensional features are singular, and a "
            "resampled set repeats few images; read the changes as the method at work on this "
            "data, not as a measurement of the seed-002 effect, which was measured on 50,000 "
            "images"
        )
    return {
        "experiment": experiment,
        "source_name": setup.source_name,
        "target_name": setup.target_name,
        "classifier": setup.classifier,
        "classifier_weights": setup.classifier_weights,
        "n_source": n_source,
        "n_target": n_target,
        "classes": int(setup.generated_logits.shape[1]),
        "fid_features": "features as cached (each extractor's layer), not L2-normalised",
        "note": note,
        "package_versions": package_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------------------------------------
# Table rows (one per number set), shared by the per-comparison CSV and the summary table
# ---------------------------------------------------------------------------------------------


def result_rows(result: dict) -> list[dict]:
    """Long rows of one experiment result: one per extractor (and N for Top-N)."""
    base = {
        "experiment": result["experiment"],
        "source": result["source_name"],
        "target": result["target_name"],
        "classifier": result["classifier"],
        "classifier_weights": result["classifier_weights"],
        "optimised_extractor": result.get("optimised_extractor"),
        "size": result["size"],
        "repeats": result["repeats"],
        "seed": result["seed"],
    }
    groups = (
        [({"n": entry["n"], "mean_mismatch_before": entry["mean_mismatch_before"],
           "mean_mismatch_after": entry["mean_mismatch_after"],
           "iterations": entry["iterations"]}, entry["extractors"])
         for entry in result["by_n"]]
        if result["experiment"] == "topn"
        else [({"n": 1 if result["experiment"] == "top1" else None,
                "unmatched_mass": result.get("unmatched_mass"),
                "iterations": result.get("iterations")}, result["extractors"])]
    )
    rows = []
    for extra, extractors in groups:
        for entry in extractors:
            rows.append(
                {
                    **base,
                    **extra,
                    "extractor": entry["extractor"],
                    "weights": entry["weights"],
                    "n_source": entry["n_source"],
                    "n_target": entry["n_target"],
                    "fid_before": entry["fid_before"],
                    "fid_weighted": entry.get("fid_weighted"),
                    "fid_after": entry["fid_after"]["mean"],
                    "fid_after_std": entry["fid_after"]["std"],
                    "relative_change": entry["relative_change"],
                    "fid_control": entry["fid_control"]["mean"],
                    "control_relative_change": entry["control_relative_change"],
                    "draws_missing": entry["draws_missing"],
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Inception Score of one cache
# ---------------------------------------------------------------------------------------------

UNBIASED, BIASED = "unbiased", "biased"
UNBIASED_OUTPUT = "logits_unbiased"


def inception_score_of_cache(
    path: str | os.PathLike,
    splits: int = 10,
    logits: str = UNBIASED,
    shuffle_seed: int | None = None,
    dataset_name: str | None = None,
) -> dict:
    """The Inception Score of one classifier cache, stating which logits it used.

    `unbiased`: the cache's `outputs/logits_unbiased` where its extractor type provides them
    (inception: the last layer without its bias, torch-fidelity's and torchmetrics' default);
    a type without such an output (mobilenet_v2_imagenet, ...) uses its `logits`, and says so.
    `biased`: the `logits` (with the bias) always."""
    if logits not in (UNBIASED, BIASED):
        raise ValueError(f"logits must be {UNBIASED} or {BIASED}, got {logits!r}")
    cache = read_features(path, with_logits=True, with_outputs=True)
    if cache.logits is None:
        raise ValueError(f"{path} has no 'logits': the Inception Score needs a classifier")
    type_name = str(cache.attrs.get("extractor_type", cache.attrs.get("extractor", UNKNOWN)))
    provides_unbiased = UNBIASED_OUTPUT in _declared_outputs(type_name)
    if logits == UNBIASED and provides_unbiased:
        if UNBIASED_OUTPUT not in cache.outputs:
            raise ValueError(
                f"{path} has no outputs/{UNBIASED_OUTPUT} ({type_name} provides them; the cache "
                f"was made before it did). Rebuild it: snakemake --forcerun {path}, or set "
                "inception_score.logits: biased"
            )
        values, used = cache.outputs[UNBIASED_OUTPUT], (
            f"{UNBIASED_OUTPUT}: the last layer without its bias (torch-fidelity's and "
            "torchmetrics' Inception Score input)"
        )
    elif logits == UNBIASED:
        values, used = cache.logits, (
            f"logits: {type_name}'s {cache.logits.shape[1]} class logits with the last layer's "
            "bias (the type provides no bias-free logits)"
        )
    else:
        values, used = cache.logits, "logits: with the last layer's bias (asked for: biased)"
    score = inception_score(values, splits=splits, shuffle_seed=shuffle_seed)
    return {
        "metric": "inception_score",
        "dataset": dataset_name or str(cache.attrs.get("dataset", UNKNOWN)),
        "extractor": str(cache.attrs.get("extractor", UNKNOWN)),
        "extractor_type": type_name,
        "weights": _weights_label(cache.attrs),
        "weights_sha256": str(cache.attrs.get("weights_sha256", UNKNOWN)),
        "preprocess": str(cache.attrs.get("preprocess", UNKNOWN)),
        "logits_asked": logits,
        "logits_used": used,
        "classes": int(values.shape[1]),
        "inception_score_mean": score["mean"],
        "inception_score_std": score["std"],
        "split_scores": score["scores"],
        "n": score["n"],
        "splits": score["splits"],
        "shuffle_seed": score["shuffle_seed"],
        "cache_path": str(path),
        "package_versions": package_versions(),
    }


def _declared_outputs(type_name: str) -> dict:
    from fidlens.extractors import get_type

    try:
        return dict(get_type(type_name).outputs)
    except (KeyError, ValueError):
        return {}


__all__ = [
    "Setup",
    "Solver",
    "fid_resampling",
    "inception_score_of_cache",
    "load_setup",
    "result_rows",
    "top1_matching",
    "top_n_matching",
]
