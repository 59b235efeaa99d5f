"""Generated datasets: a generator's images of a seed range, written as an ordinary dataset.

A config dataset may be declared by its generator instead of a folder
(`datasets.<name>.generator`: adapter, network, trust_pickle, seeds, truncation_psi,
class_label, resolution, batch_size). The workflow (rules/generate.smk) writes

- `results/generated/<name>/seedNNNN.png`: one PNG per seed, named as NVlabs' gen_images.py
  names them, RGB uint8 (H, W, 3) at `resolution` px (a StyleGAN's native images resized
  with PIL bicubic);
- `results/generated/<name>_latents.h5`: per image its path, seed, z and w
  (`fidlens.generators.latents`), the generator's provenance and the settings digest;

so the discard / replace experiment (seed 000 §3.2) reads the codes it needs directly.

Resumable and incremental: every PNG carries a tEXt chunk `fidlens` = JSON {settings, seed}
with the digest of everything that decides its pixels (`settings_digest`). A run keeps each
existing PNG whose tag matches, draws only the missing ones, and removes the generator's PNGs
of seeds no longer asked for; so extending the seed range draws only the new seeds, and a
killed run resumes where it stopped (PNGs are written atomically).

Determinism: z = `np.random.RandomState(seed).randn(1, z_dim)` (NVlabs' gen_images.py), w =
mapping(z) one seed at a time (as gen_images.py does: a seed's w never depends on which other
seeds share its batch), synthesis in batches of `batch_size`. The procedural generator draws
on the CPU and is batch-invariant, so its images are identical on every machine; a StyleGAN
on a GPU may differ by a grey level between batch compositions (batch_size 1 reproduces
gen_images.py exactly).

Light at import (no torch): the workflow calls `parse_seeds` and the path helpers while it
parses; the generator is loaded only inside `generate_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fidlens.generators import GENERATOR_DEFAULTS

log = logging.getLogger(__name__)

GENERATED_ROOT = "results/generated"
SEED_LIMIT = 2**32  # np.random.RandomState's seed range
DEFAULT_BATCH_SIZE = 32
# The keys of datasets.<name>.generator beyond the generator's own (GENERATOR_DEFAULTS).
GENERATION_DEFAULTS = {"seeds": None, "class_label": None, "batch_size": DEFAULT_BATCH_SIZE}
TAG_KEY = "fidlens"  # PNG tEXt keyword of the generation tag
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


# ---------------------------------------------------------------------------------------------
# Seeds, names and paths (parse time)
# ---------------------------------------------------------------------------------------------


def parse_seeds(spec, setting: str = "seeds") -> list[int]:
    """Sorted unique seeds of a seed specification: an int (one seed), a string of
    comma-separated seeds and inclusive ranges ("0-49999", "0-9,20,100-199", NVlabs'
    --seeds syntax), or a list of ints and such strings. ValueError naming `setting` for an
    empty, malformed or reversed range, or a seed outside [0, 2**32)."""
    items = spec if isinstance(spec, list | tuple) else [spec]
    seeds: set[int] = set()
    for item in items:
        if isinstance(item, bool) or item is None:
            raise ValueError(f"{setting}: expected seeds like 0-199 or [1, 5, 7], got {item!r}")
        parts = [item] if isinstance(item, int) else str(item).split(",")
        for part in parts:
            if isinstance(part, int):
                first = last = part
            else:
                match = _RANGE.match(part)
                if not match:
                    raise ValueError(f"{setting}: {part.strip()!r} is neither a seed nor a "
                                     "range FIRST-LAST (e.g. 0-199)")
                first = int(match.group(1))
                last = int(match.group(2) or first)
            if last < first:
                raise ValueError(f"{setting}: range {first}-{last} runs backwards")
            if first < 0 or last >= SEED_LIMIT:
                raise ValueError(f"{setting}: seeds must be in [0, 2**32), got {first}-{last}")
            seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError(f"{setting}: no seeds given")
    return sorted(seeds)


def format_seeds(seeds: Sequence[int]) -> str:
    """The canonical seed string of seeds: sorted runs as FIRST-LAST, comma-separated
    ([0, 1, 2, 7] -> "0-2,7"); parse_seeds(format_seeds(s)) == sorted(set(s))."""
    ordered = sorted({int(s) for s in seeds})
    runs, start = [], None
    for index, seed in enumerate(ordered):
        if start is None:
            start = seed
        if index + 1 == len(ordered) or ordered[index + 1] != seed + 1:
            runs.append(f"{start}" if start == seed else f"{start}-{seed}")
            start = None
    return ",".join(runs)


def image_name(seed: int) -> str:
    """NVlabs gen_images.py's file name of a seed: seed0042.png (at least 4 digits)."""
    return f"seed{int(seed):04d}.png"


