"""arcface_r100: our iResNet-100 compared with insightface's own `iresnet.py`
(../shared/reference/arcface_torch) on random weights saved as `backbone.pth`; strict loading,
the weights folder as the only auto place, dlib alignment, seeded random init."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity import assert_parity, our_features, photos, reference_path, rng_untouched
from skimage import data as skimage_data

from fidlens.extractors import build_extractor, files_state, get_type, instance_problems
from fidlens.extractors.networks import arcface as arcface_network
from fidlens.weights import WEIGHTS_SPECS, WeightsFileError, WeightsNotFoundError

NAME = "arcface_r100"
FILE_NAME = "ms1mv3_arcface_r100_fp16_backbone.pth"


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """Our seeded, calibrated weights saved as insightface's backbone.pth state dict."""
    path = tmp_path_factory.mktemp("arcface") / "backbone.pth"
    torch.save(arcface_network.random_state_dict(7), path)  # what `random:7` loads
    return path


@pytest.fixture(scope="module")
def model(backbone):
    return build_extractor(NAME, weights=str(backbone))


def faces(count: int) -> list[np.ndarray]:
    """LFW faces (skimage's wheel; 25 x 25 gray) upscaled to 112 and to 150 x 130, in RGB."""
    from PIL import Image

    lfw = skimage_data.lfw_subset()[:count]
    images = []
    for index, face in enumerate(lfw):
        gray = Image.fromarray((face * 255).astype(np.uint8))
        size = (112, 112) if index % 2 == 0 else (150, 130)
        images.append(np.repeat(np.asarray(gray.resize(size, Image.BICUBIC))[..., None], 3, 2))
    return images


def test_declared_as_the_seed_papers_arcface():
    declared = get_type(NAME)
    assert (declared.feature_dim, declared.logits_dim, declared.attention_layer) == (
        512, None, "layer4")
    spec = WEIGHTS_SPECS[NAME]
    assert spec.url is None and spec.places == () and spec.file_name == FILE_NAME
    assert "OneDrive" in spec.manual_instructions
    assert arcface_network.BLOCKS == (3, 13, 30, 3)


def test_parity_with_insightfaces_iresnet100(model, backbone):
    reference_path("arcface_torch")  # insightface's file, imported from there
    import iresnet

    reference = iresnet.iresnet100()
    reference.load_state_dict(torch.load(backbone, map_location="cpu", weights_only=True))
    reference.eval()
    images = faces(3) + photos(1, seed=1)
    batch = torch.stack([model.preprocessor()(image) for image in images])
    with torch.no_grad():
        expected = reference(batch)
    features = our_features(model, images)  # channels_last, as extraction runs it
    assert features.shape == (4, 512)
    assert_parity(features, expected, "arcface_r100 vs insightface iresnet100")
    # The layer the attention maps use: 512 x 7 x 7.
    seen = {}
    model.network.layer4.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    with torch.no_grad():
        model(batch[:1])
    assert tuple(seen["shape"]) == (1, 512, 7, 7)


def test_preprocessing_is_arcfaces_normalisation_of_the_resized_image():
    ours = arcface_network.ArcFacePreprocessor()
    for image in faces(4):
        got = ours(image)
        assert got.shape == (3, 112, 112) and got.dtype == torch.float32
        if image.shape[:2] == (112, 112):  # insightface's inference.py on a 112 x 112 image
            expected = torch.from_numpy(image).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
            assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_strict_loading_names_the_file_and_the_keys(backbone, tmp_path):
    state = torch.load(backbone, weights_only=True)
    del state["features.running_var"]
    state["module.fc.weight"] = state["fc.weight"]
    broken = tmp_path / "backbone.pth"
    torch.save(state, broken)
    with pytest.raises(WeightsFileError) as error:
        build_extractor(NAME, weights=str(broken))
    message = str(error.value)
    assert str(broken) in message and "backbone.pth of get_model('r100')" in message
    assert "missing key: features.running_var" in message
    assert "unexpected key: module.fc.weight" in message


