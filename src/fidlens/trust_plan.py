"""What the interoperability and trust stages of the workflow run, from the config alone (no
numpy, no torch: the workflow calls this while it parses; rules/common.smk and
rules/interop.smk, rules/trust.smk use it).

Config sections (schemas/config.schema.yaml): `statistics` (export, targets given only as
statistics, comparisons against them), `trust` (overlap, memorisation sheets, sample-size
diagnostics), and `datasets.<name>.caches` (shared caches made elsewhere).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

EXPORT_FORMATS = ("pytorch-fid", "clean-fid")
IMPORT_FORMATS = ("pytorch-fid", "clean-fid", "fidlens")
CMMD_TYPES = ("clip_vitb32", "clip_vitl14_336")  # the CLIP types CMMD is defined on

# clean-fid's file names (GaParmar/clean-fid fid.py `make_custom_stats`): our inception
# preprocessing modes -> its `mode`; other types use "clean" (clean-fid resizes CLIP's input
# with its own transform whatever the mode; the file's provenance says ours).
CLEAN_FID_MODES = {"clean": "clean", "pytorch-fid": "legacy_pytorch",
                   "torch-fidelity": "legacy_tensorflow"}  # fmt: skip
# Our extractor types -> clean-fid's `model_name` (another type keeps its own name, which
# clean-fid's reader accepts as a file-name part but cannot compute itself).
CLEAN_FID_MODELS = {"inception": "inception_v3", "clip_vitb32": "clip_vit_b_32"}
CLEAN_FID_SPLIT, CLEAN_FID_RES = "custom", "na"


def clean_fid_names(extractor_type: str, preprocess: str) -> tuple[str, str]:
    """(mode, model_name) under which clean-fid files statistics of this extractor type and
    preprocessing mode."""
    mode = CLEAN_FID_MODES.get(preprocess, "clean") if extractor_type == "inception" else "clean"
    return mode, CLEAN_FID_MODELS.get(extractor_type, extractor_type)


def clean_fid_file_name(name: str, mode: str, model_name: str, kid: bool = False) -> str:
    """The file name clean-fid's custom statistics have (`make_custom_stats`):
    `{name}_{mode}{_model unless inception_v3}_custom_na[_kid].npz`, lower-cased."""
    model = "" if model_name == "inception_v3" else f"_{model_name}"
    suffix = "_kid" if kid else ""
    return f"{name}_{mode}{model}_{CLEAN_FID_SPLIT}_{CLEAN_FID_RES}{suffix}.npz".lower()


def export_path(extractor: str, dataset: str, fmt: str, clean_fid_name: str = "") -> str:
    """pytorch-fid: `<dataset>.pytorch-fid.npz`; clean-fid: its statistics file, named as
    clean-fid names it (`clean_fid_name`, from `clean_fid_file_name`), in `clean-fid/`."""
    if fmt == "pytorch-fid":
        return f"results/statistics/export/{extractor}/{dataset}.pytorch-fid.npz"
    return f"results/statistics/export/{extractor}/clean-fid/{clean_fid_name}"


def imported_statistics_path(extractor: str, target: str) -> str:
    return f"results/statistics/imported/{extractor}/{target}.h5"


def pair_path(source: str, reference: str, name: str) -> str:
    return f"results/trust/{source}__{reference}/{name}"


def fd_infinity_path(source: str, target: str) -> str:
    return f"results/trust/fd_infinity/{source}__{target}.json"


def name_regex(names) -> str:
    """A wildcard constraint matching exactly these names (none: a pattern matching nothing)."""
    names = list(names)
    return "|".join(re.escape(name) for name in names) if names else "(?!x)x"


@dataclass
class TrustPlan:
    config: dict
    # instance -> (its type, its preprocessing mode with the type's default filled in)
    modes: dict = field(default_factory=dict)

    # ------------------------------------------------------------ sections

    @property
    def statistics(self) -> dict:
        return self.config["statistics"]

    @property
    def trust(self) -> dict:
        return self.config["trust"]

    @property
    def datasets(self) -> dict:
        return self.config["datasets"]

    @property
    def extractors(self) -> dict:
        return self.config["extractors"]

    def compared(self) -> list[str]:
        pairs = self.config["comparisons"]
        return [n for n in self.datasets if any(n in p.values() for p in pairs)]

    # ------------------------------------------------------------ statistics out

    def export_extractors(self) -> list[str]:
        chosen = self.statistics["export"]["extractors"]
        return list(self.extractors) if chosen is None else list(dict.fromkeys(chosen))

    def export_datasets(self) -> list[str]:
        chosen = self.statistics["export"]["datasets"]
        return self.compared() if chosen is None else list(dict.fromkeys(chosen))

    def clean_fid_exports(self, default_modes: dict[str, tuple[str, str]]) -> list[tuple]:
        """(extractor, dataset, statistics file, KID file) of every clean-fid export;
        `default_modes`: instance -> (its type, its preprocessing mode, default filled in)."""
        if "clean-fid" not in self.statistics["export"]["formats"]:
            return []
        found = []
        for extractor in self.export_extractors():
            if extractor not in default_modes:
                continue  # not a configured instance: problems() says so
            mode, model = clean_fid_names(*default_modes[extractor])
            for dataset in self.export_datasets():
                found.append(
                    (
                        extractor,
                        dataset,
                        export_path(
                            extractor,
                            dataset,
                            "clean-fid",
                            clean_fid_file_name(dataset, mode, model),
                        ),
                        export_path(
                            extractor,
                            dataset,
                            "clean-fid",
                            clean_fid_file_name(dataset, mode, model, kid=True),
                        ),
                    )
                )
        return found

    def export_outputs(self) -> list[str]:
        """Every exported file (clean-fid's need `self.modes`, set by the workflow)."""
        formats = self.statistics["export"]["formats"]
        paths = []
        if "pytorch-fid" in formats:
            paths += [
                export_path(extractor, dataset, "pytorch-fid")
                for extractor in self.export_extractors()
                for dataset in self.export_datasets()
            ]
        for *_, statistics, kid in self.clean_fid_exports(self.modes):
            paths += [statistics, kid]
        return paths

    # ------------------------------------------------------------ statistics in

    def targets(self) -> dict[str, dict]:
        """statistics target name -> {extractor instance: {path, format}}."""
        return self.statistics["targets"]

    def statistics_comparisons(self) -> list[dict]:
        return self.statistics["comparisons"]

    def statistics_metric_jsons(self) -> list[str]:
        """One per (extractor with a file for the target) x statistics comparison."""
        return [
            f"results/metrics/{extractor}/{pair['source']}__{pair['target']}.json"
            for extractor in self.extractors
            for pair in self.statistics_comparisons()
            if extractor in self.targets().get(pair["target"], {})
        ]

    def target_file(self, target: str, extractor: str) -> dict:
        return self.targets()[target][extractor]

    # ------------------------------------------------------------ shared caches

    def shared_caches(self) -> list[tuple[str, str, str]]:
        """(extractor, dataset, path) of every cache given in datasets.<name>.caches."""
        return [
            (extractor, dataset, path)
            for dataset, spec in self.datasets.items()
            for extractor, path in (spec.get("caches") or {}).items()
        ]

    # ------------------------------------------------------------ trust checks

    def enabled(self) -> bool:
        return bool(self.trust["enabled"])

    def trust_pairs(self) -> list[tuple[str, str]]:
        """(source, reference): every comparison's (source, target), then trust.pairs, each
        once, in that order."""
        if not self.enabled():
            return []
        pairs = [(p["source"], p["target"]) for p in self.config["comparisons"]]
        pairs += [(p["source"], p["reference"]) for p in self.trust["pairs"]]
        return list(dict.fromkeys(pairs))

    def trust_extractors(self) -> list[str]:
        chosen = self.trust["extractors"]
        return list(self.extractors) if chosen is None else list(dict.fromkeys(chosen))

    def fd_extractors(self, target: str) -> list[str]:
        """The trust extractors FD∞ runs in for a comparison's target: all of them for a
        dataset, those with a statistics file for a target given as statistics."""
        if target in self.targets():
            return [e for e in self.trust_extractors() if e in self.targets()[target]]
        return self.trust_extractors()

    def fd_infinity_jsons(self) -> list[str]:
        """One per comparison (all trust extractors) and statistics comparison."""
        if not (self.enabled() and self.trust["fd_infinity"]["enabled"]):
            return []
        pairs = [*self.config["comparisons"], *self.statistics_comparisons()]
        return [
            fd_infinity_path(p["source"], p["target"])
            for p in pairs
            if self.fd_extractors(p["target"])
        ]

    def trust_tables(self) -> list[str]:
        if not self.enabled():
            return []
        tables = ["results/trust/overlap.csv", "results/trust/overlap.md"]
        if self.trust["fd_infinity"]["enabled"]:
            tables += ["results/trust/sample_size.csv", "results/trust/sample_size.md"]
        return tables

    def outputs(self) -> list[str]:
        """Everything these stages add to the workflow's final outputs."""
        pairs = [
            pair_path(source, reference, name)
            for source, reference in self.trust_pairs()
            for name in ("overlap.csv", "memorisation.png")
        ]
        return self.export_outputs() + self.trust_tables() + pairs

    # ------------------------------------------------------------ job settings

    def instance_settings(self, extractor: str, own_settings: dict) -> dict:
        """What a cache or statistics file of this instance must record (the provenance
        check's settings; `own_settings`: the type's settings with defaults filled in)."""
        entry = self.extractors[extractor]
        return {
            "type": entry.get("type") or extractor,
            "settings": own_settings,
            "weights": entry["weights"],
            "fallback": entry["fallback"],
            "weights_dir": self.config["weights_dir"],
            "preprocess": entry["preprocess"],
        }

    def instance_flags(self, extractor: str, own_settings: dict) -> str:
        """The provenance-check flags of workflow_scripts/import_cache.py and
        import_statistics.py, from `instance_settings`."""
        import json
        import shlex

        settings = self.instance_settings(extractor, own_settings)
        own = json.dumps(settings["settings"], sort_keys=True, separators=(",", ":"))
        flags = [
            ("--type", settings["type"]),
            ("--settings", own if own != "{}" else None),
            ("--weights", settings["weights"]),
            ("--fallback", settings["fallback"]),
            ("--weights-dir", settings["weights_dir"]),
            ("--preprocess", settings["preprocess"]),
        ]
        return " ".join(
            f"{flag} {shlex.quote(str(value))}" for flag, value in flags if value is not None
        )

    def layers(self, extractors) -> list[str]:
        return [self.extractors[name]["layer"] for name in extractors]

    def overlap_settings(self) -> dict:
        """Everything that changes one pair's overlap files (the caches are inputs)."""
        return {
            "extractors": self.trust_extractors(),
            "layers": self.layers(self.trust_extractors()),
            "normalize": self.trust["normalize"],
            "near_ratio": self.trust["near_ratio"],
            **self.trust["sheet"],
        }

    def fd_settings(self, target: str) -> dict:
        fd = self.trust["fd_infinity"]
        extractors = self.fd_extractors(target)
        return {
            "extractors": extractors,
            "layers": self.layers(extractors),
            "points": fd["points"],
            "min_fraction": fd["min_fraction"],
            "seed": fd["seed"],
            "size_ratio": self.trust["size_ratio"],
        }

    # ------------------------------------------------------------ checks before any job

    def problems(self, sizes: dict[str, int] | None = None) -> list[str]:
        """Every problem of these sections that is known before any job runs. `sizes`:
        images per user dataset (from the parse-time listings)."""
        sizes = sizes or {}
        problems = []
        datasets, extractors = self.datasets, self.extractors
        made_here = set(self.export_outputs())

        def instance(where, name):
            if name not in extractors:
                problems.append(
                    f"{where}: {name!r} is not a configured extractor "
                    f"(configured: {', '.join(extractors)})"
                )

        def dataset(where, name):
            if name not in datasets:
                problems.append(f"{where}: dataset {name!r} is not configured under datasets")

        export = self.statistics["export"]
        for name in export["extractors"] or []:
            instance("statistics.export.extractors", name)
        for name in export["datasets"] or []:
            dataset("statistics.export.datasets", name)
        for target, files in self.targets().items():
            where = f"statistics.targets.{target}"
            if target in datasets:
                problems.append(
                    f"{where}: {target!r} is also a dataset name; a target given as "
                    "statistics needs a name of its own"
                )
            for extractor, entry in files.items():
                instance(f"{where}.{extractor}", extractor)
                path = entry["path"]
                if os.path.normpath(path) in {os.path.normpath(p) for p in made_here}:
                    continue  # exported by this workflow (a round trip)
                if not os.path.isfile(path):
                    problems.append(
                        f"{where}.{extractor}.path: {path} does not exist "
                        f"(looked in {os.path.abspath(path)})"
                    )
        for index, pair in enumerate(self.statistics_comparisons()):
            where = f"statistics.comparisons[{index}]"
            dataset(f"{where}.source", pair["source"])
            if pair["target"] not in self.targets():
                problems.append(
                    f"{where}.target: {pair['target']!r} is not under statistics.targets"
                )
        for extractor, name, path in self.shared_caches():
            where = f"datasets.{name}.caches.{extractor}"
            instance(where, extractor)
            if not os.path.isfile(path):
                problems.append(
                    f"{where}: {path} does not exist (looked in {os.path.abspath(path)})"
                )
        if self.enabled():
            for name in self.trust["extractors"] or []:
                instance("trust.extractors", name)
            for index, pair in enumerate(self.trust["pairs"]):
                dataset(f"trust.pairs[{index}].source", pair["source"])
                dataset(f"trust.pairs[{index}].reference", pair["reference"])
            for _source, reference in self.trust_pairs():
                if sizes.get(reference, 2) < 2:
                    problems.append(
                        f"trust: the reference {reference} needs at least 2 images "
                        "(its nearest-neighbour spacing)"
                    )
            fd = self.trust["fd_infinity"]
            if fd["enabled"]:
                for index, pair in enumerate(self.config["comparisons"]):
                    n = sizes.get(pair["source"])
                    if n is not None and _distinct_sizes(n, fd["points"], fd["min_fraction"]) < 2:
                        problems.append(
                            f"trust.fd_infinity: comparisons[{index}]'s source {pair['source']} "
                            f"has {n} images, too few for 2 subset sizes; lower min_fraction, "
                            "add images or set trust.fd_infinity.enabled: false"
                        )
        return problems


def _distinct_sizes(n: int, points: int, min_fraction: float) -> int:
    """How many distinct subset sizes fidlens.metrics.fd_infinity.fd_infinity_sizes gives
    (the same rule, without numpy)."""
    import math

    start = max(2, math.ceil(min_fraction * n))
    if n < start:
        return 0
    if points == 1:
        return 1
    return len({int(start + (n - start) * i / (points - 1)) for i in range(points)})


def cmmd_applies(extractor_type: str) -> bool:
    return extractor_type in CMMD_TYPES


# ---------------------------------------------------------------- what a job asks a cluster for
# Signatures as Snakemake calls resource functions; shapes read from the caches' headers.


def _shape(path) -> tuple[int, int]:
    from fidlens.resources import feature_shape

    return feature_shape(path)


def _pairs(input):
    return [(_shape(x), _shape(y)) for x, y in zip(input.sources, input.references, strict=True)]


def neighbours_mem_mb(wildcards, input, attempt) -> int:
    """The largest extractor's two caches in float64 (x3 for the normalised copies) and three
    256 MiB blocks of squared distances (fidlens.trust.nearest_neighbours), above ~800 MB of
    torch and matplotlib."""
    peak = max(3 * 8 * (n + m) * dim + 3 * 2**28 for (n, dim), (m, _) in _pairs(input))
    return attempt * int(800 + 1.25 * peak / 2**20)


def neighbours_runtime(wildcards, input, threads, attempt) -> int:
    """Minutes: per extractor two n x m x D products at ~5 GFLOP/s per core, plus 10."""
    flops = sum(2 * 2 * (n + m) * m * dim for (n, dim), (m, _) in _pairs(input))
    return attempt * (10 + int(flops / (5e9 * threads) / 60))


def fd_mem_mb(wildcards, input, attempt) -> int:
    """The largest source cache in float64 and up to 6 D x D float64 matrices, above ~700 MB."""
    sources = getattr(input, "sources", None) or [input.source]
    peak = max(3 * 8 * n * dim + 6 * 8 * dim * dim for n, dim in map(_shape, sources))
    return attempt * int(700 + 1.25 * peak / 2**20)


def fd_runtime(wildcards, input, threads, attempt, points: int = 15) -> int:
    """Minutes: per extractor and subset size one n x D x D covariance and a D^3 eigensolver
    (~5 GFLOP/s a core), plus 10."""
    flops = sum(points * (2 * n * dim * dim + 10 * dim**3) for n, dim in map(_shape, input.sources))
    return attempt * (10 + int(flops / (5e9 * threads) / 60))


def copy_mem_mb(wildcards, input, attempt) -> int:
    """An imported cache is read whole for its checks: 2 x its size, above ~500 MB."""
    size = os.path.getsize(input.cache) if os.path.exists(input.cache) else 0
    return attempt * int(500 + 2.5 * size / 2**20)


def flags(settings: dict, keys) -> str:
    """CLI flags `--key value` (lists: `--key a b`) of these keys of a settings dict."""
    import shlex

    def shown(value):
        values = value if isinstance(value, list) else [value]
        return " ".join(shlex.quote(str(v)) for v in values)

    return " ".join(f"--{key.replace('_', '-')} {shown(settings[key])}" for key in keys)
