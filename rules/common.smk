# Config validation and the small functions the rules call. Stage files hold only rules.
#
# Rerun triggers: each job gets only its own settings, as canonical JSON in `params`, so
# changing one setting reruns exactly the jobs it affects. Image changes in a user's dataset
# are caught by a content digest computed here, at parse time (only new or modified files,
# by size and mtime, are read).

import functools
import json
import os
import re
import shlex
import types

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from fidlens import resources as job_resources
from fidlens.datasets import content_digest, list_dataset, read_manifest
from fidlens.extractors import canonical_settings, files_state, instance_problems
from fidlens.extractors import own_settings, settings_problems, type_of
from fidlens.extractors import get_type as extractor_type
from fidlens.generators import (
    DEMO_GENERATED,
    DEMO_TRAIN,
    GENERATOR_DEFAULTS,
    demo_outputs,
)
from fidlens.generators.plan import GenerationPlan
from fidlens.metric_specs import K_DC, K_PR, NORMALIZE_MODES
from fidlens.metric_specs import interval_subset_size, too_small
from fidlens import trust_plan
from fidlens.trust_plan import TrustPlan, name_regex


def validate_config():
    """Fill in the schema's defaults; a wrong key or type stops here, before any job,
    with a short message naming the key (instead of the whole schema)."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as error:
        detail = error.__context__
        if not isinstance(detail, ValidationError):
            raise
        where = ".".join(str(part) for part in detail.absolute_path) or "(top level)"
        meaning = (
            detail.schema.get("description")
            if isinstance(detail.schema, dict)
            else None
        )
        raise WorkflowError(
            f"Invalid configuration at {where}: {detail.message}"
            + (f"\n  ({meaning.strip()})" if meaning else "")
            + "\n  Every key is described in schemas/config.schema.yaml and README.md."
        ) from None


validate_config()

DATASETS = config["datasets"]
EXTRACTORS = config["extractors"]
DEMO = config["demo"]
FACES = config["face_detection"]
REAL_DEMO_SETS = ("real_a", "real_b")
# Generator-declared and probes datasets, written by rules/generate.smk under
# results/generated/ (their paths are filled in here) and fingerprinted by their settings;
# and the inspection loop of rules/inspection.smk. See fidlens.generators.plan.
GENERATED = GenerationPlan(DATASETS, config["inspection"], config["device"])


def workflow_script(name):
    """A workflow script, given as an input so that editing it reruns the jobs it made."""
    return os.path.relpath(os.path.join(workflow.basedir, "workflow_scripts", name))


# ---------------------------------------------------------------- the demo's datasets


def demo_dataset_names():
    return [*REAL_DEMO_SETS, *DEMO["generated"]]


def demo_dataset_dirs():
    """Folders the make_demo_data rule writes (none when the demo is disabled)."""
    if not DEMO["enabled"]:
        return []
    return [os.path.join(DEMO["out_dir"], name) for name in demo_dataset_names()]


def procedural_demo_outputs():
    """What make_procedural_demo writes (folders, latents, pairs, about; none when off)."""
    if not (DEMO["enabled"] and DEMO["procedural"]["enabled"]):
        return {"folders": [], "latents": [], "pairs": [], "about": []}
    return demo_outputs(DEMO["out_dir"])


def procedural_demo_files():
    """The procedural demo's latents files and pair file."""
    outputs = procedural_demo_outputs()
    return outputs["latents"] + outputs["pairs"]


def made_by_demo(path):
    dirs = demo_dataset_dirs() + procedural_demo_outputs()["folders"]
    return os.path.normpath(path) in {os.path.normpath(d) for d in dirs}


def dataset_include_hidden(name):
    return DATASETS[name].get("include_hidden", config["include_hidden"])


# ---------------------------------------------------------------- checks a schema can't do


def config_problems():
    """Every problem found, so one run tells the user all of them."""
    problems = []
    for index, pair in enumerate(config["comparisons"]):
        for role in ("source", "target"):
            if pair[role] not in DATASETS:
                problems.append(
                    f"comparisons[{index}].{role}: dataset {pair[role]!r} is not configured "
                    f"under datasets (configured: {', '.join(DATASETS)})"
                )
    for name, spec in EXTRACTORS.items():
        # Its type, preprocessing mode, the type's own settings, weights and model files.
        problems += instance_problems(name, spec, config["weights_dir"])
    clash = set(REAL_DEMO_SETS + (DEMO_GENERATED, DEMO_TRAIN)) & set(DEMO["generated"])
    if clash:
        problems.append(
            f"demo.generated: {', '.join(sorted(clash))} is the name of another demo set"
        )
    # generator and probes datasets, the inspection loop
    problems += GENERATED.problems()
    for name, spec in DATASETS.items():
        if GENERATED.made_by_rule(name):
            continue
        if "path" not in spec:
            problems.append(
                f"datasets.{name}: give a path (an image folder or .zip), a generator or "
                "probes"
            )
            continue
        path = spec["path"]
        if not made_by_demo(path) and not os.path.exists(path):
            hint = (
                " (it is a demo folder, but demo.enabled is false)"
                if not DEMO["enabled"]
                and os.path.normpath(path).startswith(os.path.normpath(DEMO["out_dir"]))
                else ""
            )
            problems.append(
                f"datasets.{name}.path: {path} does not exist{hint} "
                f"(looked in {os.path.abspath(path)})"
            )
        elif not made_by_demo(path):
            problems += listing_problems(name, path)
    return problems + comparison_size_problems()


def comparison_size_problems():
    """Comparisons too small for an asked-for metric, known from the listings before any
    job runs (instead of one failed metrics job hours later hiding every table)."""
    problems = []
    for index, pair in enumerate(config["comparisons"]):
        source, target = LISTINGS.get(pair["source"]), LISTINGS.get(pair["target"])
        # a demo set (fixed size) or a listing error
        if source is None or target is None:
            continue
        n_source, n_target = len(source.images), len(target.images)
        for problem in too_small(config["metrics"]["names"], n_source, n_target):
            problems.append(
                f"comparisons[{index}] ({pair['source']} -> {pair['target']}): {problem}, "
                f"but has {n_source} and {n_target}; add images or leave the metric out of "
                "metrics.names"
            )
        problems += interval_size_problems(index, pair, n_source, n_target)
    return problems


def interval_size_problems(index, pair, n_source, n_target):
    """Subsets of the intervals too small for an asked-for metric."""
    intervals = config["metrics"]["intervals"]
    if not intervals["enabled"]:
        return []
    fraction = intervals["subset_fraction"]
    try:
        sizes = [interval_subset_size(n, fraction) for n in (n_source, n_target)]
    except ValueError as error:
        return [f"metrics.intervals.subset_fraction: comparisons[{index}]: {error}"]
    return [
        f"metrics.intervals.subset_fraction: comparisons[{index}] ({pair['source']} -> "
        f"{pair['target']}): {problem.replace('images', 'images per subset')}, but "
        f"subset_fraction {fraction} keeps {sizes[0]} and {sizes[1]}; raise it, add images "
        "or turn the intervals off"
        for problem in too_small(config["metrics"]["names"], *sizes)
    ]


# name -> parse-time listing of each user dataset (no image is read), filled by
# config_problems(): its content digest decides whether the manifest is made again.
LISTINGS = {}


def listing_problems(name, path):
    try:
        listing = LISTINGS[name] = list_dataset(path, dataset_include_hidden(name))
    except (OSError, ValueError) as error:  # not a folder or zip, a truncated zip
        return [f"datasets.{name}.path: {error}"]
    if not listing.images:
        return [
            f"datasets.{name}.path: {path} holds no images ({len(listing.ignored)} other "
            f"files, {len(listing.hidden)} hidden files, {len(listing.broken)} broken links)"
        ]
    if listing.broken and config["on_bad_image"] == "error":
        shown = "; ".join(listing.broken[:5])
        more = f" and {len(listing.broken) - 5} more" if len(listing.broken) > 5 else ""
        return [
            f"datasets.{name}.path: {len(listing.broken)} broken symbolic links in {path}: "
            f"{shown}{more}. Mend or remove them, or set on_bad_image: skip to leave them "
            "out (listed in the cache and the log)"
        ]
    return []


