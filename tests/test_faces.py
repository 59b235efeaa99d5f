"""Face-detection rate: dlib's HOG detector and MTCNN on real faces and on images without one,
through the library and the two workflow scripts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from fidlens.datasets import BadImageError, open_source
from fidlens.demo import upscale_gray
from fidlens.faces import FaceDetectionSettings, detect, detect_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four LFW faces (128 px crops), the astronaut photo, a flat and a noise image."""
    root = tmp_path_factory.mktemp("faces")
    images = list(upscale_gray(skimage_data.lfw_subset()[:4], 128))
    images.append(skimage_data.astronaut())
    images.append(np.full((128, 128, 3), 90, np.uint8))
    images.append(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / f"{i}.png")
    return root


def test_both_detectors_find_the_faces_and_nothing_in_flat_or_noise_images(folder):
    result = detect_dataset(open_source(folder), FaceDetectionSettings(), "mixed", workers=2)
    summary = result.summary()
    assert summary["n_images"] == 7
    for name in ("dlib", "mtcnn"):
        found = summary["detectors"][name]
        assert {"5.png", "6.png"} <= set(found["no_face"])  # flat, noise
        assert "4.png" not in found["no_face"]  # the astronaut
        assert found["rate"] == pytest.approx(found["n_with_face"] / 7)
        assert found["n_with_face"] == 7 - len(found["no_face"])
    assert summary["detectors"]["mtcnn"]["n_with_face"] == 5  # every face
    # The counts are the detectors' own: the same call on one image.
    astronaut = skimage_data.astronaut()
    row = result.paths.index("4.png")
    assert result.n_faces["dlib"][row] == len(detect(astronaut, "dlib", result.settings)) >= 1
    assert summary["provenance"]["model_files"]["mtcnn_pnet"]["sha256"]
    assert summary["settings"]["dlib_upsample"] == 1


def test_bad_images_follow_on_bad_image(folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "face.png").write_bytes((folder / "0.png").read_bytes())
    (broken / "bad.png").write_bytes(b"not a png")
    with pytest.raises(BadImageError, match="bad.png"):
        detect_dataset(open_source(broken), FaceDetectionSettings(detectors=("dlib",)))
    result = detect_dataset(open_source(broken),
                            FaceDetectionSettings(detectors=("dlib",), on_bad_image="skip"))
    assert result.paths == ["face.png"] and result.skipped[0].startswith("bad.png: ")
    with pytest.raises(ValueError, match="face detectors must be some of dlib, mtcnn"):
        FaceDetectionSettings(detectors=("haar",))


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "workflow_scripts" / name), *args],
                          capture_output=True, text=True)


def test_scripts_write_json_csv_and_the_table(folder, tmp_path):
    done = _script("detect_faces.py", "--images", str(folder), "--dataset-name", "mixed",
                   "--detectors", "mtcnn", "--resolution", "96", "--json",
                   str(tmp_path / "mixed.json"), "--csv", str(tmp_path / "mixed.csv"))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "mixed.json").read_text())
    assert list(summary["detectors"]) == ["mtcnn"] and summary["settings"]["resolution"] == 96
    rows = list(csv.DictReader((tmp_path / "mixed.csv").open()))
    assert [row["path"] for row in rows] == [f"{i}.png" for i in range(7)]
    assert {row["path"] for row in rows if row["mtcnn_found"] == "False"} == set(
        summary["detectors"]["mtcnn"]["no_face"])
    assert "mixed: mtcnn finds a face in" in done.stderr

    done = _script("face_table.py", "--summaries", str(tmp_path / "mixed.json"),
                   "--csv", str(tmp_path / "faces.csv"), "--markdown", str(tmp_path / "faces.md"))
    assert done.returncode == 0, done.stderr
    found = summary["detectors"]["mtcnn"]["n_with_face"]
    assert f"| mixed | 7 | {found / 7:.2f} ({found}/7) |" in (tmp_path / "faces.md").read_text()
    table = list(csv.DictReader((tmp_path / "faces.csv").open()))
    assert table == [{"dataset": "mixed", "detector": "mtcnn", "n_images": "7",
                      "n_with_face": str(found), "rate": str(found / 7)}]
