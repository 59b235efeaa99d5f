"""dinov2_vitb14_reg / dinov2_vitl14: timm's networks loading facebookresearch's layout, compared
with facebookresearch's own model code (../shared/reference/dinov2) on random weights saved in
that layout, position embeddings interpolated as facebookresearch does at run time."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import torchvision.transforms as T
from parity import (
    PARITY_TOLERANCE,
    assert_parity,
    our_features,
    photos,
    reference_path,
    relative_difference,
    rng_untouched,
)
from PIL import Image
from timm.models.vision_transformer import checkpoint_filter_fn

from fidlens.extractors import available, build_extractor, get_type, instance_problems
from fidlens.extractors.networks import dinov2 as dinov2_network
from fidlens.extractors.networks.seeded import seeded_state_dict
from fidlens.weights import WEIGHTS_SPECS, WeightsFileError

B14 = "dinov2_vitb14_reg"
L14 = "dinov2_vitl14"


def facebookresearch_model(hub_name: str, checkpoint) -> torch.nn.Module:
    """facebookresearch/dinov2's own model, built offline from the reference snapshot, with
    the checkpoint loaded strictly."""
    model = torch.hub.load(reference_path("dinov2"), hub_name, source="local", pretrained=False)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.eval()


def save_official(tmp_path, type_name: str, seed: int):
    path = tmp_path / dinov2_network.VARIANTS[type_name].file_name
    torch.save(dinov2_network.random_official_state_dict(type_name, seed), path)
    return path


@pytest.fixture(scope="module")
def b14_checkpoint(tmp_path_factory):
    return save_official(tmp_path_factory.mktemp("dinov2"), B14, seed=3)


def _parity(type_name, hub_name, checkpoint, images) -> torch.Tensor:
    ours = build_extractor(type_name, weights=str(checkpoint))
    reference = facebookresearch_model(hub_name, checkpoint)
    batch = torch.stack([ours.preprocessor()(image) for image in images])
    with torch.no_grad():
        expected = reference(batch)  # x_norm_clstoken (the head is the identity)
    features = our_features(ours, images)
    assert features.shape == (len(images), dinov2_network.VARIANTS[type_name].feature_dim)
    assert_parity(features, expected, f"{type_name} vs facebookresearch {hub_name}")
    return expected


def test_both_types_are_declared():
    assert {B14, L14} <= set(available())
    for name, dim, block, file in (
        (B14, 768, "blocks.10", "dinov2_vitb14_reg4_pretrain.pth"),
        (L14, 1024, "blocks.22", "dinov2_vitl14_pretrain.pth"),
    ):
        declared = get_type(name)
        assert (declared.feature_dim, declared.attention_layer) == (dim, block)
        spec = WEIGHTS_SPECS[name]
        assert spec.file_name == file and spec.url.endswith(file)
        assert spec.places == ("{torch_home}/hub/checkpoints",)
    assert (dinov2_network.VARIANTS[B14].interpolate_offset,
            dinov2_network.VARIANTS[B14].interpolate_antialias) == (0.0, True)
    assert (dinov2_network.VARIANTS[L14].interpolate_offset,
            dinov2_network.VARIANTS[L14].interpolate_antialias) == (0.1, False)


def test_vitb14_reg_parity_with_facebookresearch(b14_checkpoint):
    _parity(B14, "dinov2_vitb14_reg", b14_checkpoint, photos(3, seed=1))


def test_the_official_layout_is_facebookresearchs():
    reference = torch.hub.load(
        reference_path("dinov2"), "dinov2_vitb14_reg", source="local", pretrained=False
    )
    expected = {key: value.shape for key, value in reference.state_dict().items()}
    assert dinov2_network.official_layout(B14) == dict(sorted(expected.items()))


def test_auto_finds_torch_hubs_cache_and_a_wrong_file_is_refused(
    b14_checkpoint, tmp_path, monkeypatch
):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    [problem] = instance_problems("dino", {"type": B14})
    assert str(hub / "dinov2_vitb14_reg4_pretrain.pth") in problem
    assert str(tmp_path / "weights" / "dinov2_vitb14_reg4_pretrain.pth") in problem
    (hub / "dinov2_vitb14_reg4_pretrain.pth").symlink_to(b14_checkpoint)
    model = build_extractor(B14, weights="auto")
    assert model.weights_info.path == str(hub / "dinov2_vitb14_reg4_pretrain.pth")
    assert "no published hash" in model.weights_info.origin
    # The register model's file is not the plain one's: keys named, nothing loaded.
    state = torch.load(b14_checkpoint, weights_only=True)
    del state["mask_token"]
    state["head.weight"] = torch.zeros(2)
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(WeightsFileError) as error:
        build_extractor(B14, weights=str(broken))
    message = str(error.value)
    assert "missing key: mask_token" in message and "unexpected key: head.weight" in message
    assert "dinov2_vitb14_reg4_pretrain.pth" in message


def test_position_interpolation_is_facebookresearchs_not_timms():
    """With an offset (the models without registers) timm's own resampling differs from
    facebookresearch's; ours is facebookresearch's, for both settings."""
    grid = torch.from_numpy(np.random.RandomState(0).normal(size=(1, 1 + 37 * 37, 8)))
    grid = grid.float()
    for offset, antialias in ((0.0, True), (0.1, False)):
        ours = dinov2_network.interpolate_position_embedding(grid, 16, offset, antialias)
        patches = grid[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
        sizing = {"scale_factor": ((16 + offset) / 37,) * 2} if offset else {"size": (16, 16)}
        expected = torch.nn.functional.interpolate(
            patches, mode="bicubic", antialias=antialias, **sizing
        ).permute(0, 2, 3, 1).reshape(1, 256, 8)
        assert torch.equal(ours[:, 1:], expected) and torch.equal(ours[:, :1], grid[:, :1])
    timms = timm.layers.resample_abs_pos_embed(grid, (16, 16), num_prefix_tokens=1)
    with_offset = dinov2_network.interpolate_position_embedding(grid, 16, 0.1, False)
    assert relative_difference(timms, with_offset) > 100 * PARITY_TOLERANCE


def test_preprocessing_is_dgm_evals():
    """dgm-eval's DINOv2 transform (and EDM2's `pil` mode): the whole image to 224 x 224 with
    PIL bicubic, ToTensor, ImageNet mean / std."""
    transform = T.Compose([
        T.Resize((224, 224), interpolation=T.InterpolationMode.BICUBIC),
        T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    ours = dinov2_network.DgmEvalPreprocessor()
    for image in photos(4, seed=2):
        got = ours(image)
        assert got.shape == (3, 224, 224)
        assert torch.allclose(got, transform(Image.fromarray(image)), atol=1e-6, rtol=0)


def test_random_weights_are_seeded_finite_and_marked(b14_checkpoint):
    assert rng_untouched(lambda: build_extractor(B14, weights="random:3"))
    first = build_extractor(B14, weights="random:3")
    assert first.provenance()["weights"] == "random-init"
    assert first.provenance()["attention_layer"] == "blocks.10"
    images = photos(2, seed=3)
    features = our_features(first, images)
    # The fixture saved random:3 in facebookresearch's layout: the same numbers.
    assert torch.equal(features, our_features(build_extractor(B14, weights=str(b14_checkpoint)),
                                              images))
    key = "blocks.0.attn.qkv.weight"
    shape = {key: dinov2_network.official_layout(B14)[key]}
    other = seeded_state_dict(shape, 4, dinov2_network._random_std)[key]
    assert not torch.allclose(other, first.network.state_dict()[key])  # another seed
    assert torch.isfinite(features).all()
    assert 0.01 < features.abs().mean() < 100 and features.std(dim=0).mean() > 1e-3


@pytest.mark.heavy
def test_vitl14_parity_with_facebookresearch_and_timms_own_resampling_differs(tmp_path):
    checkpoint = save_official(tmp_path, L14, seed=4)
    images = photos(2, seed=4)
    expected = _parity(L14, "dinov2_vitl14", checkpoint, images)
    # timm's own position resampling (no offset, antialiased) is not facebookresearch's.
    naive = timm.create_model("vit_large_patch14_dinov2", pretrained=False, img_size=224,
                              num_classes=0)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    naive.load_state_dict(checkpoint_filter_fn(state, naive))
    batch = torch.stack([dinov2_network.DgmEvalPreprocessor()(image) for image in images])
    with torch.no_grad():
        assert relative_difference(naive.eval()(batch), expected) > PARITY_TOLERANCE
    checkpoint.unlink()  # 1.2 GB; pytest keeps the temporary folders of recent runs
