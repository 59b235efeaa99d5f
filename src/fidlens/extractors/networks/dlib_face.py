"""dlib's face-recognition ResNet: a 128-d face-identity embedding of an aligned face chip.

Per image (in the DataLoader workers, as preprocessing): find the face box, either with a
detector (dlib's HOG frontal-face detector, or its CNN `mmod_human_face_detector.dat`) or as
the whole image (for sets that are already face crops); find 5 landmarks in it
(`shape_predictor_5_face_landmarks.dat`); cut dlib's aligned 150 x 150 chip (padding 0.25,
as `face_recognition_model_v1.compute_face_descriptor(image, shape)` does). The network
(`dlib_face_recognition_resnet_model_v1.dat`) then maps a batch of chips to descriptors.

With several detected faces, the largest box is used. Outputs beyond "features":
"face_found" (the detector found at least one face, in either mode), "n_faces" and
"face_box" (left, top, right, bottom of the box the landmarks were searched in, pixels of
the working-resolution image; NaN where no face was found in `detect` mode).

dlib runs on the CPU, outside torch: there are no gradients and no seeded random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fidlens.extractors.base import Extractor, WeightsInfo

CHIP_SIZE = 150
CHIP_PADDING = 0.25  # dlib's default, as in compute_face_descriptor(image, shape)

# Per-process dlib models (each DataLoader worker loads its own once), by (kind, path).
_MODELS: dict[tuple[str, str | None], Any] = {}


def dlib_model(kind: str, path: str | None = None):
    """A dlib model, loaded once per process: hog (built in), cnn, landmarks, recognition."""
    key = (kind, path)
    if key not in _MODELS:
        import dlib

        if kind == "hog":
            _MODELS[key] = dlib.get_frontal_face_detector()
        else:
            load = {
                "cnn": dlib.cnn_face_detection_model_v1,
                "landmarks": dlib.shape_predictor,
                "recognition": dlib.face_recognition_model_v1,
            }[kind]
            _MODELS[key] = load(path)
    return _MODELS[key]


def detect_faces(
    image: np.ndarray, detector: str = "hog", upsample: int = 1, cnn_path: str | None = None
) -> list[tuple[float, float, float, float, float]]:
    """Faces dlib finds in an H x W x 3 uint8 RGB image: (left, top, right, bottom, score),
    largest first. hog: HOG + linear SVM (score: SVM margin, > 0); cnn: MMOD (confidence)."""
    if detector == "hog":
        rects, scores, _ = dlib_model("hog").run(image, upsample, 0.0)
        found = [
            (r.left(), r.top(), r.right(), r.bottom(), score)
            for r, score in zip(rects, scores, strict=True)
        ]
    elif detector == "cnn":
        found = [
            (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
            for d in dlib_model("cnn", cnn_path)(image, upsample)
        ]
    else:
        raise ValueError(f"unknown dlib face detector {detector!r} (hog or cnn)")
    return sorted(
        ((float(a), float(b), float(c), float(d), float(s)) for a, b, c, d, s in found),
        key=lambda box: -(box[2] - box[0]) * (box[3] - box[1]),
    )


def _rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
        )
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class FaceChipPreprocessor:
    """Picklable per-image step: RGB uint8 image -> {chip (150 x 150 x 3 uint8, or None when
    no face was found in detect mode), face_found, n_faces, face_box}."""

    face_box: str  # "detect" or "whole_image"
    detector: str  # "hog" or "cnn"
    upsample: int
    landmarks_path: str
    cnn_path: str | None = None

    def __call__(self, image: np.ndarray) -> dict[str, Any]:
        import dlib

        image = _rgb8(image)
        faces = detect_faces(image, self.detector, self.upsample, self.cnn_path)
        if self.face_box == "whole_image":
            box = (0.0, 0.0, float(image.shape[1] - 1), float(image.shape[0] - 1))
        elif faces:
            box = faces[0][:4]
        else:
            return {"chip": None, "face_found": False, "n_faces": 0, "face_box": (np.nan,) * 4}
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = dlib_model("landmarks", self.landmarks_path)(image, rect)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return {"chip": chip, "face_found": bool(faces), "n_faces": len(faces), "face_box": box}


class DlibFaceEmbedding(Extractor):
    """dlib's ResNet on aligned chips -> 128-d descriptors (+ face_found, n_faces, face_box)."""

    name = "dlib_face"
    feature_layer = "descriptor"
    feature_dim = 128
    preprocess_modes = ("dlib_chip",)
    cpu_only = True

    def __init__(self, weights: WeightsInfo, files: dict[str, str | None], settings: dict):
        super().__init__("dlib_chip", weights)
        self.recognition_path = weights.path
        self.files_paths = dict(files)
        self.face_settings = dict(settings)
        if settings["face_box"] == "detect":
            self.keep_output = "face_found"
            self.excluded_reason = (
                f"no face found by dlib's {settings['detector']} detector "
                f"(upsample {settings['upsample']})"
            )
        dlib_model("recognition", self.recognition_path)  # fail here, not in the first batch

    def preprocessor(self) -> FaceChipPreprocessor:
        return FaceChipPreprocessor(
            face_box=self.face_settings["face_box"],
            detector=self.face_settings["detector"],
            upsample=self.face_settings["upsample"],
            landmarks_path=self.files_paths["landmarks"],
            cnn_path=self.files_paths.get("cnn_detector"),
        )

    def prepare(self, device) -> DlibFaceEmbedding:
        return self.eval()

    def collate(self, items: list, device) -> list:
        return items

    def forward(self, items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        features = np.zeros((len(items), self.feature_dim), dtype=np.float32)
        with_chip = [i for i, item in enumerate(items) if item["chip"] is not None]
        if with_chip:
            network = dlib_model("recognition", self.recognition_path)
            descriptors = network.compute_face_descriptor([items[i]["chip"] for i in with_chip])
            features[with_chip] = np.array([np.array(d) for d in descriptors], dtype=np.float32)
        return {
            "features": features,
            "face_found": np.array([item["face_found"] for item in items], dtype=bool),
            "n_faces": np.array([item["n_faces"] for item in items], dtype=np.int32),
            "face_box": np.array([item["face_box"] for item in items], dtype=np.float32),
        }


def load_dlib_face(weights, settings: dict, files: dict) -> DlibFaceEmbedding:
    """The extractor with its three (or four) model files resolved by the registry."""
    paths = {key: str(resolved.path) for key, resolved in files.items()}
    return DlibFaceEmbedding(weights.info, paths, settings)