_problems = config_problems()
if _problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _problems)
    )

_compared = {
    pair[role] for pair in config["comparisons"] for role in ("source", "target")
}
# The discard / replace experiment's generated and training sets are processed too.
if config["discard_replace"]["enabled"]:
    for _name, _spec in config["discard_replace"]["datasets"].items():
        _compared |= {_name, _spec["train"]}
# So are the inspection loop's generated sets and probes (drawn, not extracted).
for _name, _entry in GENERATED.entries.items():
    _compared |= {_name, _entry["probes"]} - {None}
for _name in DATASETS:
    if _name not in _compared:
        logger.warning(f"datasets.{_name} is in no comparison: it is not processed")

# Names are checked above; constraining wildcards to them makes `__` unambiguous.
_dataset_names = "|".join(re.escape(name) for name in DATASETS)


wildcard_constraints:
    dataset=_dataset_names,
    source=_dataset_names,
    target=_dataset_names,
    extractor="|".join(re.escape(name) for name in EXTRACTORS),


# ---------------------------------------------------------------- datasets


def canonical_json(settings):
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def dataset_path(name):
    return DATASETS[name]["path"]


def dataset_resolution(name):
    return DATASETS[name].get("resolution", config["resolution"])


def listing_flags(wildcards):
    """How a dataset is listed, for the manifest and the extraction alike (the extraction
    checks that it lists what its manifest lists)."""
    return "--include-hidden" if dataset_include_hidden(wildcards.dataset) else ""


def dataset_images(wildcards):
    return dataset_path(wildcards.dataset)


def demo_dataset_input(wildcards):
    """A demo folder is the output of make_demo_data, so the manifest depends on it. A
    user's folder is no input: its mtime changes when any file is added (a README), and
    the manifest follows the images' content instead (dataset_content). A generated
    dataset's latents file is written last by its rule (rules/generate.smk), after its
    images, so the manifest depends on it (the folder is no output: Snakemake would empty
    it, and the rule keeps the images it can)."""
    if GENERATED.made_by_rule(wildcards.dataset):
        return [GENERATED.latents(wildcards.dataset)]
    path = dataset_path(wildcards.dataset)
    return [path] if made_by_demo(path) else []


@functools.cache
def _dataset_content(name):
    listing = LISTINGS[name]
    cache = f".snakemake/fidlens/content-hashes/{name}.tsv"
    try:
        return content_digest(listing, cache)
    except OSError as error:  # a file removed or unreadable since it was listed
        raise WorkflowError(f"datasets.{name}.path: {error}") from None


def dataset_content(wildcards):
    """The manifest's rerun trigger, computed at parse time: the dataset's image list and the
    sha1 of every image (files whose size and mtime are unchanged are not read again), so a
    README added to the folder or timestamps lost in a copy rerun nothing, and a modified
    image reruns that dataset's manifest, then its caches."""
    name = wildcards.dataset
    if GENERATED.made_by_rule(name):  # its settings decide its images
        return GENERATED.content(name)
    if name not in LISTINGS:
        return "made by rule make_demo_data"
    return {
        "images": _dataset_content(name),
        "include_hidden": dataset_include_hidden(name),
    }


# ---------------------------------------------------------------- features


@functools.cache
def extractor_own_settings(name):
    """The settings an instance's type declares, with the type's defaults filled in."""
    spec = EXTRACTORS[name]
    return settings_problems(extractor_type(type_of(name, spec)), own_settings(spec))[0]


def extraction_settings(wildcards):
    """Everything that changes one cache's numbers, and nothing else."""
    extractor = EXTRACTORS[wildcards.extractor]
    return {
        "extractor": wildcards.extractor,
        "type": type_of(wildcards.extractor, extractor),
        "settings": extractor_own_settings(wildcards.extractor),
        "weights": extractor["weights"],
        "fallback": extractor["fallback"],
        "weights_dir": config["weights_dir"],
        "preprocess": extractor["preprocess"],
        "batch_size": extractor["batch_size"],
        "device": config["device"],
        "allow_tf32": config["allow_tf32"],
        "on_bad_image": config["on_bad_image"],
        "max_image_pixels": config["max_image_pixels"],
        "resolution": dataset_resolution(wildcards.dataset),
    }


def extraction_settings_json(wildcards):
    return canonical_json(extraction_settings(wildcards))


def extraction_flags(wildcards):
    """The extraction CLI flags, built from the same settings as the rerun trigger."""
    settings = extraction_settings(wildcards)
    flags = [
        ("--type", settings["type"]),
        ("--settings", canonical_settings(settings["settings"]) or None),
        ("--weights", settings["weights"]),
        ("--fallback", settings["fallback"]),
        ("--weights-dir", settings["weights_dir"]),
        ("--preprocess", settings["preprocess"]),
        ("--batch-size", settings["batch_size"]),
        ("--device", settings["device"]),
        ("--on-bad-image", settings["on_bad_image"]),
        ("--max-image-pixels", settings["max_image_pixels"]),
        ("--resolution", settings["resolution"]),
    ]
    return " ".join(
        f"{flag} {shlex.quote(str(value))}"
        for flag, value in flags
        if value is not None
    ) + (" --allow-tf32" if settings["allow_tf32"] else "")


@functools.cache
def _files_state(name):
    return files_state(name, EXTRACTORS[name], config["weights_dir"])


def weights_file_state(wildcards):
    """Which files the job would load now (path, size, mtime of the weights and of every
    model file the instance uses), so that installing the official file later, or replacing
    it, reruns the extraction (no hashing at parse time)."""
    return _files_state(wildcards.extractor)


def extractor_threads(wildcards):
    return EXTRACTORS[wildcards.extractor]["threads"]


# ---------------------------------------------------------------- metrics and tables


def metric_settings(wildcards):
    """What changes one metric file's numbers: the metrics settings, and the cached array
    it reads (the instance's `layer`, never an extraction setting)."""
    metrics = config["metrics"]
    return {
        "metrics": ",".join(metrics["names"]),
        "normalize": metrics["normalize"],
        "seed": metrics["seed"],
        "kid_subsets": metrics["kid_subsets"],
        "kid_subset_size": metrics["kid_subset_size"],
        "allow_mixed": metrics["allow_mixed"],
        "layer": EXTRACTORS[wildcards.extractor]["layer"],
        **interval_settings(),
    }


INTERVALS = config["metrics"]["intervals"]


def interval_settings():
    """The interval settings as compute_metrics flags' keys; none when they are off, so that
    changing an unused setting reruns nothing."""
    if not INTERVALS["enabled"]:
        return {}
    return {
        "intervals": True,
        **{
            f"interval_{key}": INTERVALS[key]
            for key in ("resamples", "level", "seed", "subset_fraction")
        },
    }


def metric_draws(extractor, source, target):
    return f"results/metrics/{extractor}/{source}__{target}.draws.csv"


def metric_extra_outputs():
    """compute_metrics' per-resample values (the paired differences read them), when the
    intervals are on."""
    if not INTERVALS["enabled"]:
        return {}
    return {"draws": metric_draws("{extractor}", "{source}", "{target}")}


def metric_draws_flag(wildcards, output):
    return f"--draws {shlex.quote(output.draws)}" if INTERVALS["enabled"] else ""


def difference_sources(target):
    """Distinct sources compared with `target`, in config order."""
    pairs = config["comparisons"]
    return list(dict.fromkeys(p["source"] for p in pairs if p["target"] == target))


def difference_targets():
    """Targets with at least two sources: each gets a paired-differences file per extractor."""
    targets = dict.fromkeys(pair["target"] for pair in config["comparisons"])
    return [target for target in targets if len(difference_sources(target)) >= 2]


def difference_metric_jsons(wildcards):
    return [
        metric_json(wildcards.extractor, source, wildcards.target)
        for source in difference_sources(wildcards.target)
    ]


def difference_draws(wildcards):
    return [
        metric_draws(wildcards.extractor, source, wildcards.target)
        for source in difference_sources(wildcards.target)
    ]


