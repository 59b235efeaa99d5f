"""resnet50 / swav_resnet50: torchvision's ResNet-50 with the ImageNet file and with SwAV's
self-supervised checkpoint. No independent port exists, so these check that each official
layout loads strictly as described (and that a wrong file is refused, naming its keys), that
the network is torchvision's own forward, and that `logits` is `fc` of the pooled features."""

from __future__ import annotations

import pytest
import torch
import torchvision
from parity import assert_parity, our_features, photos, rng_untouched

from fidlens.extractors import build_extractor, get_type, instance_problems
from fidlens.extractors.networks import resnet50 as resnet_network
from fidlens.weights import WEIGHTS_SPECS, WeightsFileError, WeightsHashError


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """Seeded weights saved as torchvision's state dict (the layout of resnet50-0676ba61.pth)."""
    path = tmp_path_factory.mktemp("resnet50") / "resnet50-imagenet-layout.pth"
    torch.save(resnet_network.random_state_dict("resnet50", 3), path)  # = `random:3`
    return path


def swav_layout(backbone: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SwAV's checkpoint layout: a DataParallel state dict (`module.`), the backbone without
    fc, the projection head (2048 -> 2048 -> BN -> ReLU -> 128) and 3000 prototypes."""
    generator = torch.Generator().manual_seed(0)
    heads = {
        "projection_head.0.weight": torch.randn(2048, 2048, generator=generator) * 0.02,
        "projection_head.0.bias": torch.zeros(2048),
        "projection_head.1.weight": torch.ones(2048),
        "projection_head.1.bias": torch.zeros(2048),
        "projection_head.1.running_mean": torch.zeros(2048),
        "projection_head.1.running_var": torch.ones(2048),
        "projection_head.1.num_batches_tracked": torch.tensor(0),
        "projection_head.3.weight": torch.randn(128, 2048, generator=generator) * 0.02,
        "projection_head.3.bias": torch.zeros(128),
        "prototypes.weight": torch.randn(3000, 128, generator=generator),
    }
    without_fc = {k: v for k, v in backbone.items() if not k.startswith("fc.")}
    return {f"module.{key}": value for key, value in {**without_fc, **heads}.items()}


@pytest.fixture(scope="module")
def swav_file(tmp_path_factory, imagenet_file):
    path = tmp_path_factory.mktemp("swav") / "swav_800ep_pretrain.pth.tar"
    torch.save(swav_layout(torch.load(imagenet_file, weights_only=True)), path)
    return path


def torchvisions_resnet50(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = torchvision.models.resnet50()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"fc.weight", "fc.bias"}
    return model.eval()


def test_declared_types_and_their_official_files():
    imagenet, swav = get_type("resnet50"), get_type("swav_resnet50")
    assert (imagenet.feature_dim, imagenet.logits_dim, imagenet.attention_layer) == (
        2048, 1000, "layer4")
    assert (swav.feature_dim, swav.logits_dim, swav.attention_layer) == (2048, None, "layer4")
    assert imagenet.preprocess_modes == swav.preprocess_modes == ("imagenet",)
    assert WEIGHTS_SPECS["resnet50"].url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert WEIGHTS_SPECS["resnet50"].sha256_prefix == "0676ba61"
    assert WEIGHTS_SPECS["swav_resnet50"].url == (
        "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar")
    assert WEIGHTS_SPECS["swav_resnet50"].files[0].published_hash is None


def test_imagenet_file_is_torchvisions_network_and_logits_are_fc_of_the_pool(imagenet_file):
    model = build_extractor("resnet50", weights=str(imagenet_file))
    reference = torchvisions_resnet50(torch.load(imagenet_file, weights_only=True))
    pooled = {}
    reference.fc.register_forward_hook(lambda m, inputs, o: pooled.update(x=inputs[0]))
    images = photos(3, seed=1)
    batch = torch.stack([model.preprocessor()(image) for image in images])
    with torch.no_grad():
        expected_logits = reference(batch)
    features = our_features(model, images)
    logits = our_features(model, images, key="logits")
    assert (features.shape, logits.shape) == ((3, 2048), (3, 1000))
    assert_parity(features, pooled["x"], "resnet50 vs torchvision's forward (pool)")
    assert_parity(logits, expected_logits, "resnet50 vs torchvision's forward (logits)")
    with torch.no_grad():
        assert torch.allclose(logits, model.network.fc(features), rtol=0, atol=1e-5)
    assert model.logit_names[0] == "tench" and len(model.logit_names) == 1000


def test_swav_checkpoint_loads_its_backbone_and_ignores_its_heads(swav_file, imagenet_file):
    model = build_extractor("swav_resnet50", weights=str(swav_file))
    assert not hasattr(model.network, "fc")
    backbone = torchvisions_resnet50(torch.load(imagenet_file, weights_only=True))
    backbone.fc = torch.nn.Identity()
    images = photos(2, seed=2)
    batch = torch.stack([model.preprocessor()(image) for image in images])
    with torch.no_grad():
        expected = backbone(batch)
    outputs_seen = model(batch)
    assert set(outputs_seen) == {"features"}
    assert_parity(our_features(model, images), expected, "swav_resnet50 vs torchvision backbone")


def test_wrong_files_are_refused_naming_their_keys(swav_file, imagenet_file, tmp_path):
    # SwAV's file is not torchvision's ImageNet file, and the other way round.
    with pytest.raises(WeightsFileError, match="unexpected keys: module.bn1.bias"):
        build_extractor("resnet50", weights=str(swav_file))
    with pytest.raises(WeightsFileError, match="2 unexpected keys: fc.bias, fc.weight"):
        build_extractor("swav_resnet50", weights=str(imagenet_file))
    state = torch.load(swav_file, weights_only=True)
    del state["module.layer4.2.conv3.weight"]
    state["module.projection_head.9.weight"] = torch.zeros(1)  # heads' keys stay allowed
    state["module.queue"] = torch.zeros(1)
    broken = tmp_path / "swav_broken.pth.tar"
    torch.save(state, broken)
    with pytest.raises(WeightsFileError) as error:
        build_extractor("swav_resnet50", weights=str(broken))
    message = str(error.value)
    assert str(broken) in message and "swav_800ep_pretrain.pth.tar" in message
    assert "missing key: layer4.2.conv3.weight" in message
    assert "unexpected key: queue" in message and "projection_head.9" not in message


def test_auto_places_and_hash_checks(swav_file, imagenet_file, tmp_path, monkeypatch):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    for name, file in (("resnet50", "resnet50-0676ba61.pth"),
                       ("swav_resnet50", "swav_800ep_pretrain.pth.tar")):
        [problem] = instance_problems(name, {})
        assert str(hub / file) in problem and str(tmp_path / "weights" / file) in problem
    (hub / "swav_800ep_pretrain.pth.tar").symlink_to(swav_file)
    swav = build_extractor("swav_resnet50", weights="auto")
    assert swav.weights_info.path == str(hub / "swav_800ep_pretrain.pth.tar")
    assert "no published hash" in swav.weights_info.origin
    # Under torchvision's name a file must carry the published sha256 prefix.
    (hub / "resnet50-0676ba61.pth").symlink_to(imagenet_file)
    with pytest.raises(WeightsHashError, match="0676ba61"):
        build_extractor("resnet50", weights="auto")


def test_random_weights_are_seeded_calibrated_and_marked(imagenet_file, swav_file):
    assert rng_untouched(lambda: build_extractor("resnet50", weights="random:3"))
    images = photos(3, seed=3)
    for name, file in (("resnet50", imagenet_file), ("swav_resnet50", swav_file)):
        seeded = build_extractor(name, weights="random:3")
        assert seeded.provenance()["weights"] == "random-init"
        features = our_features(seeded, images)
        # The fixtures saved random:3: the same numbers from the file and from `random`
        # (SwAV's random backbone is resnet50's of the same seed).
        assert torch.equal(features, our_features(build_extractor(name, weights=str(file)),
                                                  images))
        assert torch.isfinite(features).all()
        assert 0.01 < features.abs().mean() < 100 and features.std(dim=0).mean() > 1e-3
    running_var = seeded.network.layer4[2].bn3.running_var
    assert not torch.equal(running_var, torch.ones_like(running_var))  # calibrated
