"""The extractor types of issue 8 by name in extract_features.py (`--extractor NAME`): a cache
with each type's features (and logits for classifiers) and provenance, from seeded random
weights: clip_vitb32, a type of a module holding two (clip.py, see the registry)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from parity import photos
from PIL import Image

from fidlens.cache import read_features

SCRIPT = Path(__file__).resolve().parents[1] / "workflow_scripts" / "extract_features.py"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for index, image in enumerate(photos(3, seed=9)):
        Image.fromarray(image).save(folder / f"{index}.png")
    return folder


@pytest.mark.parametrize(
    ("name", "dim", "logits", "layer", "attention"),
    [
        ("clip_vitb32", 512, None, "embedding", "transformer.resblocks.10"),
    ],
)
def test_extract_features_by_type_name(folder, tmp_path, name, dim, logits, layer, attention):
    out = tmp_path / f"{name}.h5"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--images", str(folder), "--extractor", name,
         "--weights", "random", "--batch-size", "2", "--threads", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    cache = read_features(out, with_logits=True)
    assert cache.features.shape == (3, dim) and np.isfinite(cache.features).all()
    assert (cache.logits is None) == (logits is None)
    attrs = cache.attrs
    assert (attrs["extractor"], attrs["extractor_type"], attrs["feature_layer"]) == (
        name, name, layer)
    assert (attrs["attention_layer"], attrs["weights"]) == (attention, "random-init")