def all_difference_files():
    if not INTERVALS["enabled"]:
        return []
    return [
        f"results/metrics/differences/{extractor}/{target}.{ext}"
        for extractor in EXTRACTORS
        for target in difference_targets()
        for ext in ("json", "csv")
    ]


def metric_settings_json(wildcards):
    return canonical_json(metric_settings(wildcards))


def metric_flags(wildcards):
    """The compute_metrics CLI flags; a true boolean setting is a bare flag, false none."""
    flags = []
    for key, value in metric_settings(wildcards).items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(flags)


def metric_statistics(wildcards):
    """The per-dataset statistics files of a comparison's two sets, when some metric uses
    them (FID their moments, precision/recall and density/coverage their radii)."""
    if not {"fid", "pr", "dc"} & set(config["metrics"]["names"]):
        return {}
    folder = f"results/statistics/{wildcards.extractor}"
    return {
        "source_statistics": f"{folder}/{wildcards.source}.h5",
        "target_statistics": f"{folder}/{wildcards.target}.h5",
    }


def metric_statistics_flags(wildcards, input):
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(input[key]))}"
        for key in ("source_statistics", "target_statistics")
        if key in input.keys()
    )


def metric_json(extractor, source, target):
    return f"results/metrics/{extractor}/{source}__{target}.json"


def all_metric_jsons():
    """One per extractor x comparison, in config order (the tables keep this order)."""
    return [
        metric_json(extractor, pair["source"], pair["target"])
        for extractor in EXTRACTORS
        for pair in config["comparisons"]
    ] + TRUST.statistics_metric_jsons()  # targets given only as statistics (rules/interop.smk)


# ---------------------------------------------------------------- face-detection rate


def compared_datasets():
    """Datasets in some comparison, in config order."""
    pairs = config["comparisons"]
    return [name for name in DATASETS if any(name in pair.values() for pair in pairs)]


def face_settings(wildcards):
    """Everything that changes one dataset's face detections, and nothing else."""
    return {
        "detectors": ",".join(FACES["detectors"]),
        "dlib_upsample": FACES["dlib_upsample"],
        "mtcnn_min_face_size": FACES["mtcnn_min_face_size"],
        "resolution": dataset_resolution(wildcards.dataset),
        "on_bad_image": config["on_bad_image"],
        "max_image_pixels": config["max_image_pixels"],
    }


def face_settings_json(wildcards):
    return canonical_json(face_settings(wildcards))


def face_flags(wildcards):
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(value))}"
        for key, value in face_settings(wildcards).items()
        if value is not None
    )


def face_runtime(wildcards, input, threads, attempt):
    """Minutes: both detectors take ~20 ms an image at 128 px; allow 0.2 s per image."""
    images = dataset_size(wildcards.dataset, input.manifest)
    return attempt * (10 + int(images * 0.2 / 60 / threads))


def all_face_jsons():
    return [f"results/faces/{name}.json" for name in compared_datasets()]


def final_outputs():
    return stage_outputs() + report_outputs()


def stage_outputs():
    """Every stage's outputs (the report's pages and figures are made from them)."""
    tables = ["metrics"] + (["face_detection"] if FACES["enabled"] else [])
    tables += experiment_tables()
    paths = [f"results/tables/{t}.{ext}" for t in tables for ext in ("csv", "md")]
    return (
        paths
        + all_embedding_figures()
        + discard_replace_outputs()
        + GENERATED.outputs()
        + all_attention_outputs()
        + TRUST.outputs()
        + all_difference_files()
    )


# ---------------------------------------------------------------- what a job asks a cluster for
# Memory and run time follow the work (fidlens.resources; README.md, "Memory and run time"):
# extraction from the number of images, metrics from the caches' N and D. An input not made
# yet raises FileNotFoundError, and Snakemake sizes the job once it exists.


def dataset_size(name, manifest):
    """Images in a dataset: from its parse-time listing, else from its manifest."""
    if name in LISTINGS:
        return len(LISTINGS[name].images)
    return len(read_manifest(manifest))


def extraction_mem_mb(wildcards, input, threads, attempt):
    workers = job_resources.max_workers(threads, config["device"])
    return job_resources.extraction_mem_mb(
        dataset_size(wildcards.dataset, input.manifest),
        EXTRACTORS[wildcards.extractor]["batch_size"],
        workers,
        output_floats=extraction_output_floats(wildcards.extractor),
        attempt=attempt,
    )


def extraction_output_floats(name):
    """Values a cache keeps per image: its type's features and logits, at least the
    default (room for a type's further per-image outputs)."""
    kind = extractor_type(type_of(name, EXTRACTORS[name]))
    return max(
        job_resources.DEFAULT_OUTPUT_FLOATS, kind.feature_dim + (kind.logits_dim or 0)
    )


def extraction_runtime(wildcards, input, threads, attempt):
    return job_resources.extraction_runtime_min(
        dataset_size(wildcards.dataset, input.manifest),
        threads,
        job_resources.device_type_of(config["device"]),
        attempt=attempt,
    )


def extraction_gpus(wildcards):
    """1 when the config's device is cuda or cuda:N: the SLURM plugin then asks for a GPU
    (--gpus), and `snakemake --resources gpu=N` runs at most N such jobs at once."""
    return job_resources.gpus_for(config["device"])


def metrics_mem_mb(wildcards, input, attempt):
    n_source, dim = job_resources.feature_shape(input.source)
    n_target, _ = job_resources.feature_shape(input.target)
    return job_resources.metrics_mem_mb(
        n_source,
        n_target,
        dim,
        attempt=attempt,
        interval_resamples=interval_resamples(),
    )


def interval_resamples():
    return INTERVALS["resamples"] if INTERVALS["enabled"] else 0


def metrics_runtime(wildcards, input, threads, attempt):
    n_source, dim = job_resources.feature_shape(input.source)
    n_target, _ = job_resources.feature_shape(input.target)
    metrics = config["metrics"]
    return job_resources.metrics_runtime_min(
        n_source,
        n_target,
        dim,
        threads,
        kid_subsets=metrics["kid_subsets"],
        kid_subset_size=metrics["kid_subset_size"],
        normalizations=2 if metrics["normalize"] == "both" else 1,
        attempt=attempt,
        interval_resamples=interval_resamples(),
    )


# ---------------------------------------------------------------- statistics, Inception Score and
# the class experiments (rules/statistics.smk, rules/experiments.smk)

INCEPTION_SCORE = config["inception_score"]
EXPERIMENTS = config["experiments"]
# experiment wildcard -> its config section
EXPERIMENT_SECTIONS = {"top1": "top1", "topn": "top_n", "resampling": "resampling"}


def _logits_dim(name):
    """Classes of an instance's logits, or None (not a classifier, or an unknown type, which
    config_problems reports)."""
    try:
        return extractor_type(type_of(name, EXTRACTORS[name])).logits_dim
    except (KeyError, TypeError, ValueError):
        return None


def classifier_instances():
    """Configured instances whose type has logits, in config order."""
    return [name for name in EXTRACTORS if _logits_dim(name)]


def resampling_extractor():
    return EXPERIMENTS["resampling"]["extractor"] or EXPERIMENTS["classifier"]


def experiment_problems():
    """Settings of the experiments and the Inception Score that name what does not exist or
    ask for more than the datasets hold (sizes known from the listings)."""
    problems = []
    classifier = EXPERIMENTS["classifier"]
    if classifier is not None:
        if classifier not in EXTRACTORS:
            problems.append(
                f"experiments.classifier: {classifier!r} is not a configured extractor "
                f"(configured: {', '.join(EXTRACTORS)})"
            )
        elif not _logits_dim(classifier):
            problems.append(
                f"experiments.classifier: {classifier!r} has no ImageNet logits; choose a "
                f"classifier instance ({', '.join(classifier_instances()) or 'none configured'})"
            )
        else:
            classes = _logits_dim(classifier)
            too_many = [n for n in EXPERIMENTS["top_n"]["n"] if n > classes]
            if EXPERIMENTS["top_n"]["enabled"] and too_many:
                problems.append(
                    f"experiments.top_n.n: {too_many} exceed the {classes} classes of "
                    f"{classifier}"
                )
        chosen = resampling_extractor()
        if EXPERIMENTS["resampling"]["enabled"] and chosen not in EXTRACTORS:
            problems.append(
                f"experiments.resampling.extractor: {chosen!r} is not a configured extractor"
            )
        for index, pair in enumerate(config["comparisons"]):
            for role in ("source", "target"):
                listing = LISTINGS.get(pair[role])
                if listing is not None and len(listing.images) < 2:
                    problems.append(
                        f"comparisons[{index}].{role}: the experiments need at least 2 images "
                        f"in {pair[role]}, found {len(listing.images)}"
                    )
    if INCEPTION_SCORE["enabled"] and classifier_instances():
        splits = INCEPTION_SCORE["splits"]
        for name in compared_datasets():
            listing = LISTINGS.get(name)
            if listing is not None and len(listing.images) < splits:
                problems.append(
                    f"inception_score.splits: {splits} splits need at least {splits} images, "
                    f"but {name} has {len(listing.images)}; lower the splits"
                )
    return problems