def test_auto_looks_only_in_the_weights_folder_and_says_where_to_get_the_file(
    backbone, tmp_path, monkeypatch
):
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    [problem] = instance_problems("arcface", {"type": NAME})
    assert str(tmp_path / "weights" / FILE_NAME) in problem
    assert "OneDrive" in problem and str(tmp_path / "torch") not in problem
    with pytest.raises(WeightsNotFoundError, match=FILE_NAME):
        build_extractor(NAME, weights="auto")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / FILE_NAME).symlink_to(backbone)
    found = build_extractor(NAME, weights="auto")
    assert found.weights_info.path == str(tmp_path / "weights" / FILE_NAME)
    assert found.provenance()["weights"] == "pretrained"


def test_dlib_alignment_is_a_setting_recorded_with_its_landmark_file(backbone):
    settings = {"align": "dlib"}
    assert instance_problems("arc", {"type": NAME, "weights": "random", **settings}) == []
    assert "landmarks: " in files_state("arc", {"type": NAME, "weights": "random", **settings})
    assert files_state("arc", {"type": NAME, "weights": "random"}) == "random"
    assert "align" in instance_problems("arc", {"type": NAME, "align": "mtcnn"})[0]
    aligned = build_extractor(NAME, weights=str(backbone), settings=settings)
    attrs = aligned.provenance()
    assert attrs["extractor_settings"] == '{"align": "dlib", "landmarks": "auto"}'
    assert attrs["landmarks_path"].endswith("shape_predictor_5_face_landmarks.dat")
    astronaut = skimage_data.astronaut()  # a face dlib's detector finds
    noise = np.random.RandomState(0).randint(0, 255, (120, 120, 3), dtype=np.uint8)
    items = [aligned.preprocessor()(image) for image in (astronaut, noise)]
    assert [item["face_found"] for item in items] == [True, False]
    assert all(item["image"].shape == (3, 112, 112) for item in items)
    with torch.inference_mode():
        outputs = aligned(aligned.collate(items, torch.device("cpu")))
    assert outputs["features"].shape == (2, 512)
    assert outputs["face_found"].tolist() == [True, False]


def test_random_weights_are_seeded_calibrated_and_marked(model):
    assert rng_untouched(lambda: build_extractor(NAME, weights="random:7"))
    seeded = build_extractor(NAME, weights="random:7")
    assert seeded.provenance()["weights"] == "random-init"
    images = faces(4)
    features = our_features(seeded, images)
    # The same seed as the saved backbone: the same numbers from the file and from `random`.
    assert torch.equal(features, our_features(model, images))
    assert torch.isfinite(features).all()
    assert 0.01 < features.abs().mean() < 100 and features.std(dim=0).mean() > 1e-3
    running_var = seeded.network.features.running_var
    assert not torch.equal(running_var, torch.ones_like(running_var))  # calibrated


def test_aligned_extraction_caches_face_found_through_the_decoding_workers(backbone, tmp_path):
    from PIL import Image

    from fidlens.cache import read_features
    from fidlens.datasets import open_source
    from fidlens.extract import ExtractionSettings, extract_features

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(skimage_data.astronaut()).save(folder / "0_face.png")
    noise = np.random.RandomState(1).randint(0, 255, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "1_noise.png")
    model = build_extractor(NAME, weights=str(backbone), settings={"align": "dlib"})
    out = tmp_path / "arcface.h5"
    extract_features(open_source(folder), model, out, ExtractionSettings(batch_size=2, workers=1),
                     "faces", progress=False)
    cache = read_features(out, with_outputs=True)
    assert cache.features.shape == (2, 512) and np.isfinite(cache.features).all()
    assert cache.outputs["face_found"].tolist() == [True, False]
    assert cache.attrs["extractor_type"] == NAME and cache.attrs["attention_layer"] == "layer4"
    assert '"align": "dlib"' in cache.attrs["extractor_settings"]
