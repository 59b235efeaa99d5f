"""What the generation and inspection stages run, from the config alone (no torch, no
matplotlib: rules/common.smk builds this while the workflow parses; rules/generate.smk and
rules/inspection.smk use it).

Config: `datasets.<name>.generator` (a generated dataset, `fidlens.generators.dataset`),
`datasets.<name>.probes` (probes around recorded bad seeds, `fidlens.generators.inspection`)
and the `inspection` section (sample sheets, probe sheets, pair files, seed 000's Table 1).
A generated dataset's parse-time fingerprint comes from its settings (`content`), not from
a folder that a rule has not written yet.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field

from fidlens.generators import GENERATOR_DEFAULTS
from fidlens.generators.dataset import (
    format_seeds,
    generation_problems,
    generation_settings,
    images_folder,
    latents_file,
    parse_seeds,
)
from fidlens.generators.inspection import (
    SHEET_DEFAULTS,
    convert_pairs,
    probe_settings,
    probes_problems,
    read_bad_seeds,
)

INSPECTION_ROOT = "results/inspection"
TABLE = "results/tables/inspection_pairs"


def file_state(path) -> list | None:
    """(path, size, mtime) of a file, so replacing it reruns what read it (no hashing)."""
    if not path or not os.path.isfile(path):
        return None
    stat = os.stat(path)
    return [str(path), stat.st_size, int(stat.st_mtime)]


def _flags(pairs) -> str:
    """--flag value ... of (flag, value) pairs; None and False are left out, True is a bare
    flag."""
    out = []
    for flag, value in pairs:
        if value is None or value is False:
            continue
        out.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return " ".join(out)


@dataclass
class GenerationPlan:
    datasets: dict  # config["datasets"]
    inspection: dict  # config["inspection"]
    device: str = "auto"  # config["device"]
    user_paths: set = field(default_factory=set)

    def __post_init__(self):
        self.generators = {name: spec["generator"] for name, spec in self.datasets.items()
                           if "generator" in spec}
        self.probes = {name: spec["probes"] for name, spec in self.datasets.items()
                       if "probes" in spec}
        # A rule writes these datasets: their folders are fixed (results/generated/<name>).
        for name in self.made:
            if "path" in self.datasets[name]:
                self.user_paths.add(name)
            self.datasets[name].setdefault("path", images_folder(name))

    # ------------------------------------------------------------ datasets

    @property
    def made(self) -> list[str]:
        """Datasets a rule writes, in config order."""
        return [name for name in self.datasets if name in self.generators or name in
                self.probes]

    def made_by_rule(self, name: str) -> bool:
        return name in self.generators or name in self.probes

    def latents(self, name: str) -> str:
        return latents_file(name)

    def settings(self, name: str) -> dict:
        """A generator dataset's settings, defaults filled in (a probes dataset: its `of`'s)."""
        if name in self.probes:
            name = self.probes[name].get("of")
        return generation_settings(self.generators[name])

    def generator_section(self, name: str) -> dict:
        """The generator part (adapter, network, trust_pickle, truncation_psi, resolution)
        of a generated dataset: what discard / replace draws its replacements with."""
        settings = self.settings(name)
        return {key: settings[key] for key in GENERATOR_DEFAULTS}

    def seeds(self, name: str) -> list[int]:
        return parse_seeds(self.settings(name)["seeds"], f"datasets.{name}.generator.seeds")

    def bad_seeds(self, name: str) -> list[int]:
        return read_bad_seeds(probe_settings(self.probes[name])["bad_seeds"])

    def size(self, name: str) -> int:
        """Images of a generated or probes dataset (known from its settings)."""
        if name in self.generators:
            return len(self.seeds(name))
        return len(self.bad_seeds(name)) * (int(probe_settings(self.probes[name])["samples"])
                                            + 1)

    def job_device(self, name: str) -> str:
        """The procedural generator draws on the CPU (cheap, pixel-identical everywhere); a
        StyleGAN network on the config's device."""
        return "cpu" if self.settings(name)["adapter"] == "procedural" else self.device

    def content(self, name: str) -> dict:
        """The dataset's parse-time fingerprint (the manifest's rerun trigger): what decides
        its images, from the config (and the network file's size and mtime, and the bad
        seeds)."""
        settings = self.settings(name)
        generator = {key: settings[key] for key in (*GENERATOR_DEFAULTS, "class_label")}
        generator["network_file"] = file_state(settings["network"])
        if name in self.generators:
            return {"generator": generator, "seeds": format_seeds(self.seeds(name))}
        probes = probe_settings(self.probes[name])
        return {"generator": generator, "of": probes["of"], "bad_seeds": self.bad_seeds(name),
                **{key: probes[key] for key in ("samples", "radius", "space", "seed")}}

    # ------------------------------------------------------------ rule settings

    def generate_settings(self, name: str) -> dict:
        """Everything that changes a generator dataset's files (its rule's params)."""
        return {**self.content(name), "batch_size": self.settings(name)["batch_size"],
                "device": self.job_device(name)}

    def generator_flags(self, name: str) -> str:
        """The CLI flags of a dataset's generator (a probes dataset: its `of`'s)."""
        settings = self.settings(name)
        return _flags([
            ("--adapter", settings["adapter"]), ("--network", settings["network"]),
            ("--trust-pickle", bool(settings["trust_pickle"])),
            ("--truncation-psi", settings["truncation_psi"]),
            ("--class-label", settings["class_label"]),
            ("--resolution", settings["resolution"]),
            ("--batch-size", settings["batch_size"]), ("--device", self.job_device(name)),
        ])

    def generate_flags(self, name: str) -> str:
        return f"{self.generator_flags(name)} --seeds {format_seeds(self.seeds(name))}"

    def probe_flags(self, name: str) -> str:
        probes = probe_settings(self.probes[name])
        return self.generator_flags(name) + " " + _flags([
            ("--of", probes["of"]), ("--samples", probes["samples"]),
            ("--radius", probes["radius"]), ("--space", probes["space"]),
            ("--probe-seed", probes["seed"]),
        ])

    def network_inputs(self, name: str) -> list[str]:
        network = self.settings(name)["network"]
        return [network] if network else []

    def seconds_per_image(self, name: str) -> float:
        """Drawing time: the procedural generator ~0.05 s on the CPU; a StyleGAN ~0.05 s on
        a GPU, up to ~5 s on a CPU at 1024 px."""
        if self.settings(name)["adapter"] == "procedural":
            return 0.05
        return 0.05 if self.job_device(name).startswith("cuda") else 5.0

    # ------------------------------------------------------------ the inspection loop

    @property
    def enabled(self) -> bool:
        return bool(self.inspection.get("enabled"))

    @property
    def entries(self) -> dict:
        """inspection.datasets when the loop is on: generated dataset -> {probes, pairs,
        model, dataset}."""
        return self.inspection.get("datasets", {}) if self.enabled else {}

    @property
    def sheets(self) -> dict:
        return {**SHEET_DEFAULTS, **self.inspection.get("sheets", {})}

    def probes_of(self, name: str) -> str | None:
        return self.entries[name].get("probes")

    def pairs_csv(self, name: str) -> str:
        return f"{INSPECTION_ROOT}/{name}/pairs.csv"

    def pairs_json(self, name: str) -> str:
        return f"{INSPECTION_ROOT}/{name}/pairs.json"

    def with_pairs(self) -> list[str]:
        return [name for name, entry in self.entries.items() if entry.get("pairs")]

    def made_pair_files(self) -> dict[str, str]:
        """normalised converted pair file -> its generated dataset."""
        return {os.path.normpath(self.pairs_csv(name)): name for name in self.with_pairs()}

    def made_files(self) -> set[str]:
        """Normalised paths of files rules write that other config keys may name (latents
        files, converted pair files)."""
        return {os.path.normpath(self.latents(name)) for name in self.made} | set(
            self.made_pair_files())

    def converted_pairs(self, name: str):
        """The pairs the converted pair file of `name` will hold (fidlens.pairs.Pair, with
        the person's file's lines), computed from the config and the person's files."""
        entry = self.entries[name]
        probes = entry.get("probes")
        if probes is None:
            return convert_pairs(entry["pairs"], name)
        settings = probe_settings(self.probes[probes])
        return convert_pairs(entry["pairs"], name, probes, self.bad_seeds(probes),
                             int(settings["samples"]))

    def pairs_made_from(self, path) -> list | None:
        """The converted pairs when `path` is a converted pair file, else None."""
        name = self.made_pair_files().get(os.path.normpath(path)) if path else None
        return None if name is None else self.converted_pairs(name)

    def pair_inputs(self, name: str) -> dict:
        """The inspection_pairs rule's inputs of one entry."""
        entry = self.entries[name]
        inputs = {"pairs": entry["pairs"], "generated": self.latents(name)}
        if entry.get("probes"):
            inputs["probes"] = self.latents(entry["probes"])
        return inputs

    def pair_flags(self, name: str) -> str:
        entry = self.entries[name]
        return _flags([
            ("--probes-name", entry.get("probes")), ("--model", entry.get("model")),
            ("--dataset-label", entry.get("dataset")),
            ("--first", self.sheets["first"]),
        ])

    def pair_settings_json(self, name: str) -> str:
        entry = self.entries[name]
        return json.dumps({**entry, "first": self.sheets["first"],
                           "pairs_file": file_state(entry.get("pairs"))}, sort_keys=True)

    def outputs(self) -> list[str]:
        """Sample sheets of every inspected dataset, probe sheets of their probes datasets,
        converted pair files and seed 000's Table 1 (none when the loop is off)."""
        out = []
        for name, entry in self.entries.items():
            out.append(f"{INSPECTION_ROOT}/{name}/samples")
            if entry.get("probes"):
                out.append(f"{INSPECTION_ROOT}/{entry['probes']}/probes")
        out += [self.pairs_csv(name) for name in self.with_pairs()]
        if self.with_pairs():
            out += [f"{TABLE}.csv", f"{TABLE}.md"]
        return out

    # ------------------------------------------------------------ checks before any job

    def problems(self) -> list[str]:
        """Every problem of the generated datasets and the inspection section, named by key."""
        problems = [f"datasets.{name}.path: a generated dataset is written to "
                    f"{images_folder(name)} (its latents beside it); leave path out"
                    for name in sorted(self.user_paths)]
        for name in self.datasets:
            spec = self.datasets[name]
            if "generator" in spec and "probes" in spec:
                problems.append(f"datasets.{name}: give either generator or probes, not both")
            elif name in self.generators:
                problems += generation_problems(name, self.generators[name])
            elif name in self.probes:
                problems += probes_problems(name, self.probes[name], self.generators)
        for name, entry in self.entries.items():
            where = f"inspection.datasets.{name}"
            if name not in self.generators:
                problems.append(f"{where}: {name!r} is not a dataset declared by a generator "
                                "(datasets.<name>.generator)")
                continue
            probes = entry.get("probes")
            if probes is not None and (probes not in self.probes
                                       or self.probes[probes].get("of") != name):
                problems.append(f"{where}.probes: {probes!r} is not a probes dataset of {name} "
                                f"(datasets.{probes}.probes.of: {name})")
                continue
            if entry.get("pairs"):
                try:
                    self.converted_pairs(name)
                except (OSError, ValueError) as error:
                    problems.append(f"{where}.pairs: {error}")
        return problems

    # ------------------------------------------------------------ what a job asks for

    def mem_mb(self, name: str, attempt: int = 1) -> int:
        """The generator and one batch: small for the procedural one, a StyleGAN network with
        a batch of 1024 px images ~6 GB."""
        base = 1000 if self.settings(name)["adapter"] == "procedural" else 6000
        return attempt * base

    def runtime_min(self, name: str, attempt: int = 1) -> int:
        return attempt * (10 + int(self.size(name) * self.seconds_per_image(name) / 60))

    def gpus(self, name: str) -> int:
        return 1 if self.job_device(name).startswith("cuda") else 0