# Checked once the functions above exist (config_problems ran before them).
_experiment_problems = experiment_problems()
if _experiment_problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _experiment_problems)
    )

# Statistics in and out, shared caches and trust checks (rules/interop.smk, rules/trust.smk):
# what they run and what is wrong with their settings, from fidlens.trust_plan.
TRUST = TrustPlan(
    config,
    modes={
        name: (
            type_of(name, spec),
            spec["preprocess"]
            or extractor_type(type_of(name, spec)).preprocess_modes[0],
        )
        for name, spec in EXTRACTORS.items()
    },
)
_trust_problems = TRUST.problems({n: len(l.images) for n, l in LISTINGS.items()})
if _trust_problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _trust_problems)
    )


def experiment_tables():
    """Tables beside the metrics: the experiments' and the Inception Score's, when asked for."""
    tables = ["experiments"] if all_experiment_jsons() else []
    return tables + (["inception_score"] if all_inception_score_jsons() else [])


def statistics_layer(wildcards):
    return EXTRACTORS[wildcards.extractor]["layer"]


def statistics_settings(wildcards):
    """What one per-dataset statistics file holds (its rerun trigger): the instance's layer;
    the blocks whose mean and covariance it stores (raw always: the experiments, attention
    maps and exports read them; l2 when the comparisons' FID is also L2-normalised); the k-NN
    radii per block that the comparisons' precision/recall (both sets, K_PR) and
    density/coverage (targets only, K_DC) need."""
    metrics = config["metrics"]
    names = set(metrics["names"])
    blocks = NORMALIZE_MODES[metrics["normalize"]]
    pairs = config["comparisons"]
    compared = any(wildcards.dataset in pair.values() for pair in pairs)
    target = any(pair["target"] == wildcards.dataset for pair in pairs)
    ks = [K_PR] if compared and "pr" in names else []
    ks += [K_DC] if target and "dc" in names and K_DC not in ks else []
    ks.sort()
    l2 = compared and "fid" in names and "l2" in blocks
    return {
        "layer": statistics_layer(wildcards),
        "moments": "raw,l2" if l2 else "raw",
        "radii": {block: ks for block in blocks} if ks else {},
    }


def statistics_settings_json(wildcards):
    return canonical_json(statistics_settings(wildcards))


def statistics_flags(wildcards):
    settings = statistics_settings(wildcards)
    flags = [f"--layer {settings['layer']}", f"--moments {settings['moments']}"]
    for block, ks in settings["radii"].items():
        flags.append(f"--radii {block}={','.join(map(str, ks))}")
    return " ".join(flags)


def _statistics_work(wildcards):
    """(blocks with moments, blocks with radii) of one statistics job, for its resources."""
    settings = statistics_settings(wildcards)
    return settings["moments"].split(","), list(settings["radii"])


def _layer_shape(path, extractor):
    """(rows, columns) of the array an instance's `layer` reads from a cache."""
    rows, dim = job_resources.feature_shape(path)
    if EXTRACTORS[extractor]["layer"] == "logits":
        dim = _logits_dim(extractor) or dim
    return rows, dim


def statistics_mem_mb(wildcards, input, attempt):
    rows, dim = _layer_shape(input.cache, wildcards.extractor)
    moments, radii = _statistics_work(wildcards)
    return job_resources.statistics_mem_mb(
        rows, dim, attempt=attempt, l2="l2" in moments + radii, radii=bool(radii)
    )


def statistics_runtime(wildcards, input, threads, attempt):
    rows, dim = _layer_shape(input.cache, wildcards.extractor)
    moments, radii = _statistics_work(wildcards)
    return job_resources.statistics_runtime_min(
        rows,
        dim,
        threads,
        attempt=attempt,
        moment_blocks=len(moments),
        radii_blocks=len(radii),
    )


def all_inception_score_jsons():
    if not INCEPTION_SCORE["enabled"]:
        return []
    return [
        f"results/inception_score/{extractor}/{dataset}.json"
        for extractor in classifier_instances()
        for dataset in compared_datasets()
    ]


def inception_score_settings(wildcards):
    return {key: INCEPTION_SCORE[key] for key in ("splits", "logits", "shuffle_seed")}


def inception_score_settings_json(wildcards):
    return canonical_json(inception_score_settings(wildcards))


def inception_score_flags(wildcards):
    settings = inception_score_settings(wildcards)
    seed = "none" if settings["shuffle_seed"] is None else settings["shuffle_seed"]
    return f"--splits {settings['splits']} --logits {settings['logits']} --shuffle-seed {seed}"


def inception_score_mem_mb(wildcards, input, attempt):
    """The whole cache is read (features, logits and outputs: at most 3 x its logits)."""
    rows, dim = job_resources.feature_shape(input.cache)
    values = rows * (dim + 3 * (_logits_dim(wildcards.extractor) or 0))
    return job_resources.statistics_mem_mb(values, 1, attempt=attempt)


def all_experiment_jsons():
    if EXPERIMENTS["classifier"] is None:
        return []
    return [
        f"results/experiments/{kind}/{pair['source']}__{pair['target']}.json"
        for kind, section in EXPERIMENT_SECTIONS.items()
        if EXPERIMENTS[section]["enabled"]
        for pair in config["comparisons"]
    ]


def experiment_classifier_source(wildcards):
    return f"results/features/{EXPERIMENTS['classifier']}/{wildcards.source}.h5"


def experiment_classifier_target(wildcards):
    return f"results/features/{EXPERIMENTS['classifier']}/{wildcards.target}.h5"


def experiment_source_caches(wildcards):
    """Every extractor's cache of the generated set, in config order."""
    return [f"results/features/{name}/{wildcards.source}.h5" for name in EXTRACTORS]


def experiment_target_statistics(wildcards):
    """Every extractor's statistics of the real set, in the same order."""
    return [f"results/statistics/{name}/{wildcards.target}.h5" for name in EXTRACTORS]


def experiment_settings(wildcards):
    """Everything that changes one experiment's numbers (the caches and statistics it reads
    are its inputs; the instances' layers are in the statistics)."""
    kind = wildcards.experiment
    section = EXPERIMENTS[EXPERIMENT_SECTIONS[kind]]
    settings = {
        "classifier": EXPERIMENTS["classifier"],
        "seed": EXPERIMENTS["seed"],
        "repeats": EXPERIMENTS["repeats"],
        "allow_mixed": config["metrics"]["allow_mixed"],
    }
    if kind == "topn":
        settings["n"] = ",".join(str(n) for n in section["n"])
    if kind == "resampling":
        settings["extractor"] = resampling_extractor()
        settings["device"] = config["device"]
    if kind != "top1":
        settings["max_iterations"] = section["max_iterations"]
        settings["time_limit_s"] = section["time_limit_s"]
    return settings


def experiment_settings_json(wildcards):
    return canonical_json(experiment_settings(wildcards))


def experiment_flags(wildcards):
    flags = []
    for key, value in experiment_settings(wildcards).items():
        flag = f"--{key.replace('_', '-')}"
        if key == "classifier" or value is None or value is False:
            continue
        flags.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return " ".join(flags)


def _experiment_shapes(input):
    return [
        _layer_shape(path, name)
        for path, name in zip(input.sources, EXTRACTORS, strict=True)
    ]


