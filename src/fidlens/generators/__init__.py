"""Generators behind one interface (seeds -> z -> w -> uint8 images; `base.Generator`).

- `procedural`: the built-in demo generator, face-like images with a known defective region
  of w space (no weights; the demo and the tests run the whole experiment with it);
- `stylegan`: NVlabs StyleGAN2-ADA / StyleGAN3 network pickles, loaded only with
  `trust_pickle: true` and NVlabs' source on PYTHONPATH.

`latents` stores per-image z and w in an HDF5 file beside the images, keyed by relative path;
`pairs` reads and writes good/bad pair files; `demo` writes the procedural demo's training set;
`dataset` draws generator-declared datasets (a seed range, resumable), `inspection` seed 000
§3.1's loop (sample sheets, bad seeds, probes, pair conversion, Table 1) and `plan` what the
workflow runs of both. This module imports no torch: the workflow reads its names and
defaults while it parses.
"""

from __future__ import annotations

import os

ADAPTERS = ("procedural", "stylegan")
GENERATOR_DEFAULTS = {
    "adapter": "procedural",
    "network": None,
    "trust_pickle": False,
    "truncation_psi": 1.0,
    "resolution": None,
}


# The procedural demo's datasets: gen_procedural is a generator-declared dataset of the demo
# config (rules/generate.smk); the demo rule writes its "training set" (fidlens.generators.demo).
DEMO_GENERATED = "gen_procedural"
DEMO_TRAIN = "train_procedural"


def demo_outputs(out_dir) -> dict[str, list[str]]:
    """Paths the procedural demo rule writes under out_dir: the training set's image folder,
    its latents file and the description (no pair file: the demo's pairs come from the
    inspection loop)."""
    return {
        "folders": [os.path.join(out_dir, DEMO_TRAIN)],
        "latents": [os.path.join(out_dir, f"{DEMO_TRAIN}_latents.h5")],
        "pairs": [],
        "about": [os.path.join(out_dir, "procedural.json")],
    }


def generator_settings(spec: dict | None) -> dict:
    """A generator's config section with the defaults filled in (GENERATOR_DEFAULTS)."""
    settings = {**GENERATOR_DEFAULTS, **(spec or {})}
    unknown = sorted(set(settings) - set(GENERATOR_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown generator settings {unknown}; known: "
                         f"{', '.join(GENERATOR_DEFAULTS)}")
    if settings["adapter"] not in ADAPTERS:
        raise ValueError(f"unknown generator adapter {settings['adapter']!r}; choose from "
                         f"{', '.join(ADAPTERS)}")
    return settings


def load_generator(spec: dict | None, device: str = "auto", setting: str = "generator"):
    """The generator a config section describes: {adapter, network, trust_pickle,
    truncation_psi, resolution}. `setting` names the section in error messages. Raises
    ValueError (a bad section), FileNotFoundError, stylegan.UntrustedPickleError or
    ModuleNotFoundError (see `stylegan.check_may_unpickle`)."""
    settings = generator_settings(spec)
    if settings["adapter"] == "procedural":
        from fidlens.generators.procedural import ProceduralFaces

        return ProceduralFaces(settings["resolution"], device=device)
    from fidlens.generators.stylegan import StyleGAN

    if not settings["network"]:
        raise ValueError(f"{setting}.network: the stylegan adapter needs a network pickle")
    return StyleGAN(settings["network"], settings["trust_pickle"], settings["resolution"],
                    device=device, setting=setting)
