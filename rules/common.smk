# Config validation and the small functions the rules call. Stage files hold only rules.
#
# Rerun triggers: each job gets only its own settings, as canonical JSON in `params`, so
# changing one setting reruns exactly the jobs it affects. Image changes in a user's dataset
# are caught by a cheap fingerprint computed here, at parse time.

import functools
import json
import os
import re
import shlex

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from fidlens.datasets import fingerprint
from fidlens.extractors import available as available_extractors
from fidlens.weights import WEIGHTS_SPECS, candidate_paths, how_to_get


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
    known = available_extractors()
    for name, spec in EXTRACTORS.items():
        if name not in known:
            problems.append(
                f"extractors.{name}: no such extractor (available: {', '.join(known)})"
            )
        weights = spec["weights"]
        if weights == "auto" and spec["fallback"] == "none" and name in WEIGHTS_SPECS:
            official = WEIGHTS_SPECS[name]
            looked = candidate_paths(official, config["weights_dir"])
            if not any(path.is_file() for path in looked):
                problems.append(
                    f"extractors.{name}.weights: auto found no official file; looked at "
                    f"{', '.join(map(str, looked))}. {how_to_get(official, config['weights_dir'])}"
                    " Or set fallback: random for clearly marked random-init numbers."
                )
        is_file_spec = weights != "auto" and not weights.startswith("random")
        if is_file_spec and not os.path.isfile(os.path.expanduser(weights)):
            problems.append(
                f"extractors.{name}.weights: file {weights} does not exist "
                "(give a weights file, auto or random; see README.md, Weights)"
            )
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
    return problems


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


# A user's dataset exists now: a change to its images changes this fingerprint and reruns
# that dataset's jobs only. Demo folders are made by a rule (their directory() output drives
# reruns) and may not exist yet.
@functools.cache
def dataset_fingerprint_of(name):
    """Computed once per parse, for the datasets that jobs use."""
    path = dataset_path(name)
    return "made by rule make_demo_data" if made_by_demo(path) else fingerprint(path)


def dataset_images(wildcards):
    return dataset_path(wildcards.dataset)


def dataset_fingerprint(wildcards):
    return dataset_fingerprint_of(wildcards.dataset)


# ---------------------------------------------------------------- features


def extraction_settings(wildcards):
    """Everything that changes one cache's numbers, and nothing else."""
    extractor = EXTRACTORS[wildcards.extractor]
    return {
        "extractor": wildcards.extractor,
        "weights": extractor["weights"],
        "fallback": extractor["fallback"],
        "weights_dir": config["weights_dir"],
        "preprocess": extractor["preprocess"],
        "batch_size": extractor["batch_size"],
        "device": config["device"],
        "on_bad_image": config["on_bad_image"],
        "resolution": dataset_resolution(wildcards.dataset),
    }


def extraction_settings_json(wildcards):
    return canonical_json(extraction_settings(wildcards))


def extraction_flags(wildcards):
    """The extraction CLI flags, built from the same settings as the rerun trigger."""
    settings = extraction_settings(wildcards)
    flags = [
        ("--weights", settings["weights"]),
        ("--fallback", settings["fallback"]),
        ("--weights-dir", settings["weights_dir"]),
        ("--preprocess", settings["preprocess"]),
        ("--batch-size", settings["batch_size"]),
        ("--device", settings["device"]),
        ("--on-bad-image", settings["on_bad_image"]),
        ("--resolution", settings["resolution"]),
    ]
    return " ".join(
        f"{flag} {shlex.quote(str(value))}"
        for flag, value in flags
        if value is not None
    )


def weights_file_state(wildcards):
    """Which weights file the job would load now (path, size, mtime), so that installing the
    official file later, or replacing it, reruns the extraction (no hashing at parse time).
    """
    settings = extraction_settings(wildcards)
    weights = settings["weights"]
    if weights.startswith("random"):
        return "random"
    if weights == "auto":
        spec = WEIGHTS_SPECS.get(wildcards.extractor)
        if spec is None:
            return f"auto: no weights spec for {wildcards.extractor}"
        candidates = candidate_paths(spec, settings["weights_dir"])
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            return "auto: none found"
    else:
        found = os.path.expanduser(weights)
        if not os.path.isfile(found):
            return f"missing: {found}"
    stat = os.stat(found)
    return f"{found} {stat.st_size} {stat.st_mtime_ns}"


def extractor_threads(wildcards):
    return EXTRACTORS[wildcards.extractor]["threads"]


# ---------------------------------------------------------------- metrics and tables


def metric_settings():
    metrics = config["metrics"]
    return {
        "metrics": ",".join(metrics["names"]),
        "normalize": metrics["normalize"],
        "seed": metrics["seed"],
        "kid_subsets": metrics["kid_subsets"],
        "kid_subset_size": metrics["kid_subset_size"],
    }


def metric_flags():
    settings = metric_settings()
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(value))}"
        for key, value in settings.items()
    )


def metric_json(extractor, source, target):
    return f"results/metrics/{extractor}/{source}__{target}.json"


def all_metric_jsons():
    """One per extractor x comparison, in config order (the tables keep this order)."""
    return [
        metric_json(extractor, pair["source"], pair["target"])
        for extractor in EXTRACTORS
        for pair in config["comparisons"]
    ]


def final_outputs():
    return ["results/tables/metrics.csv", "results/tables/metrics.md"]