def experiment_mem_mb(wildcards, input, attempt):
    return job_resources.experiment_mem_mb(_experiment_shapes(input), attempt=attempt)


def experiment_runtime(wildcards, input, threads, attempt):
    shapes = _experiment_shapes(input)
    n_target, _ = job_resources.feature_shape(input.classifier_target)
    kind = wildcards.experiment
    section = EXPERIMENTS[EXPERIMENT_SECTIONS[kind]]
    optimisations = []
    if kind == "topn":
        classes = _logits_dim(EXPERIMENTS["classifier"])
        n_source, _ = job_resources.feature_shape(input.classifier_source)
        optimisations = [(n_source, min(n_target, classes))] * len(section["n"])
    elif kind == "resampling":
        n_source, dim = shapes[list(EXTRACTORS).index(resampling_extractor())]
        optimisations = [(n_source, min(n_target, dim))]
    return job_resources.experiment_runtime_min(
        shapes,
        threads,
        optimisations,
        section.get("max_iterations", 0),
        section.get("time_limit_s"),
        EXPERIMENTS["repeats"],
        attempt=attempt,
    )


def experiment_gpus(wildcards):
    """The resampling runs on the config's device: a GPU for cuda / cuda:N."""
    if wildcards.experiment != "resampling":
        return 0
    return job_resources.gpus_for(config["device"])


# ---------------------------------------------------------------- PaCMAP maps (rules/embedding.smk)

EMBEDDING = config["embedding"]
# Fewest images per set PaCMAP can map (fidlens.embedding.MIN_POINTS_PER_SET; not imported
# here, so the parse never loads numpy's and numba's stack for it).
EMBEDDING_MIN_IMAGES = 3


def embedding_extractors():
    """The instances mapped: embedding.extractors in its order, null = all in config order."""
    chosen = EMBEDDING["extractors"]
    return list(EXTRACTORS) if chosen is None else list(dict.fromkeys(chosen))


def embedding_problems():
    if not EMBEDDING["enabled"]:
        return []
    problems = [
        f"embedding.extractors: {name!r} is not a configured extractor "
        f"(configured: {', '.join(EXTRACTORS)})"
        for name in embedding_extractors()
        if name not in EXTRACTORS
    ]
    for index, pair in enumerate(config["comparisons"]):
        for role in ("source", "target"):
            listing = LISTINGS.get(pair[role])
            if listing is not None and len(listing.images) < EMBEDDING_MIN_IMAGES:
                problems.append(
                    f"comparisons[{index}].{role}: a PaCMAP map needs at least "
                    f"{EMBEDDING_MIN_IMAGES} images in {pair[role]}, found "
                    f"{len(listing.images)}; add images or set embedding.enabled: false"
                )
    return problems


_embedding_problems = embedding_problems()
if _embedding_problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _embedding_problems)
    )


def embedding_path(extractor, source, target, ext):
    return f"results/embedding/{extractor}/{source}__{target}.{ext}"


def all_embedding_figures():
    """Per comparison: the grid, and a scatter per mapped extractor (when enabled)."""
    if not EMBEDDING["enabled"]:
        return []
    figures = []
    for pair in config["comparisons"]:
        source, target = pair["source"], pair["target"]
        figures.append(f"results/embedding/{source}__{target}.png")
        figures += [
            embedding_path(name, source, target, "png")
            for name in embedding_extractors()
        ]
    return figures


def embedding_inputs(ext):
    """Input function: the comparison's file `ext` of every mapped extractor, in order."""

    def inputs(wildcards):
        return [
            embedding_path(name, wildcards.source, wildcards.target, ext)
            for name in embedding_extractors()
        ]

    return inputs


def embedding_settings(wildcards):
    """Everything that changes one map's coordinates (the instance's `layer`: the array its
    metrics read)."""
    return {
        "layer": EXTRACTORS[wildcards.extractor]["layer"],
        "normalize": EMBEDDING["normalize"],
        "max_points": EMBEDDING["max_points"],
        "seed": EMBEDDING["seed"],
        "n_neighbors": EMBEDDING["n_neighbors"],
        "mn_ratio": EMBEDDING["mn_ratio"],
        "fp_ratio": EMBEDDING["fp_ratio"],
        "num_iters": ",".join(str(n) for n in EMBEDDING["num_iters"]),
    }


def embedding_settings_json(wildcards):
    return canonical_json(embedding_settings(wildcards))


def embedding_flags(wildcards):
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str('none' if value is None else value))}"
        for key, value in embedding_settings(wildcards).items()
    )


def _embedding_points(input):
    """Points of one map: each cache's rows, capped at max_points."""
    cap = EMBEDDING["max_points"]
    shapes = [
        job_resources.feature_shape(path) for path in (input.source, input.target)
    ]
    rows = sum(n if cap is None else min(n, cap) for n, _ in shapes)
    return rows, shapes[0][1]


def embedding_mem_mb(wildcards, input, attempt):
    """The two caches (float32), their float64 copy and its PCA (a rows^2 or D^2 matrix),
    above the ~800 MB of numpy, numba and faiss."""
    rows, dim = _embedding_points(input)
    n_source, _ = job_resources.feature_shape(input.source)
    n_target, _ = job_resources.feature_shape(input.target)
    values = (
        4 * (n_source + n_target) * dim
        + 8 * 4 * rows * dim
        + 8 * 2 * min(rows, dim) ** 2
    )
    return attempt * int(800 + 1.25 * values / 2**20)


def embedding_runtime(wildcards, input, threads, attempt):
    """Minutes: PaCMAP took ~2 s per 1000 points and normalisation on 2 cores (4000 points,
    2048-D); allow 5 s."""
    rows, _ = _embedding_points(input)
    maps = 2 if EMBEDDING["normalize"] == "both" else 1
    return attempt * (10 + int(rows / 1000 * maps * 5 / 60))


# ---------------------------------------------------------------- discard / replace (seed 000
# §3.2, rules/discard_replace.smk): per generated dataset its training set, pair file, latents
# file and generator; per extractor the five FIDs and seed 000's Table 2.

DISCARD_REPLACE = config["discard_replace"]
# generated dataset -> its section; empty when the experiment is off
DISCARD_REPLACE_SETS = DISCARD_REPLACE["datasets"] if DISCARD_REPLACE["enabled"] else {}
# A generator-declared dataset's latents file and generator are its own unless given.
for _name, _spec in DISCARD_REPLACE_SETS.items():
    if _name in GENERATED.generators:
        _spec.setdefault("latents", GENERATED.latents(_name))
        _spec.setdefault("generator", GENERATED.generator_section(_name))
    _spec.setdefault("generator", dict(GENERATOR_DEFAULTS))
DISCARD_REPLACE_WILDCARD = (
    "|".join(re.escape(name) for name in DISCARD_REPLACE_SETS) or "(?!x)x"
)


def discard_replace_extractors():
    """The instances the experiment runs on, in config order (null = every one)."""
    chosen = DISCARD_REPLACE["extractors"]
    return [name for name in EXTRACTORS if chosen is None or name in chosen]


def _discard_replace_made_by_demo(path):
    """Written by the demo rules, or by the generation and inspection rules."""
    return (
        os.path.normpath(path)
        in {os.path.normpath(p) for p in procedural_demo_files()}
        | GENERATED.made_files()
    )


