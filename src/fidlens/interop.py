"""Numbers made elsewhere, used here only when their provenance fits: shared feature caches,
imported statistics, and FID against a target given only as statistics.

- `expected_provenance`: what a configured extractor instance would stamp into a cache made on
  this machine (its type, feature layer, preprocessing, own settings, the sha256 of the
  weights file it resolves to or its random-init seed, the sha256 of its model files, the
  working resolution), found without building the network.
- `provenance_mismatches`: each recorded setting of a cache or statistics file that differs
  from that, naming the setting and both values. A shared cache must agree on all of them;
  a mismatch is an error (`ProvenanceMismatchError`), never a silent mix.
- `import_cache`: a cache made on another machine, checked (its arrays' stored sha256, its
  provenance, and its images against this machine's manifest: same paths, same sha1) and
  copied into the workflow's cache folder.
- `metrics_from_statistics`: FID of a source cache against target statistics; every metric
  that needs the target's features says "unavailable: target given as statistics".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from fidlens.cache import read_features
from fidlens.files import atomic_path
from fidlens.metric_specs import METRIC_KEYS, NORMALIZE_MODES
from fidlens.provenance import RANDOM_INIT, package_versions
from fidlens.statistics import LAYER_ARRAYS, DatasetStatistics
from fidlens.weight_specs import random_seed_from_origin

UNKNOWN = "unknown"
UNAVAILABLE_STATISTICS = "unavailable: target given as statistics"
UNAVAILABLE_L2 = (
    "unavailable: target given as statistics (L2-normalised features need the features)"
)
# The settings compared, in the order they are reported.
CHECKED = (
    "extractor_type",
    "feature_layer",
    "preprocess",
    "weights",
    "extractor_settings",
    "resolution",
)


class ProvenanceMismatchError(ValueError):
    """A cache or statistics file made with other settings than the configured instance."""


# ---------------------------------------------------------------- what an instance would make


def expected_provenance(
    type_name: str,
    *,
    weights: str = "auto",
    fallback: str | None = None,
    weights_dir=None,
    preprocess: str | None = None,
    settings: dict | None = None,
    resolution: int | None = None,
) -> dict:
    """The provenance a cache made here by this instance would record, as a dict of
    CHECKED keys (+ the sha256 of each model file as `<setting>_sha256`), with weights
    described by `weights_identity`. Resolves (and hashes) the weights file like the
    extraction does; raises its errors (a missing official file without fallback)."""
    from fidlens.extractors import get_type, settings_problems
    from fidlens.weight_specs import WEIGHTS_SPECS
    from fidlens.weights import resolve_file_setting, resolve_weights

    cls = get_type(type_name)
    own, problems = settings_problems(cls, dict(settings or {}))
    if problems:
        raise ValueError(f"{type_name} settings: {problems}")
    spec = WEIGHTS_SPECS.get(cls.name)
    if spec is None:
        from fidlens.extractors import _no_official_file

        spec = _no_official_file(cls.name)
    resolved = resolve_weights(
        spec,
        weights,
        fallback=None if fallback in (None, "none") else fallback,
        weights_dir=weights_dir,
    )
    expected = {
        "extractor_type": cls.name,
        "feature_layer": cls.feature_layer,
        "preprocess": preprocess or cls.preprocess_modes[0],
        "weights": weights_identity(
            {"weights_sha256": resolved.info.sha256, "weights_origin": resolved.info.origin}
        ),
        "extractor_settings": _settings_text(own),
        "resolution": str(resolution) if resolution else "native",
    }
    for key in cls.used_files(own):
        expected[f"{key}_sha256"] = resolve_file_setting(
            cls.files[key], own[key], weights_dir
        ).info.sha256
    return expected


def weights_identity(attrs: dict) -> str | None:
    """What identifies a cache's weights: `sha256 <hex>` of the file, or `random-init seed S`;
    None when not recorded (another tool's file)."""
    sha256 = attrs.get("weights_sha256")
    if sha256 == RANDOM_INIT or attrs.get("weights") == RANDOM_INIT:
        seed = random_seed_from_origin(str(attrs.get("weights_origin", "")))
        return f"random-init seed {seed}" if seed is not None else "random-init (seed unknown)"
    return None if sha256 is None else f"sha256 {sha256}"


def _settings_text(settings) -> str:
    if isinstance(settings, str):
        settings = json.loads(settings) if settings.strip() else {}
    return json.dumps(dict(settings or {}), sort_keys=True)


def recorded_provenance(attrs: dict) -> dict:
    """The CHECKED settings (and model-file sha256s) a cache or statistics file records; a
    setting it does not record is None."""
    found = {
        "extractor_type": attrs.get("extractor_type", attrs.get("extractor")),
        "feature_layer": attrs.get("feature_layer"),
        "preprocess": attrs.get("preprocess"),
        "weights": weights_identity(attrs),
        "extractor_settings": _settings_text(attrs.get("extractor_settings", "{}")),
        "resolution": None if attrs.get("resolution") is None else str(attrs["resolution"]),
    }
    found.update(
        {
            key: str(value)
            for key, value in attrs.items()
            if key.endswith("_sha256") and key != "weights_sha256"
        }
    )
    return found


def provenance_mismatches(attrs: dict, expected: dict) -> list[str]:
    """One line per expected setting the file records differently, or does not record:
    `setting: file has X, this configuration makes Y`."""
    found = recorded_provenance(attrs)
    problems = []
    for key, want in expected.items():
        have = found.get(key)
        if have != want:
            shown = "nothing (not recorded)" if have is None else repr(have)
            problems.append(f"{key}: the file has {shown}, this configuration makes {want!r}")
    return problems


def check_provenance(attrs: dict, expected: dict, path, instance: str) -> None:
    """Raise ProvenanceMismatchError naming the file, the instance and every mismatch."""
    problems = provenance_mismatches(attrs, expected)
    if problems:
        raise ProvenanceMismatchError(
            f"{path} was not made with the settings of extractor instance {instance!r}, so its "
            "numbers cannot be mixed with this study's:\n"
            + "".join(f"  - {line}\n" for line in problems)
            + "Use a cache made with these settings, change the instance's settings to the "
            "file's, or remove the file from the config to extract the features here."
        )


# ---------------------------------------------------------------- shared caches


def image_mismatches(cache, manifest_rows) -> list[str]:
    """Differences between a cache's images and this machine's manifest of the dataset: an
    image of the cache missing here or with another sha1, an image here in neither the cache's
    rows nor its skipped / excluded lists."""
    if cache.paths is None or cache.sha1 is None:
        return ["the cache records no image paths and sha1s: its images cannot be checked"]
    here = {row.path: row.sha1 for row in manifest_rows}
    problems = []
    for path, sha1 in zip(cache.paths, cache.sha1, strict=True):
        if path not in here:
            problems.append(f"{path}: in the cache, not in the dataset here")
        elif here[path] != sha1:
            problems.append(f"{path}: sha1 {sha1} in the cache, {here[path]} here")
    accounted = set(cache.paths) | {
        entry.split(": ", 1)[0] for entry in [*cache.skipped, *cache.excluded]
    }
    problems += [
        f"{path}: in the dataset here, not in the cache" for path in here if path not in accounted
    ]
    return problems


def import_cache(source, out, expected: dict, instance: str, manifest_rows=None) -> dict:
    """Check a shared cache and copy it to `out`.

    Checks, each an error naming the file: every array against its stored sha256 (read_features),
    its provenance against `expected` (`check_provenance`), and, with `manifest_rows` (this
    machine's manifest of the dataset), its images (`image_mismatches`). The copy is
    byte-identical but for three attributes it gains: `imported_from`, `imported_checks` and
    `imported_package_versions`. Returns a summary dict (n, path, checks)."""
    source, out = Path(source), Path(out)
    cache = read_features(source, with_logits=True, with_outputs=True)
    check_provenance(cache.attrs, expected, source, instance)
    checks = ["array sha256", "provenance: " + ", ".join(expected)]
    if manifest_rows is not None:
        problems = image_mismatches(cache, manifest_rows)
        if problems:
            shown = problems[:20] + (
                [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
            )
            raise ProvenanceMismatchError(
                f"{source} holds features of other images than the dataset here "
                f"({len(problems)} differences):\n"
                + "".join(f"  - {p}\n" for p in shown)
                + "A shared cache must come from the same images (same relative paths and "
                "bytes): use the matching cache or let the workflow extract this dataset."
            )
        checks.append(f"images: {len(cache.paths)} paths and sha1 equal the manifest")
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
        with h5py.File(tmp, "r+") as handle:
            handle.attrs["imported_from"] = str(source.resolve())
            handle.attrs["imported_checks"] = "; ".join(checks)
            handle.attrs["imported_package_versions"] = json.dumps(
                package_versions(), sort_keys=True
            )
    return {"source": str(source), "out": str(out), "n": len(cache.features), "checks": checks}


# ---------------------------------------------------------------- statistics as a target


def check_imported_statistics(
    stats: DatasetStatistics, expected: dict, instance: str, feature_dim: int
) -> list[str]:
    """Check imported statistics against an instance; returns notes for the log (what could
    not be checked). A file with fidlens provenance must match it all
    (ProvenanceMismatchError); another tool's file cannot be checked beyond its dimension and,
    for clean-fid names, the Inception mode in its name."""
    path = stats.attrs.get("statistics_path", "statistics file")
    if stats.dim != feature_dim:
        raise ProvenanceMismatchError(
            f"{path}: statistics of dimension {stats.dim}, but {instance}'s features have "
            f"{feature_dim} (a file of another extractor or layer?)"
        )
    if stats.attrs.get("provenance") != UNKNOWN:
        # the file records its provenance (ours): the same checks as for a shared cache
        check_provenance(stats.attrs, expected, path, instance)
        return []
    notes = [
        f"{path} records no provenance (another tool's file): its extractor, "
        "preprocessing and weights are taken on trust"
    ]
    mode = stats.attrs.get("clean_fid_mode")
    if mode is not None and expected.get("extractor_type") == "inception":
        from fidlens.trust_plan import CLEAN_FID_MODES

        ours = {v: k for k, v in CLEAN_FID_MODES.items()}.get(str(mode))
        if ours is not None and ours != expected["preprocess"]:
            raise ProvenanceMismatchError(
                f"{path}: clean-fid's mode {mode!r} in its name is our preprocess {ours!r}, "
                f"but {instance} uses preprocess {expected['preprocess']!r}"
            )
        notes.append(f"clean-fid mode {mode!r} in the file name matches preprocess {ours!r}")
    return notes


def _label(attrs: dict) -> str:
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


def metrics_from_statistics(
    source_path,
    target: DatasetStatistics,
    metrics=("fid",),
    normalize: str = "both",
    source_name: str | None = None,
    target_name: str | None = None,
    layer: str = "pool",
    allow_mixed: bool = False,
) -> dict:
    """The metric document of a source cache against a target given only as statistics, in
    compute_metrics' layout: FID (raw features) from the source's own mean and covariance and
    the target's (`frechet_distance`, exact also for N < D); every other asked-for number,
    and every L2-normalised one, None with its reason in `unavailable` ("unavailable: target
    given as statistics"). Raises ValueError for differing dimensions, or for settings that
    differ between the source cache and the statistics' recorded provenance unless
    `allow_mixed`."""
    from fidlens.evaluate import parse_metrics
    from fidlens.metrics import feature_statistics, frechet_distance

    metrics = parse_metrics(metrics)
    if normalize not in NORMALIZE_MODES:
        raise ValueError(
            f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
        )
    source_path = Path(source_path)
    cache = read_features(source_path, with_logits=layer == "logits")
    values = cache.features if layer == "pool" else cache.logits
    if values is None:
        raise ValueError(f"{source_path} has no {LAYER_ARRAYS.get(layer, layer)!r}")
    if target.layer != layer:
        raise ValueError(
            f"{target.attrs.get('statistics_path')}: statistics of layer "
            f"{target.layer!r}, the metrics read {layer!r}"
        )
    if values.shape[1] != target.dim:
        raise ValueError(
            f"feature dimensions differ: {source_path} has {values.shape[1]}, the target "
            f"statistics {target.attrs.get('statistics_path')} have {target.dim}"
        )
    if target.attrs.get("provenance") != UNKNOWN and not allow_mixed:
        mine = recorded_provenance(cache.attrs)
        theirs = recorded_provenance(target.attrs)
        differ = [
            f"{key}: {source_path} has {mine[key]!r}, the statistics have {theirs[key]!r}"
            for key in ("extractor_type", "preprocess", "weights")
            if mine[key] is not None and theirs[key] is not None and mine[key] != theirs[key]
        ]
        if differ:
            raise ValueError(
                "the source cache and the target statistics were made with "
                "different settings:\n"
                + "".join(f"  - {d}\n" for d in differ)
                + "set metrics.allow_mixed: true to compare them anyway"
            )
    keys = [key for name in metrics for key in METRIC_KEYS[name]]
    result: dict = {"unavailable": {}}
    for block in NORMALIZE_MODES[normalize]:
        result[block] = dict.fromkeys(keys)
        for key in keys:
            if block == "raw" and key == "fid":
                mu, sigma = feature_statistics(values)
                result[block]["fid"] = frechet_distance(mu, sigma, target.mean, target.covariance)
            else:
                reason = UNAVAILABLE_STATISTICS if block == "raw" else UNAVAILABLE_L2
                result["unavailable"][f"{block}.{key}"] = reason
    source_label, target_label = _label(cache.attrs), _label(target.attrs)
    weights = (
        RANDOM_INIT
        if RANDOM_INIT in (source_label, target_label)
        else source_label
        if source_label == target_label
        else UNKNOWN
    )
    attrs = cache.attrs
    result.update(
        source_path=str(source_path),
        source_name=source_name or str(attrs.get("dataset") or source_path.stem),
        target_path=str(target.attrs.get("statistics_path")),
        target_name=target_name or Path(str(target.attrs.get("statistics_path", "target"))).stem,
        target_kind="statistics",
        target_statistics_format=target.attrs.get("statistics_format"),
        target_provenance=target.attrs.get("provenance", "recorded"),
        n_source=int(len(values)),
        n_target=target.n or None,
        feature_dim=int(values.shape[1]),
        metrics=list(metrics),
        normalize=normalize,
        layer=layer,
        extractor=str(attrs.get("extractor", UNKNOWN)),
        feature_layer=str(attrs.get("feature_layer", UNKNOWN)) if layer == "pool" else "logits",
        preprocess=str(attrs.get("preprocess", UNKNOWN)),
        weights=weights,
        allow_mixed=allow_mixed,
        package_versions=package_versions(),
    )
    for side, side_attrs in (("source", attrs), ("target", target.attrs)):
        result.update(
            {
                f"{side}_extractor": str(side_attrs.get("extractor", UNKNOWN)),
                f"{side}_preprocess": str(side_attrs.get("preprocess", UNKNOWN)),
                f"{side}_weights": _label(side_attrs),
                f"{side}_weights_sha256": str(side_attrs.get("weights_sha256", UNKNOWN)),
                f"{side}_weights_origin": str(side_attrs.get("weights_origin", UNKNOWN)),
            }
        )
    return result


def write_json(path, document: dict) -> None:
    from fidlens.files import write_text_atomic

    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- the scripts' instance flags


def add_instance_arguments(parser) -> None:
    """The flags that say which instance a file must match (as the extraction's flags)."""
    parser.add_argument("--instance", required=True, help="the extractor instance's name")
    parser.add_argument("--type", required=True, help="its extractor type")
    parser.add_argument("--settings", default=None, help="its own settings, as JSON")
    parser.add_argument("--weights", default="auto", help="auto, random[:SEED] or a file")
    parser.add_argument("--fallback", default="none", choices=["none", "random"])
    parser.add_argument("--weights-dir", default=None, help="the project weights folder")
    parser.add_argument("--preprocess", default=None, help="its preprocessing mode")


def expected_from_arguments(args, resolution=None, check_resolution: bool = True) -> dict:
    """`expected_provenance` of the instance the flags name (`resolution`: the dataset's
    working resolution; left out of the check with check_resolution False)."""
    expected = expected_provenance(
        args.type,
        weights=args.weights,
        fallback=args.fallback,
        weights_dir=args.weights_dir,
        preprocess=args.preprocess,
        settings=json.loads(args.settings) if args.settings else {},
        resolution=None if resolution in (None, "native") else int(resolution),
    )
    if not check_resolution:
        expected.pop("resolution")
    return expected
