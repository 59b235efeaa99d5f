"""clip_vitb32 / clip_vitl14_336: OpenAI's CLIP image encoders, built by open_clip, compared
with torch-fidelity's own CLIP port (independent of open_clip) on random weights saved as a
TorchScript archive in OpenAI's layout; strict loading, auto places, seeded random init."""

from __future__ import annotations

import dataclasses

import numpy as np
import open_clip
import pytest
import torch
from parity import assert_parity, our_features, photos, rng_untouched
from PIL import Image
from torch import nn
from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

from fidlens.extractors import available, build_extractor, get_type, instance_problems
from fidlens.extractors.networks import clip as clip_network
from fidlens.extractors.networks.seeded import seeded_state_dict
from fidlens.weights import (
    WEIGHTS_SPECS,
    WeightsFileError,
    WeightsHashError,
    WeightsNotFoundError,
    file_sha256,
)

B32 = "clip_vitb32"
L14 = "clip_vitl14_336"


class _Node(nn.Module):
    """A module that only holds tensors (its forward is never called)."""


def openai_state_dict(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    """Our seeded weights with OpenAI's keys and dtypes: open_clip's `convert_weights_to_fp16`
    (OpenAI's own conversion) makes its convolutions, linear layers, attention and projections
    float16, as in OpenAI's files; layer norms and embeddings stay float32."""
    state = clip_network.random_openai_state_dict(type_name, seed)
    config = open_clip.get_model_config(clip_network.VARIANTS[type_name].architecture)
    with torch.device("meta"):
        model = open_clip.model.CLIP(**config, quick_gelu=True)
    model.load_state_dict(state, assign=True)
    open_clip.model.convert_weights_to_fp16(model)
    return model.state_dict()


def save_openai_torchscript(path, type_name: str, seed: int) -> None:
    """A TorchScript archive holding OpenAI's state dict (its keys, dtypes and the three int
    entries OpenAI's archives carry), saved with torch.jit.save as OpenAI's files are."""
    root = _Node()
    for key, value in openai_state_dict(type_name, seed).items():
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, _Node())
            node = getattr(node, part)
        node.register_parameter(leaf, nn.Parameter(value.clone(), requires_grad=False))
    variant = clip_network.VARIANTS[type_name]
    root.register_buffer("input_resolution", torch.tensor(variant.input_size))
    root.register_buffer("context_length", torch.tensor(77))
    root.register_buffer("vocab_size", torch.tensor(49408))
    torch.jit.save(torch.jit.script(root), str(path))


@pytest.fixture(scope="module")
def b32_archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32.pt"
    save_openai_torchscript(path, B32, seed=1)
    return path


@pytest.fixture(scope="module")
def b32(b32_archive):
    return build_extractor(B32, weights=str(b32_archive))


def _uint8_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def test_both_types_are_declared_with_openais_files():
    assert {B32, L14} <= set(available())
    for name, dim, size, blocks in ((B32, 512, 224, "10"), (L14, 768, 336, "22")):
        declared = get_type(name)
        assert (declared.feature_dim, declared.logits_dim) == (dim, None)
        assert declared.attention_layer == f"transformer.resblocks.{blocks}"
        spec = WEIGHTS_SPECS[name]
        assert spec.sha256 in spec.url and spec.files[0].hash_verified
        assert "{home}/.cache/clip" in spec.places
        assert clip_network.VARIANTS[name].input_size == size
    assert WEIGHTS_SPECS[B32].url == (
        "https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
    )


def test_torch_fidelity_parity_from_a_torchscript_archive(b32, b32_archive):
    # 224 x 224 images: torch-fidelity resizes with TF1 bilinear, ours as OpenAI (bicubic
    # shorter side, centre crop); at the input size both leave the pixels as they are.
    images = photos(3, size=(224, 224), seed=1)
    reference = FeatureExtractorCLIP(
        "clip-vit-b-32", ["clip"], feature_extractor_weights_path=str(b32_archive)
    ).eval()
    with torch.no_grad():
        expected = reference(_uint8_batch(images))[0]
    ours = our_features(b32, images)
    assert ours.shape == (3, 512)
    assert_parity(ours, expected, "clip_vitb32 vs torch-fidelity clip-vit-b-32")
    # The same as open_clip's own loader in float32 (what it does with OpenAI's files).
    loaded = open_clip.load_openai_model(str(b32_archive), precision="fp32", device="cpu").eval()
    with torch.no_grad():
        batch = torch.stack([b32.preprocessor()(image) for image in images])
        assert_parity(ours, loaded.encode_image(batch), "clip_vitb32 vs open_clip fp32")
    assert all(p.dtype == torch.float32 for p in b32.parameters())  # never float16


def test_a_plain_state_dict_in_openais_layout_loads_without_torchscript(
    b32, b32_archive, tmp_path, monkeypatch
):
    assert clip_network.is_torchscript_archive(b32_archive)
    plain = tmp_path / "ViT-B-32-state-dict.pt"
    torch.save(dict(torch.jit.load(str(b32_archive)).state_dict()), plain)
    assert not clip_network.is_torchscript_archive(plain)

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load used for a plain state dict")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    model = build_extractor(B32, weights=str(plain))
    images = photos(2, seed=2)
    assert torch.equal(our_features(model, images), our_features(b32, images))