def images_folder(name: str) -> str:
    """Where a generated dataset's PNGs go (relative to the working directory)."""
    return f"{GENERATED_ROOT}/{name}"


def latents_file(name: str) -> str:
    """The latents file beside a generated dataset's folder."""
    return f"{GENERATED_ROOT}/{name}_latents.h5"


def generation_settings(spec: dict | None) -> dict:
    """datasets.<name>.generator with its defaults filled in (GENERATOR_DEFAULTS and
    GENERATION_DEFAULTS); ValueError for unknown keys."""
    settings = {**GENERATOR_DEFAULTS, **GENERATION_DEFAULTS, **(spec or {})}
    unknown = sorted(set(settings) - set(GENERATOR_DEFAULTS) - set(GENERATION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown generator settings {unknown}")
    return settings


def generator_part(settings: dict) -> dict:
    """The part of a dataset's generator settings that loads the network (load_generator's
    spec; the same section discard / replace draws replacements with)."""
    return {key: settings[key] for key in GENERATOR_DEFAULTS}


def generation_problems(name: str, spec: dict) -> list[str]:
    """What is wrong with datasets.<name>.generator before any job (config-key messages)."""
    where = f"datasets.{name}.generator"
    problems = []
    try:
        settings = generation_settings(spec)
    except ValueError as error:
        return [f"{where}: {error}"]
    try:
        parse_seeds(settings["seeds"], f"{where}.seeds")
    except ValueError as error:
        problems.append(str(error))
    if settings["adapter"] == "procedural":
        if settings["class_label"] is not None:
            problems.append(f"{where}.class_label: the procedural generator is unconditional; "
                            "leave class_label out")
        if settings["network"]:
            problems.append(f"{where}.network: the procedural generator has no network file")
        resolution = settings["resolution"]
        if resolution is not None and not 32 <= resolution <= 512:
            problems.append(f"{where}.resolution: the procedural generator draws 32 to 512 "
                            f"px, got {resolution}")
    else:
        network = settings["network"]
        if not network or not os.path.isfile(network):
            problems.append(f"{where}.network: the stylegan adapter needs an NVlabs network "
                            f"pickle; {network!r} is not a file")
        if not settings["trust_pickle"]:
            problems.append(f"{where}.trust_pickle: unpickling {network} runs code; set "
                            "trust_pickle: true if you trust the file, and put NVlabs' "
                            "StyleGAN source (dnnlib, torch_utils) on PYTHONPATH")
    return problems


# ---------------------------------------------------------------------------------------------
# Tags: what made each PNG
# ---------------------------------------------------------------------------------------------


def settings_digest(provenance: dict, truncation_psi: float, class_label: int | None,
                    extra: dict | None = None) -> str:
    """sha256 (hex) of everything that decides a generated image's pixels: the generator's
    provenance without the device and the network's path (its sha256 stays), truncation psi,
    the class label and `extra` (a probe's ball). Batch size and device are left out."""
    generator = {k: v for k, v in provenance.items() if k not in ("device", "network")}
    payload = {"generator": generator, "truncation_psi": float(truncation_psi),
               "class_label": class_label, **({"extra": extra} if extra else {})}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_tag(path: str | os.PathLike) -> dict | None:
    """The generation tag of a PNG (its `fidlens` tEXt chunk, read without decoding the
    pixels); None for a file without one or one that does not open as an image."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = image.info.get(TAG_KEY)
    except OSError:
        return None
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def save_png(path: Path, image: np.ndarray, tag: dict) -> None:
    """Write a (H, W, 3) uint8 image as PNG with its tag, atomically."""
    from PIL import Image, PngImagePlugin

    from fidlens.files import atomic_path

    info = PngImagePlugin.PngInfo()
    info.add_text(TAG_KEY, json.dumps(tag, sort_keys=True, separators=(",", ":")))
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=info)


def write_images(generator, folder, names: Sequence[str], w: np.ndarray, tags: Sequence[dict],
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> dict:
    """Make `folder` hold exactly the images `names` (relative paths) of the codes w (N, w_dim):
    keep each existing PNG whose tag equals tags[i], draw the others with
    `generator.synthesis` in batches, and remove the PNGs a generator wrote (tagged) that are
    not in `names`. ValueError, naming them, when the folder holds images fidlens did not
    write (the dataset would include them). Returns counts {kept, generated, removed}."""
    from tqdm import tqdm

    from fidlens.datasets import list_dataset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*.tmp-*"):  # a killed run's temporaries
        leftover.unlink(missing_ok=True)
    wanted = {name: index for index, name in enumerate(names)}
    keep, stale, foreign = set(), [], []
    for relpath in list_dataset(folder).images:
        tag = read_tag(folder / relpath)
        if relpath in wanted and tag == tags[wanted[relpath]]:
            keep.add(wanted[relpath])
        elif tag is None:
            foreign.append(relpath)
        elif relpath not in wanted:
            stale.append(relpath)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise ValueError(f"{folder} holds images fidlens did not generate: "
                         f"{', '.join(foreign[:5])}{more}; it must hold only the generated "
                         "set (move them elsewhere)")
    for relpath in stale:
        (folder / relpath).unlink()
    todo = [index for index in range(len(names)) if index not in keep]
    starts = range(0, len(todo), batch_size)
    for start in tqdm(starts, desc=f"drawing {len(todo)} images", unit="batch",
                      disable=not progress or len(starts) < 2):
        batch = todo[start : start + batch_size]
        images = generator.synthesis(w[batch], batch_size=batch_size)
        for index, image in zip(batch, images, strict=True):
            save_png(folder / names[index], image, tags[index])
    return {"kept": len(keep), "generated": len(todo), "removed": len(stale)}


# ---------------------------------------------------------------------------------------------
# Generation (job time)
# ---------------------------------------------------------------------------------------------


def map_one_by_one(generator, z: np.ndarray, truncation_psi: float,
                   class_label: int | None) -> np.ndarray:
    """w (N, w_dim) float64 of z (N, z_dim), one row at a time (batch-invariant)."""
    return generator.mapping(z, truncation_psi, class_label, batch_size=1)


def generate_dataset(folder, latents_path, spec: dict, dataset_name: str,
                     device: str = "auto", progress: bool = True) -> dict:
    """Write a generated dataset: the PNGs of spec's seeds under `folder` (only the missing
    ones are drawn, see the module docstring) and the latents file `latents_path` (paths,
    seeds, z, w; the procedural generator's ground truth `extra/defective`; attributes
    generator, truncation_psi, class_label, seeds, settings_sha256, dataset).

    spec: datasets.<name>.generator. Raises ValueError (bad settings, foreign images),
    FileNotFoundError, stylegan.UntrustedPickleError or ModuleNotFoundError (a network
    pickle that may not be loaded). Returns a summary: counts, digest, provenance."""
    from fidlens.generators import load_generator
    from fidlens.generators.latents import Latents, write_latents

    setting = f"datasets.{dataset_name}.generator"
    settings = generation_settings(spec)
    seeds = parse_seeds(settings["seeds"], f"{setting}.seeds")
    psi, label = float(settings["truncation_psi"]), settings["class_label"]
    generator = load_generator(generator_part(settings), device=device, setting=setting)
    provenance = generator.provenance()
    digest = settings_digest(provenance, psi, label)
    z = generator.z_from_seeds(seeds)
    w = map_one_by_one(generator, z, psi, label)
    names = [image_name(seed) for seed in seeds]
    tags = [{"settings": digest, "seed": seed} for seed in seeds]
    counts = write_images(generator, folder, names, w, tags, int(settings["batch_size"]),
                          progress)
    defective = generator.known_defective(w)
    write_latents(
        latents_path,
        Latents(paths=names, w=w, z=z, seeds=np.asarray(seeds, dtype=np.int64),
                extra={} if defective is None else {"defective": defective},
                attrs={"generator": json.dumps(provenance, sort_keys=True),
                       "truncation_psi": psi, "class_label": json.dumps(label),
                       "seeds": format_seeds(seeds), "settings_sha256": digest,
                       "dataset": dataset_name, "images": str(folder)}),
        description=f"{dataset_name}: the {generator.adapter} generator's images of seeds "
        f"{format_seeds(seeds)} (truncation psi {psi}), drawn by fidlens (rules/generate.smk)",
    )
    summary = {"dataset": dataset_name, "images": len(names), **counts,
               "seeds": format_seeds(seeds), "settings_sha256": digest,
               "generator": provenance}
    if defective is not None:
        summary["defective"] = int(np.sum(defective))
    return summary


# ---------------------------------------------------------------------------------------------
# The workflow scripts' generator flags
# ---------------------------------------------------------------------------------------------


def add_generator_arguments(parser) -> None:
    """The flags of datasets.<name>.generator (but seeds) on an argparse parser."""
    parser.add_argument("--adapter", choices=["procedural", "stylegan"], default="procedural")
    parser.add_argument("--network", default=None, help="stylegan: the network pickle")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow unpickling the network (it runs code)")
    parser.add_argument("--truncation-psi", type=float, default=1.0)
    parser.add_argument("--class-label", type=int, default=None,
                        help="class of a conditional network")
    parser.add_argument("--resolution", type=int, default=None, help="output side, px")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help="images per synthesis call")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def generator_spec(args, seeds: str | None = None) -> dict:
    """datasets.<name>.generator from the flags of `add_generator_arguments`."""
    return {"adapter": args.adapter, "network": args.network,
            "trust_pickle": args.trust_pickle, "truncation_psi": args.truncation_psi,
            "class_label": args.class_label, "resolution": args.resolution,
            "batch_size": args.batch_size, "seeds": seeds}
