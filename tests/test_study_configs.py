"""The papers' study configs (configs/): they validate against the schema and their DAGs build
(`snakemake -n`) against tiny placeholder folders laid out as each config's header describes
(a few images per dataset; empty files where weights, networks and latents go: a dry run
checks that they exist, not what they hold)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
IMAGES = 12  # enough for every metric (k-NN radii) and the discard / replace selection

pytestmark = pytest.mark.slow


def placeholder_images(folder: Path, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(IMAGES):
        pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")


def lay_out(root: Path, config: dict) -> None:
    """Every dataset folder, weights file, network, latents and pair file the config names."""
    for seed, spec in enumerate(config["datasets"].values()):
        placeholder_images(root / spec["path"], seed)
    weights = root / config["weights_dir"]
    weights.mkdir(parents=True)
    official = (
        "pt_inception-2015-12-05-6726825d.pth",
        "ViT-B-32.pt",
        "dinov2_vitb14_reg4_pretrain.pth",
        "ms1mv3_arcface_r100_fp16_backbone.pth",
    )
    for name in official:
        (weights / name).write_bytes(b"placeholder")
    rows = []
    for name, spec in config.get("discard_replace", {}).get("datasets", {}).items():
        for key in ("latents", "pairs"):
            (root / spec[key]).parent.mkdir(parents=True, exist_ok=True)
        (root / spec["latents"]).write_bytes(b"placeholder")
        network = root / spec["generator"]["network"]
        network.parent.mkdir(parents=True, exist_ok=True)
        network.write_bytes(b"placeholder")
        pair = f"{name},00000.png,{name},00001.png"
        (root / spec["pairs"]).write_text(
            "good_dataset,good_path,bad_dataset,bad_path\n" + pair + "\n"
        )
        rows.append(pair)
    pairs = config.get("attention", {}).get("pairs")
    if pairs:
        (root / pairs).write_text(
            "good_dataset,good_path,bad_dataset,bad_path\n" + "\n".join(rows) + "\n"
        )


def planned(output: str) -> dict[str, int]:
    """rule -> number of jobs, from the dry run's job-count table."""
    counts = {}
    for rule, count in re.findall(r"^(\w+)\s+(\d+)$", output, re.M):
        counts[rule] = int(count)
    return counts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("seed001_face_extractors.yaml",
         {"extract_features": 16, "compute_metrics": 3 * 4, "attention_maps": 3 * 4,
          "embed_features": 3 * 4, "trust_overlap": 3, "fd_infinity": 3}),
        ("seed000_fid_failures.yaml",
         {"extract_features": 8, "compute_metrics": 6, "detect_faces": 8,
          "discard_replace_select": 6, "trust_overlap": 6}),
    ],
)  # fmt: skip
def test_study_config_validates_and_its_dag_builds(tmp_path, name, expected):
    source = REPO / "configs" / name
    config = yaml.safe_load(source.read_text())
    lay_out(tmp_path, config)
    # as the config's header says: run in the data's folder, the config given by path
    result = snakemake(tmp_path, "--configfile", str(source), "--dry-run")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = planned(output)
    for rule, jobs in expected.items():
        assert counts.get(rule) == jobs, (rule, counts)
    assert counts["all"] == 1 and not (tmp_path / "results").exists()