def discard_replace_problems():
    """Names that do not exist, files that are neither there nor made by the demo, and
    StyleGAN pickles the config does not trust, before any job."""
    if not DISCARD_REPLACE["enabled"]:
        return []
    problems = []
    if not DISCARD_REPLACE_SETS:
        problems.append(
            "discard_replace.datasets: the experiment is enabled but names no dataset"
        )
    unknown = sorted(set(DISCARD_REPLACE["extractors"] or []) - set(EXTRACTORS))
    if unknown:
        problems.append(
            f"discard_replace.extractors: {', '.join(unknown)} not configured under "
            f"extractors (configured: {', '.join(EXTRACTORS)})"
        )
    for name, spec in DISCARD_REPLACE_SETS.items():
        where = f"discard_replace.datasets.{name}"
        for role, dataset in (("", name), (".train", spec["train"])):
            if dataset not in DATASETS:
                problems.append(
                    f"{where}{role}: dataset {dataset!r} is not configured under datasets"
                )
        if spec["train"] == name:
            problems.append(f"{where}.train: the training set cannot be {name} itself")
        for key in ("pairs", "latents"):
            path = spec.get(key)
            if path is None:
                problems.append(
                    f"{where}.latents: give the latents file of {name}'s w codes (or declare "
                    f"{name} by a generator: datasets.{name}.generator)"
                )
            elif not _discard_replace_made_by_demo(path) and not os.path.isfile(path):
                problems.append(
                    f"{where}.{key}: {path} does not exist (looked in {os.path.abspath(path)})"
                )
        generator = spec["generator"]
        if generator["adapter"] == "stylegan":
            network = generator["network"]
            if not network or not os.path.isfile(network):
                problems.append(
                    f"{where}.generator.network: the stylegan adapter needs an NVlabs network "
                    f"pickle; {network!r} is not a file"
                )
            if not generator["trust_pickle"]:
                problems.append(
                    f"{where}.generator.trust_pickle: unpickling {network} runs code; set "
                    "trust_pickle: true if you trust the file, and put NVlabs' StyleGAN "
                    "source (dnnlib, torch_utils) on PYTHONPATH"
                )
        listing = LISTINGS.get(name)
        if listing is not None and len(listing.images) < 4:
            problems.append(
                f"{where}: the experiment needs at least 4 images in {name} (2 selected, 2 "
                f"kept), found {len(listing.images)}"
            )
    return problems


_discard_replace_problems = discard_replace_problems()
if _discard_replace_problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _discard_replace_problems)
    )


def discard_replace_latents(wildcards):
    return DISCARD_REPLACE_SETS[wildcards.generated]["latents"]


def discard_replace_pairs(wildcards):
    return DISCARD_REPLACE_SETS[wildcards.generated]["pairs"]


@functools.cache
def _discard_replace_pair_latents(name):
    """Latents files of the other generated datasets the pair file names (the inspection
    loop's probes), so the selection can look up every pair's w."""
    from fidlens.pairs import read_pairs

    path = DISCARD_REPLACE_SETS[name]["pairs"]
    pairs = GENERATED.pairs_made_from(path)
    if pairs is None:
        pairs = read_pairs(path) if os.path.isfile(path) else []
    named = {p.good_dataset for p in pairs} | {p.bad_dataset for p in pairs}
    return {
        other: GENERATED.latents(other)
        for other in sorted(named - {name})
        if GENERATED.made_by_rule(other)
    }


def discard_replace_pair_latents(wildcards):
    return list(_discard_replace_pair_latents(wildcards.generated).values())


def discard_replace_pair_latents_flags(wildcards):
    return " ".join(
        f"--pair-latents {shlex.quote(f'{other}={path}')}"
        for other, path in _discard_replace_pair_latents(wildcards.generated).items()
    )


def discard_replace_train_cache(wildcards):
    train = DISCARD_REPLACE_SETS[wildcards.generated]["train"]
    return f"results/features/{wildcards.extractor}/{train}.h5"


def _discard_replace_generator(name):
    return DISCARD_REPLACE_SETS[name]["generator"]


def discard_replace_device(name):
    """The procedural generator always draws on the CPU (cheap, and pixel-identical
    everywhere); a StyleGAN network on the config's device."""
    if _discard_replace_generator(name)["adapter"] == "procedural":
        return "cpu"
    return config["device"]


def _file_state(path):
    """(path, size, mtime) of a file, so replacing it reruns what read it (no hashing)."""
    if not path or not os.path.isfile(path):
        return None
    stat = os.stat(path)
    return [path, stat.st_size, int(stat.st_mtime)]


def discard_replace_select_settings(wildcards):
    """Everything that changes one dataset's selection and replacements."""
    generator = _discard_replace_generator(wildcards.generated)
    return {
        "fraction": DISCARD_REPLACE["fraction"],
        "batch_size": DISCARD_REPLACE["batch_size"],
        "adapter": generator["adapter"],
        "network": generator["network"],
        "network_file": _file_state(generator["network"]),
        "trust_pickle": generator["trust_pickle"],
        "truncation_psi": generator["truncation_psi"],
        "resolution": generator["resolution"],
        "device": discard_replace_device(wildcards.generated),
    }


def discard_replace_select_settings_json(wildcards):
    return canonical_json(discard_replace_select_settings(wildcards))


def discard_replace_select_flags(wildcards):
    flags = []
    for key, value in discard_replace_select_settings(wildcards).items():
        flag = f"--{key.replace('_', '-')}"
        if key == "network_file" or value is None or value is False:
            continue
        flags.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return " ".join(flags)


def _discard_replace_selected(wildcards, input):
    n = dataset_size(wildcards.generated, input.manifest)
    return max(2, round(DISCARD_REPLACE["fraction"] * n))


def discard_replace_select_mem_mb(wildcards, input, attempt):
    """The generator and the replacements in memory: 6 MB per image at up to 1024 px."""
    return attempt * (2000 + 6 * _discard_replace_selected(wildcards, input))


def discard_replace_select_runtime(wildcards, input, threads, attempt):
    """Minutes: a StyleGAN image takes ~0.2 s on a GPU and up to ~5 s on a CPU."""
    on_gpu = job_resources.device_type_of(discard_replace_device(wildcards.generated))
    seconds = 0.2 if on_gpu == "cuda" else 5
    minutes = _discard_replace_selected(wildcards, input) * seconds / 60
    return attempt * (10 + int(minutes))


def discard_replace_select_gpus(wildcards):
    return job_resources.gpus_for(discard_replace_device(wildcards.generated))


def _replacement_wildcards(wildcards):
    """The extraction settings of the replacements are those of their generated dataset."""
    return types.SimpleNamespace(
        extractor=wildcards.extractor, dataset=wildcards.generated
    )


def replacement_extraction_settings_json(wildcards):
    return extraction_settings_json(_replacement_wildcards(wildcards))


def replacement_extraction_flags(wildcards):
    return extraction_flags(_replacement_wildcards(wildcards))


def _replacement_count(input):
    """Images in the replacements folder (FileNotFoundError until it is made)."""
    return sum(len(files) for _, _, files in os.walk(input.images, onerror=_raise))


def _raise(error):
    raise error


def replacement_extraction_mem_mb(wildcards, input, threads, attempt):
    return job_resources.extraction_mem_mb(
        _replacement_count(input),
        EXTRACTORS[wildcards.extractor]["batch_size"],
        job_resources.max_workers(threads, config["device"]),
        output_floats=extraction_output_floats(wildcards.extractor),
        attempt=attempt,
    )


def replacement_extraction_runtime(wildcards, input, threads, attempt):
    return job_resources.extraction_runtime_min(
        _replacement_count(input),
        threads,
        job_resources.device_type_of(config["device"]),
        attempt=attempt,
    )


def discard_replace_fids_settings(wildcards):
    return {
        "layer": EXTRACTORS[wildcards.extractor]["layer"],
        "allow_mixed": config["metrics"]["allow_mixed"],
        "train_name": DISCARD_REPLACE_SETS[wildcards.generated]["train"],
    }


def discard_replace_fids_settings_json(wildcards):
    return canonical_json(discard_replace_fids_settings(wildcards))


def discard_replace_fids_flags(wildcards):
    settings = discard_replace_fids_settings(wildcards)
    mixed = " --allow-mixed" if settings["allow_mixed"] else ""
    return f"--layer {settings['layer']} --train-name {settings['train_name']}{mixed}"


def _discard_replace_shapes(input, extractor):
    rows, dim = _layer_shape(input.generated, extractor)
    train, _ = _layer_shape(input.train, extractor)
    return rows, train, dim


def discard_replace_fids_mem_mb(wildcards, input, attempt):
    rows, train, dim = _discard_replace_shapes(input, wildcards.extractor)
    return job_resources.metrics_mem_mb(rows, train, dim, attempt=attempt)


