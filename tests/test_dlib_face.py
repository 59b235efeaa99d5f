"""dlib_face: dlib's face-recognition ResNet on 5-landmark chips, with the face box found by a
detector or taken as the whole image; compared with dlib's own descriptor on the same faces."""

from __future__ import annotations

import dlib
import face_recognition_models as frm
import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from fidlens.cache import read_features
from fidlens.datasets import open_source
from fidlens.demo import upscale_gray
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor

SETTINGS = ExtractionSettings(batch_size=4, workers=0)


@pytest.fixture(scope="module")
def faces():
    """Six LFW faces upscaled to 128 px (face crops), as the demo makes them."""
    return list(upscale_gray(skimage_data.lfw_subset()[:6], 128))


@pytest.fixture(scope="module")
def dlib_models():
    return (
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


def _save(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    return folder


def _dlib_descriptor(image, rect, dlib_models) -> np.ndarray:
    """dlib's own route: landmarks in the box, then compute_face_descriptor(image, shape)."""
    predictor, network = dlib_models
    shape = predictor(image, rect)
    return np.array(network.compute_face_descriptor(image, shape), dtype=np.float32)


def test_whole_image_mode_is_dlibs_own_descriptor_of_the_crop(faces, dlib_models, tmp_path):
    model = build_extractor("dlib_face", settings={"face_box": "whole_image"}, name="face")
    out = tmp_path / "face.h5"
    extract_features(open_source(_save(tmp_path / "faces", faces)), model, out, SETTINGS,
                     "faces", progress=False)
    cache = read_features(out, with_outputs=True)
    assert cache.features.shape == (6, 128) and cache.excluded == []
    for row, image in enumerate(faces):
        whole = dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
        np.testing.assert_array_equal(cache.features[row],
                                      _dlib_descriptor(image, whole, dlib_models))
    np.testing.assert_array_equal(cache.outputs["face_box"][0], [0, 0, 127, 127])
    assert cache.outputs["face_found"].dtype == bool and cache.outputs["n_faces"].dtype == np.int32
    attrs = cache.attrs
    assert attrs["extractor"] == "face" and attrs["extractor_type"] == "dlib_face"
    assert attrs["weights"] == "pretrained" and attrs["device_type"] == "cpu"
    assert attrs["attention_layer"] == "none" and attrs["has_gradients"] is False
    assert attrs["landmarks_path"].endswith("shape_predictor_5_face_landmarks.dat")
    assert '"face_box": "whole_image"' in attrs["extractor_settings"]


def test_an_identity_embedding(faces):
    """The same face under a brightness change stays close; other faces are far."""
    model = build_extractor("dlib_face", settings={"face_box": "whole_image"})
    brighter = [np.clip(face.astype(int) + 12, 0, 255).astype(np.uint8) for face in faces]
    prepare = model.preprocessor()
    features = model([prepare(image) for image in faces + brighter])["features"]
    same = np.linalg.norm(features[:6] - features[6:], axis=1)
    others = [np.linalg.norm(features[i] - features[j]) for i in range(6) for j in range(i)]
    assert same.max() < 0.25 < min(others)


def test_detect_mode_leaves_out_images_without_a_face_and_lists_them(dlib_models, tmp_path):
    astronaut = skimage_data.astronaut()  # one face, about 100 px, in a 512 px photo
    flat = np.full((96, 96, 3), 128, np.uint8)
    images = [flat, astronaut, flat[:64]]
    model = build_extractor("dlib_face", settings={"face_box": "detect", "upsample": 0})
    out = tmp_path / "detect.h5"
    extract_features(open_source(_save(tmp_path / "mixed", images)), model, out, SETTINGS,
                     "mixed", progress=False)
    cache = read_features(out, with_outputs=True)
    assert cache.paths == ["01.png"]
    reason = "no face found by dlib's hog detector (upsample 0)"
    assert cache.excluded == [f"00.png: {reason}", f"02.png: {reason}"]
    assert cache.attrs["n_excluded"] == 2 and cache.attrs["excluded_reason"] == reason
    assert cache.outputs["face_found"].tolist() == [True]
    left, top, right, bottom = cache.outputs["face_box"][0]
    assert 150 < left < right < 300 and 30 < top < bottom < 200  # her face
    rect = dlib.get_frontal_face_detector()(astronaut, 0)[0]
    assert (left, top, right, bottom) == (rect.left(), rect.top(), rect.right(), rect.bottom())
    np.testing.assert_array_equal(cache.features[0],
                                  _dlib_descriptor(astronaut, rect, dlib_models))


def test_the_cnn_detector_is_an_option():
    small = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((256, 256)))  # 50 px face
    model = build_extractor("dlib_face", settings={"detector": "cnn", "upsample": 1})
    assert model.provenance()["cnn_detector_path"].endswith("mmod_human_face_detector.dat")
    item = model.preprocessor()(small)
    assert item["face_found"] and item["chip"].shape == (150, 150, 3)
    output = model([item])
    assert output["features"].shape == (1, 128) and output["face_found"].tolist() == [True]
