"""vgg16: torchvision's VGG16 with torch-fidelity's preprocessing, compared with
torch-fidelity's own `vgg16` extractor (given the weights path) on random weights saved in
torchvision's layout. The weights test is `heavy` (a 0.5 GB file); the rest is light."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from parity import assert_parity, our_features, photos, rng_untouched
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from fidlens.extractors import build_extractor, get_type
from fidlens.extractors.networks import vgg16 as vgg_network
from fidlens.weights import WEIGHTS_SPECS, WeightsFileError


def test_declared_as_torch_fidelitys_vgg16():
    declared = get_type("vgg16")
    assert (declared.feature_layer, declared.feature_dim, declared.logits_dim) == (
        "fc2_relu", 4096, 1000)
    assert declared.attention_layer == "features.30"
    assert declared.preprocess_modes == ("torch-fidelity",)
    spec = WEIGHTS_SPECS["vgg16"]
    assert spec.url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert spec.sha256_prefix == "397923af" and spec.places == ("{torch_home}/hub/checkpoints",)
    assert FeatureExtractorVGG16.get_default_feature_layer_for_metric("prc") == "fc2_relu"


def test_preprocessing_is_torch_fidelitys():
    ours = vgg_network.TorchFidelityVGGPreprocessor()
    mean = torch.tensor([255 * v for v in (0.485, 0.456, 0.406)]).view(1, 3, 1, 1)
    std = torch.tensor([255 * v for v in (0.229, 0.224, 0.225)]).view(1, 3, 1, 1)
    for image in photos(4, seed=1):
        uint8 = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        resized = interpolate_bilinear_2d_like_tensorflow1x(
            uint8, size=(224, 224), align_corners=False
        )
        expected = ((resized - mean) / std)[0]
        got = ours(image)
        assert got.shape == (3, 224, 224)
        assert torch.allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.heavy
def test_parity_with_torch_fidelity_and_torchvision(tmp_path):
    assert rng_untouched(lambda: build_extractor("vgg16", weights="random:2"))
    path = tmp_path / "vgg16-torchvision-layout.pth"
    torch.save(vgg_network.build_random_state_dict(2), path)
    ours = build_extractor("vgg16", weights=str(path))
    assert ours.provenance()["weights"] == "pretrained"
    images = photos(3, seed=2)  # 300 x 200, 150 x 220, 97 x 140: TF1 resize to 224
    reference = FeatureExtractorVGG16(
        "vgg16", ["fc2_relu"], feature_extractor_weights_path=str(path)
    ).eval()
    features = our_features(ours, images)
    with torch.no_grad():
        expected = torch.cat([
            reference(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())[0]
            for image in images
        ])
    assert features.shape == (3, 4096)
    assert_parity(features, expected, "vgg16 fc2_relu vs torch-fidelity vgg16")
    network = torchvision.models.vgg16()
    network.load_state_dict(torch.load(path, weights_only=True))
    batch = torch.stack([ours.preprocessor()(image) for image in images])
    with torch.no_grad():
        expected_logits = network.eval()(batch)
    assert_parity(our_features(ours, images, "logits"), expected_logits,
                  "vgg16 logits vs torchvision")
    seeded = our_features(build_extractor("vgg16", weights="random:2"), images)
    assert torch.equal(seeded, features) and np.isfinite(seeded.numpy()).all()
    assert seeded.std(dim=0).mean() > 1e-4
    state = torch.load(path, weights_only=True)
    del state["classifier.6.bias"]
    torch.save(state, path)
    with pytest.raises(WeightsFileError, match="missing key: classifier.6.bias"):
        build_extractor("vgg16", weights=str(path))
    path.unlink()  # 0.5 GB; pytest keeps the temporary folders of recent runs