def test_a_file_of_the_wrong_layout_is_refused_naming_the_keys(b32_archive, tmp_path):
    state = dict(torch.jit.load(str(b32_archive)).state_dict())
    del state["visual.proj"]
    state["visual.head.weight"] = torch.zeros(3)
    state["visual.conv1.weight"] = state["visual.conv1.weight"][:, :, :16, :16]
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(WeightsFileError) as error:
        build_extractor(B32, weights=str(broken))
    message = str(error.value)
    for part in (str(broken), "ViT-B-32.pt", "missing key: visual.proj",
                 "unexpected key: visual.head.weight", "visual.conv1.weight: file [768, 3, 16"):
        assert part in message
    # ViT-B/32's file is not ViT-L/14-336's.
    with pytest.raises(WeightsFileError, match="ViT-L-14-336px.pt.*shape mismatch"):
        build_extractor(L14, weights=str(b32_archive))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsFileError, match="cannot read weights file .*notes.txt"):
        build_extractor(B32, weights=str(text))


def test_auto_finds_openais_client_cache_and_checks_the_full_sha256(
    b32_archive, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    cache = home / ".cache" / "clip"
    cache.mkdir(parents=True)
    (cache / "ViT-B-32.pt").symlink_to(b32_archive)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    # Our random archive is not OpenAI's file: auto refuses it under OpenAI's name...
    with pytest.raises(WeightsHashError, match="40d365715913c9da98579312b702a82c18be219c"):
        build_extractor(B32, weights="auto")
    # ... and takes it once the published hash is this file's.
    spec = WEIGHTS_SPECS[B32]
    files = tuple(dataclasses.replace(f, sha256=file_sha256(b32_archive)) for f in spec.files)
    monkeypatch.setitem(WEIGHTS_SPECS, B32, dataclasses.replace(spec, files=files))
    model = build_extractor(B32, weights="auto")
    assert model.weights_info.path == str(cache / "ViT-B-32.pt")
    assert model.provenance()["weights"] == "pretrained"


def test_auto_without_a_file_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    [problem] = instance_problems("clip", {"type": L14})
    for place in (tmp_path / "weights" / "ViT-L-14-336px.pt",
                  tmp_path / "home" / ".cache" / "clip" / "ViT-L-14-336px.pt",
                  tmp_path / "torch" / "hub" / "checkpoints"):
        assert str(place) in problem
    assert "make weights" in problem
    with pytest.raises(WeightsNotFoundError, match=r"\.cache/clip/ViT-B-32\.pt"):
        build_extractor(B32, weights="auto")
    model = build_extractor(B32, weights="auto", fallback="random")
    assert model.provenance()["weights"] == "random-init"


def test_preprocessing_is_openais_transform():
    for size in (224, 336):
        transform = open_clip.image_transform(
            size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
            std=open_clip.OPENAI_DATASET_STD,
        )
        ours = clip_network.OpenAIPreprocessor(size)
        for image in photos(4, seed=3):
            got = ours(image)
            assert got.shape == (3, size, size) and got.dtype == torch.float32
            assert torch.equal(got, transform(Image.fromarray(image)))


def test_random_weights_are_seeded_finite_and_marked():
    assert rng_untouched(lambda: build_extractor(B32, weights="random:4"))
    first = build_extractor(B32, weights="random:4")
    again = build_extractor(B32, weights="random:4")
    attrs = first.provenance()
    assert (attrs["weights"], attrs["weights_sha256"], attrs["extractor_type"]) == (
        "random-init", "random-init", B32)
    assert attrs["attention_layer"] == "transformer.resblocks.10"
    assert first.preprocessor() == clip_network.OpenAIPreprocessor(224)
    images = photos(4, seed=4)
    features = our_features(first, images)
    assert torch.equal(features, our_features(again, images))
    assert torch.isfinite(features).all()
    assert 0.01 < features.abs().mean() < 100 and features.std(dim=0).mean() > 1e-3
    # Each tensor depends on seed, key and shape only: drawn alone, a key of the random
    # encoder is the same, so the vision tower of a random full file is the random encoder;
    # another seed gives other values.
    layout = clip_network.openai_layout(B32)
    for key in ("visual.proj", "visual.transformer.resblocks.3.attn.in_proj_weight"):
        alone = seeded_state_dict({key: layout[key]}, 4, clip_network._random_std)[key]
        assert torch.equal(alone, first.network.state_dict()[key.removeprefix("visual.")])
        other = seeded_state_dict({key: layout[key]}, 5, clip_network._random_std)[key]
        assert not torch.allclose(alone, other)


@pytest.mark.heavy
def test_vitl14_336_parity_with_torch_fidelity(tmp_path):
    archive = tmp_path / "ViT-L-14-336px.pt"
    save_openai_torchscript(archive, L14, seed=2)
    ours = build_extractor(L14, weights=str(archive))
    images = photos(2, size=(336, 336), seed=5)
    reference = FeatureExtractorCLIP(
        "clip-vit-l-14-336px", ["clip"], feature_extractor_weights_path=str(archive)
    ).eval()
    with torch.no_grad():
        expected = reference(_uint8_batch(images))[0]
    features = our_features(ours, images)
    assert features.shape == (2, 768)
    assert_parity(features, expected, "clip_vitl14_336 vs torch-fidelity clip-vit-l-14-336px")
    archive.unlink()  # 0.9 GB; pytest keeps the temporary folders of recent runs
