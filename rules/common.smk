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

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from fidlens import resources as job_resources
from fidlens.datasets import content_digest, list_dataset, read_manifest
from fidlens.extractors import canonical_settings, files_state, instance_problems
from fidlens.extractors import own_settings, settings_problems, type_of
from fidlens.extractors import get_type as extractor_type
from fidlens.metric_specs import too_small


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


def made_by_demo(path):
    return os.path.normpath(path) in {os.path.normpath(d) for d in demo_dataset_dirs()}


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
    clash = set(REAL_DEMO_SETS) & set(DEMO["generated"])
    if clash:
        problems.append(
            f"demo.generated: {', '.join(sorted(clash))} is a real demo set name"
        )
    for name, spec in DATASETS.items():
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
    return problems


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
    the manifest follows the images' content instead (dataset_content)."""
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
    }


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


def metric_json(extractor, source, target):
    return f"results/metrics/{extractor}/{source}__{target}.json"


def all_metric_jsons():
    """One per extractor x comparison, in config order (the tables keep this order)."""
    return [
        metric_json(extractor, pair["source"], pair["target"])
        for extractor in EXTRACTORS
        for pair in config["comparisons"]
    ]


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
    tables = ["metrics"] + (["face_detection"] if FACES["enabled"] else [])
    tables += experiment_tables()
    return [f"results/tables/{name}.{ext}" for name in tables for ext in ("csv", "md")]


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
    return job_resources.metrics_mem_mb(n_source, n_target, dim, attempt=attempt)


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


def experiment_tables():
    """Tables beside the metrics: the experiments' and the Inception Score's, when asked for."""
    tables = ["experiments"] if all_experiment_jsons() else []
    return tables + (["inception_score"] if all_inception_score_jsons() else [])


def statistics_layer(wildcards):
    return EXTRACTORS[wildcards.extractor]["layer"]


def _layer_shape(path, extractor):
    """(rows, columns) of the array an instance's `layer` reads from a cache."""
    rows, dim = job_resources.feature_shape(path)
    if EXTRACTORS[extractor]["layer"] == "logits":
        dim = _logits_dim(extractor) or dim
    return rows, dim


def statistics_mem_mb(wildcards, input, attempt):
    rows, dim = _layer_shape(input.cache, wildcards.extractor)
    return job_resources.statistics_mem_mb(rows, dim, attempt=attempt)


def statistics_runtime(wildcards, input, threads, attempt):
    rows, dim = _layer_shape(input.cache, wildcards.extractor)
    return job_resources.statistics_runtime_min(rows, dim, threads, attempt=attempt)


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