def discard_replace_fids_runtime(wildcards, input, threads, attempt):
    """Minutes: five FIDs, each a covariance of its rows (N D^2) and a D^3 square root."""
    rows, train, dim = _discard_replace_shapes(input, wildcards.extractor)
    work = 5 * ((2 * rows + train) * dim**2 + 10 * dim**3)
    seconds = work * job_resources.SECONDS_PER_MULTIPLY_ADD / threads
    return attempt * (10 + int(seconds / 60))


def discard_replace_jsons(wildcards):
    """One result per generated dataset of one extractor, in config order."""
    return [
        f"results/discard_replace/{name}/fids/{wildcards.extractor}.json"
        for name in DISCARD_REPLACE_SETS
    ]


def discard_replace_outputs():
    """Table 2 per extractor and the sheet per generated dataset."""
    if not DISCARD_REPLACE_SETS:
        return []
    tables = [
        f"results/tables/discard_replace_{extractor}.{ext}"
        for extractor in discard_replace_extractors()
        for ext in ("csv", "md")
    ]
    return tables + [
        f"results/discard_replace/{name}/sheet.png" for name in DISCARD_REPLACE_SETS
    ]


# ---------------------------------------------------------------- FID attention (rules/attention.smk)

ATTENTION = config["attention"]


def demo_pairs_file():
    """The demo's good/bad pair file: each image of its strongest generated set with the
    real_a image it was made from (fidlens.demo.demo_pairs)."""
    return os.path.join(DEMO["out_dir"], "pairs.csv")


def _gradient_capable(name):
    """Whether an instance's type declares an attention layer with gradients (a torch net)."""
    try:
        kind = extractor_type(type_of(name, EXTRACTORS[name]))
    except (KeyError, TypeError, ValueError):
        return False
    return bool(kind.attention_layer) and bool(kind.has_gradients)


def attention_extractors():
    """attention.extractors in its order; null = every gradient-capable instance, in config
    order."""
    chosen = ATTENTION["extractors"]
    if chosen is None:
        return [name for name in EXTRACTORS if _gradient_capable(name)]
    return [name for name in chosen if name in EXTRACTORS]


def _pairs_made_by_demo():
    path = ATTENTION["pairs"]
    return bool(DEMO["enabled"] and path) and (
        os.path.normpath(path) == os.path.normpath(demo_pairs_file())
    )


@functools.cache
def attention_pairs():
    """The configured pair file's pairs: read and checked at parse time when it is a user's
    file; for the demo's (written by make_demo_data) what it will hold, by dataset; [] for
    none. Problems are reported by attention_problems."""
    from fidlens.pairs import DEMO_GOOD_SET, Pair, demo_bad_set, read_pairs

    path = ATTENTION["pairs"]
    if not path:
        return []
    if _pairs_made_by_demo():
        bad = demo_bad_set(DEMO["generated"])
        return [] if bad is None else [Pair(DEMO_GOOD_SET, "*", bad, "*")]
    made = GENERATED.pairs_made_from(path)  # the inspection loop's converted pairs
    return read_pairs(path) if made is None else made


def attention_problems():
    """Extractors that are not configured or give no maps, a pair file that is missing,
    malformed or names datasets and images that do not exist, and sources too small."""
    from fidlens.pairs import PairFileError, pair_problems

    if not ATTENTION["enabled"]:
        return []
    problems = []
    for name in ATTENTION["extractors"] or []:
        if name not in EXTRACTORS:
            problems.append(
                f"attention.extractors: {name!r} is not a configured extractor "
                f"(configured: {', '.join(EXTRACTORS)})"
            )
        elif not _gradient_capable(name):
            problems.append(
                f"attention.extractors: {name!r} ({type_of(name, EXTRACTORS[name])}) declares "
                "no attention layer with gradients (a network outside torch, e.g. dlib)"
            )
    if not attention_extractors():
        problems.append(
            "attention.enabled: no configured extractor can give attention maps (a torch "
            "network with an attention layer); add one or set attention.enabled: false"
        )
    path = ATTENTION["pairs"]
    if path and not _pairs_made_by_demo():
        where = f"attention.pairs ({path})"
        if not os.path.isfile(path) and os.path.normpath(path) not in (
            GENERATED.made_pair_files()
        ):
            problems.append(
                f"{where}: file does not exist (looked in {os.path.abspath(path)})"
            )
        else:
            try:
                pairs = attention_pairs()
            except (OSError, PairFileError) as error:
                problems.append(f"attention.pairs: {error}")
            else:
                images = {name: None for name in DATASETS}
                images.update({name: LISTINGS[name].images for name in LISTINGS})
                problems += pair_problems(pairs, images, where)
    for index, pair in enumerate(config["comparisons"]):
        listing = LISTINGS.get(pair["source"])
        if listing is not None and len(listing.images) < 3:
            problems.append(
                f"comparisons[{index}]: FID attention needs at least 3 images in "
                f"{pair['source']}, found {len(listing.images)}"
            )
    return problems


_attention_problems = attention_problems()
if _attention_problems:
    raise WorkflowError(
        "Invalid configuration:\n"
        + "\n".join(f"  - {problem}" for problem in _attention_problems)
    )


def attention_dir(extractor, source, target):
    return f"results/attention/{extractor}/{source}__{target}"


def pair_sources():
    """Comparison sources that are some pair's bad dataset."""
    if not ATTENTION["enabled"]:
        return set()
    return {pair.bad_dataset for pair in attention_pairs()}


def all_attention_outputs():
    """Per attention extractor and comparison its sheets and influence; per comparison the
    averaged-map figure; the pair sheet where the source holds bad images of pairs."""
    if not ATTENTION["enabled"]:
        return []
    outputs = []
    for pair in config["comparisons"]:
        source, target = pair["source"], pair["target"]
        outputs.append(f"results/attention/{source}__{target}.png")
        for name in attention_extractors():
            folder = attention_dir(name, source, target)
            files = ("influence.csv", "influence.png", "average.png", "sheet.png")
            outputs += [f"{folder}/{file}" for file in files]
            if source in pair_sources():
                outputs += [f"{folder}/pairs.png", f"{folder}/pairs.csv"]
    return outputs


def attention_settings(wildcards):
    """Everything that changes one comparison's maps: the network (as its extraction builds
    it) and the attention settings."""
    name = wildcards.extractor
    extractor = EXTRACTORS[name]
    return {
        "type": type_of(name, extractor),
        "settings": extractor_own_settings(name),
        "weights": extractor["weights"],
        "fallback": extractor["fallback"],
        "weights_dir": config["weights_dir"],
        "preprocess": extractor["preprocess"],
        "layer": extractor["layer"],
        "weighting": ATTENTION["weighting"],
        "normalize": ATTENTION["normalize"],
        "batch_size": ATTENTION["batch_size"],
        "device": config["device"],
        "allow_tf32": config["allow_tf32"],
    }


def attention_settings_json(wildcards):
    return canonical_json(attention_settings(wildcards))


def attention_flags(wildcards):
    settings = attention_settings(wildcards)
    flags = [
        ("--type", settings["type"]),
        ("--settings", canonical_settings(settings["settings"]) or None),
        ("--weights", settings["weights"]),
        ("--fallback", settings["fallback"]),
        ("--weights-dir", settings["weights_dir"]),
        ("--preprocess", settings["preprocess"]),
        ("--layer", settings["layer"]),
        ("--weighting", settings["weighting"]),
        ("--normalize", settings["normalize"]),
        ("--batch-size", settings["batch_size"]),
        ("--device", settings["device"]),
    ]
    return " ".join(
        f"{flag} {shlex.quote(str(value))}"
        for flag, value in flags
        if value is not None
    ) + (" --allow-tf32" if settings["allow_tf32"] else "")


def attention_statistics(wildcards):
    """The statistics files FID uses: the per-dataset ones for raw features; none with L2
    (the L2 statistics are computed from the caches in the job)."""
    if ATTENTION["normalize"] == "l2":
        return {}
    return {
        "source_statistics": f"results/statistics/{wildcards.extractor}/{wildcards.source}.h5",
        "target_statistics": f"results/statistics/{wildcards.extractor}/{wildcards.target}.h5",
    }


