"""The procedural demo's training set for seed 000's discard / replace experiment.

- `train_procedural`: the procedural generator's "training set": images of seeds from
  TRAIN_SEED_START on, keeping only those OUTSIDE the defective region (what the generator
  should have learnt), with per-image z, w, seed and the ground truth `defective` in
  `train_procedural_latents.h5` beside the folder (`fidlens.generators.latents`);
- the demo's generated set `gen_procedural` (seeds 0-199) is a generator-declared dataset of
  the demo config (`fidlens.generators.dataset`, rules/generate.smk), and its good/bad pairs
  come from the inspection loop (`fidlens.generators.inspection`, a shipped pair file);
- `pick_pairs`: an automatic stand-in for seed 000 §3.1's manual picking (the first
  defective images, each with its nearest clean image in w), for tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from fidlens.generators import DEMO_GENERATED, DEMO_TRAIN, demo_outputs
from fidlens.generators.latents import Latents, write_latents
from fidlens.generators.procedural_space import DEFECT_AXIS, DEFECT_THRESHOLD, is_defective
from fidlens.provenance import package_versions

if TYPE_CHECKING:
    from fidlens.generators.procedural import ProceduralFaces

GENERATED = DEMO_GENERATED
TRAIN = DEMO_TRAIN
TRAIN_SEED_START = 1_000_000
DESCRIPTIONS = {
    GENERATED: "the procedural demo generator's images of seeds 0..n-1 (a generator's sample "
    "set, defective region included)",
    TRAIN: "the procedural demo generator's 'training set': images of seeds from "
    f"{TRAIN_SEED_START} on, kept only outside its defective region (w[{DEFECT_AXIS}] > "
    f"{DEFECT_THRESHOLD}); not real photographs",
    "pairs": "bad: the first defective images of gen_procedural in seed order; good: for each, "
    "the nearest non-defective image of gen_procedural in w (Euclidean)",
}


def image_name(seed: int) -> str:
    """NVlabs gen_images.py's file name of a seed."""
    return f"seed{seed:04d}.png"


def latents_path(out_dir, name: str = TRAIN) -> Path:
    return Path(demo_outputs(out_dir)["latents"][0])


def training_seeds(generator: ProceduralFaces, n: int, truncation_psi: float) -> np.ndarray:
    """The first n seeds from TRAIN_SEED_START whose w lies outside the defective region."""
    kept, start = [], TRAIN_SEED_START
    while len(kept) < n:
        seeds = np.arange(start, start + 2 * n)
        w = generator.mapping(generator.z_from_seeds(seeds), truncation_psi)
        kept += list(seeds[~is_defective(w)])
        start += 2 * n
    return np.array(kept[:n], dtype=np.int64)


def pick_pairs(w: np.ndarray, defective: np.ndarray, n_pairs: int) -> list[tuple[int, int]]:
    """(good row, bad row) pairs: the first n_pairs defective rows, each with its nearest
    non-defective row by Euclidean distance in w (ties: the lower row). ValueError when there
    is no defective or no clean row."""
    bad = np.flatnonzero(defective)[:n_pairs]
    clean = np.flatnonzero(~defective)
    if len(bad) == 0 or len(clean) == 0:
        raise ValueError(f"need defective and clean images to pair, found {len(bad)} and "
                         f"{len(clean)}; generate more images")
    distances = np.linalg.norm(w[bad][:, None, :] - w[clean][None, :, :], axis=2)
    return [(int(clean[np.argmin(row)]), int(b)) for b, row in zip(bad, distances, strict=True)]


def _write_set(folder: Path, seeds, images) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [image_name(int(seed)) for seed in seeds]
    for name, image in zip(names, images, strict=True):
        Image.fromarray(image).save(folder / name)
    return names


def write_procedural_demo(
    out_dir,
    n_train: int = 200,
    resolution: int = 64,
    truncation_psi: float = 1.0,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Write the training set and its latents file under out_dir; returns the description
    also written to out_dir/procedural.json."""
    out_dir = Path(out_dir)
    from fidlens.generators.procedural import ProceduralFaces  # torch: drawing only

    generator = ProceduralFaces(resolution, device=device)
    seeds = training_seeds(generator, n_train, truncation_psi)
    z, w, images = generator.generate(seeds, truncation_psi, progress=progress)
    defective = is_defective(w)
    paths = _write_set(out_dir / TRAIN, seeds, images)
    write_latents(
        latents_path(out_dir),
        Latents(paths=paths, w=w, z=z, seeds=seeds, extra={"defective": defective},
                attrs={"generator": json.dumps(generator.provenance(), sort_keys=True),
                       "truncation_psi": float(truncation_psi), "dataset": TRAIN}),
        description=DESCRIPTIONS[TRAIN],
    )
    about = {
        "generator": generator.provenance(),
        "truncation_psi": float(truncation_psi),
        "defective_region": f"w[{DEFECT_AXIS}] > {DEFECT_THRESHOLD}",
        "datasets": {TRAIN: {"images": len(paths), "defective": int(defective.sum()),
                             "seeds": f"{int(seeds[0])}..{int(seeds[-1])}",
                             "latents": str(latents_path(out_dir)),
                             "description": DESCRIPTIONS[TRAIN]}},
        "package_versions": package_versions(),
    }
    about_file = Path(demo_outputs(out_dir)["about"][0])
    about_file.write_text(json.dumps(about, indent=2, sort_keys=True) + "\n")
    (out_dir / TRAIN / "README.md").write_text(_train_readme(about))
    return about


def _train_readme(about: dict) -> str:
    train = about["datasets"][TRAIN]
    return (
        "# train_procedural: the procedural demo generator's 'training set'\n\n"
        f"{train['images']} images drawn by fidlens' procedural face generator "
        f"(seeds {train['seeds']}), keeping only seeds whose w lies OUTSIDE its defective "
        f"region ({about['defective_region']}). They stand in for the real training images "
        "of seed 000's discard / replace experiment; they are not photographs. The latent "
        f"codes are in {Path(train['latents']).name} beside this folder; how everything was "
        "made: procedural.json.\n"
    )