def attention_statistics_flags(wildcards, input):
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(input[key]))}"
        for key in ("source_statistics", "target_statistics")
        if key in input.keys()
    )


def attention_good_datasets(wildcards):
    return sorted(
        {p.good_dataset for p in attention_pairs() if p.bad_dataset == wildcards.source}
    )


def attention_good_caches(wildcards):
    return [
        f"results/features/{wildcards.extractor}/{name}.h5"
        for name in attention_good_datasets(wildcards)
    ]


def attention_pair_flags(wildcards):
    """--dataset NAME=PATH of the source and of every good dataset of its pairs."""
    names = sorted({wildcards.source, *attention_good_datasets(wildcards)})
    return " ".join(
        f"--dataset {shlex.quote(f'{name}={dataset_path(name)}')}" for name in names
    )


def attention_good_cache_flags(wildcards):
    """--good-cache NAME=CACHE of every good dataset of the source's pairs."""
    return " ".join(
        f"--good-cache {shlex.quote(f'{name}={cache}')}"
        for name, cache in zip(
            attention_good_datasets(wildcards),
            attention_good_caches(wildcards),
            strict=True,
        )
    )


def attention_source_images(wildcards):
    return dataset_path(wildcards.source)


def attention_mem_mb(wildcards, input, threads, attempt):
    """The network and a batch with their gradients (as an extraction of the source set),
    and the comparison's D x D statistics and factorisation."""
    rows, dim = job_resources.feature_shape(input.source)
    workers = job_resources.max_workers(threads, config["device"])
    network = job_resources.extraction_mem_mb(
        rows, 2 * ATTENTION["batch_size"], workers, output_floats=dim, attempt=attempt
    )
    return network + job_resources.statistics_mem_mb(rows, 4 * dim, attempt=attempt)


def attention_runtime(wildcards, input, threads, attempt):
    """A forward and a backward pass per source image, and the leave-one-out FIDs."""
    rows, dim = job_resources.feature_shape(input.source)
    device = job_resources.device_type_of(config["device"])
    passes = job_resources.extraction_runtime_min(
        2 * rows, threads, device, attempt=attempt
    )
    return passes + job_resources.statistics_runtime_min(
        rows, dim, threads, attempt=attempt
    )


def attention_figure_maps(wildcards):
    """Every attention extractor's maps of one comparison, in panel order."""
    return [
        f"{attention_dir(name, wildcards.source, wildcards.target)}/maps.h5"
        for name in attention_extractors()
    ]


# ---------------------------------------------------------------- the report (rules/report.smk):
# `snakemake --report results/report.html` after a run (make demo does it). Categories are
# numbered (1-9) so that the report's menu lists them in this order; a stage wraps its outputs with
# report(path, caption="../report/captions/<name>.rst", category=REPORT_CATEGORIES[<stage>]).

REPORT_CATEGORIES = {
    "summary": "1. Summary: weights, software, settings",
    "paper": "2. Paper tables (seeds 001 and 000)",
    "metrics": "3. Metrics",
    "faces": "4. Face-detection rate",
    "experiments": "5. Experiments (seed 002)",
    "discard_replace": "6. Seed 000: inspection, discard / replace",
    "inspection": "6. Seed 000: inspection, discard / replace",
    "attention": "7. Where FID looks (Grad-CAM of FID)",
    "embedding": "8. PaCMAP maps (seed 001 Fig. 3)",
    "trust": "9. Trust checks",
    "other": "Other tables",  # after the numbered ones (the menu sorts by name)
}
# Markdown table file (under results/, without .md) -> (category key, subcategory, title)
REPORT_PAGES = {
    "tables/paper": ("paper", "Seed 001 Tables I-IV, seed 000 Table 2", "Paper tables"),
    "tables/metrics": ("metrics", "Tables", "Metric tables, every number"),
    "tables/face_detection": ("faces", "Rates", "Face-detection rate"),
    "tables/experiments": ("experiments", "Tables", "Experiments (seed 002)"),
    "tables/inception_score": ("experiments", "Inception Score", "Inception Score"),
    "tables/inspection_pairs": ("inspection", "Inspection", "Inspection pairs"),
    "trust/overlap": ("trust", "Tables", "Overlap: byte- and near-identical images"),
    "trust/sample_size": ("trust", "Tables", "Sample size: FID beside FD-infinity"),
}


EXPERIMENT_TITLES = {
    "top1": "Top-1 histogram matching",
    "topn": "Top-N histogram matching",
    "resampling": "FID-minimising resampling",
}


def experiment_report_subcategory(wildcards):
    return EXPERIMENT_TITLES[wildcards.experiment]


def dataset_kind(name):
    """real | generated (datasets.<name>.kind; left out: generated)."""
    return DATASETS.get(name, {}).get("kind", "generated")


def report_metric_jsons():
    """Every metric file the tables read, each once, in table order."""
    return list(dict.fromkeys(all_metric_jsons()))


def report_sources():
    names = [os.path.basename(path).split("__")[0] for path in report_metric_jsons()]
    return list(dict.fromkeys(names))


def paper_kinds(wildcards=None):
    """Every compared source's kind, as canonical JSON (the tables' rerun trigger)."""
    return canonical_json({name: dataset_kind(name) for name in report_sources()})


def paper_kind_flags(wildcards=None):
    return " ".join(
        f"--kind {shlex.quote(f'{name}={dataset_kind(name)}')}"
        for name in report_sources()
    )


def figure_targets():
    """Targets of the comparisons (datasets with features), in first-appearance order."""
    return list(dict.fromkeys(pair["target"] for pair in config["comparisons"]))


def figure_metric_jsons(wildcards):
    return [
        metric_json(extractor, pair["source"], pair["target"])
        for extractor in EXTRACTORS
        for pair in config["comparisons"]
        if pair["target"] == wildcards.target
    ]


def paper_discard_replace_jsons():
    """Seed 000 Table 2's results: every discard / replace extractor x generated set."""
    return [
        f"results/discard_replace/{name}/fids/{extractor}.json"
        for extractor in discard_replace_extractors()
        for name in DISCARD_REPLACE_SETS
    ]


def report_page_names():
    """Markdown tables the workflow makes (final_outputs) and the paper tables, as pages."""
    made = [
        path[len("results/") : -len(".md")]
        for path in stage_outputs()
        if path.startswith("results/") and path.endswith(".md")
    ]
    return list(dict.fromkeys(["tables/paper", *made]))


def _report_page(page):
    if page in REPORT_PAGES:
        return REPORT_PAGES[page]
    name = page.rsplit("/", 1)[-1]
    if name.startswith("discard_replace_"):
        extractor = name[len("discard_replace_") :]
        return ("discard_replace", "Table 2", f"Seed 000 Table 2: {extractor}")
    return ("other", name, name)


def report_page_category(wildcards):
    return REPORT_CATEGORIES[_report_page(wildcards.page)[0]]


def report_page_subcategory(wildcards):
    return _report_page(wildcards.page)[1]


def report_page_title(wildcards):
    return _report_page(wildcards.page)[2]


def report_summary_settings(wildcards=None):
    """The settings the summary page lists (small and canonical)."""
    metrics = config["metrics"]
    return canonical_json(
        {
            "device": config["device"],
            "metrics.names": ",".join(metrics["names"]),
            "metrics.normalize": metrics["normalize"],
            "metrics.seed": metrics["seed"],
            "metrics.intervals": canonical_json(INTERVALS),
            "extractors": ", ".join(
                f"{name} (weights {spec['weights']}, fallback {spec['fallback']})"
                for name, spec in EXTRACTORS.items()
            ),
            "kinds": ", ".join(f"{n}: {dataset_kind(n)}" for n in report_sources()),
        }
    )


def report_outputs():
    """What rules/report.smk adds to the final outputs (report.enabled)."""
    if not config["report"]["enabled"]:
        return []
    return [
        "results/report/summary.html",
        "results/tables/paper.md",
        "results/tables/paper.tex",
        *(f"results/report/figures/{target}.png" for target in figure_targets()),
        *(f"results/report/pages/{page}.html" for page in report_page_names()),
    ]


REPORT_PAGE_WILDCARD = "|".join(re.escape(page) for page in report_page_names())
