"""Extractor instances in the workflow: adding one runs only its jobs (and the aggregate
tables), changing one's settings reruns only its jobs, a metric setting reruns no extraction;
no earlier cache or metric file is rewritten (content and mtime)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from test_workflow import (
    BASE_CONFIG,
    N_IMAGES,
    config_error,
    make_workdir,
    planned,
    run_ok,
    write_config,
)

from fidlens.cache import read_features

pytestmark = pytest.mark.slow

MOBILENET = {"type": "mobilenet_v2_imagenet", "batch_size": N_IMAGES, "threads": 1}
CONFIG = {
    **BASE_CONFIG,
    "extractors": {"mobilenet": MOBILENET},
    "face_detection": {"enabled": True, "detectors": ["dlib"], "threads": 1},
    "metrics": {**BASE_CONFIG["metrics"], "names": ["fid", "pr"]},
}
ADDED = {  # another type, and the same type with other weights
    "face": {"type": "dlib_face", "face_box": "whole_image", "batch_size": N_IMAGES,
             "threads": 1},
    "mobilenet_random": {**MOBILENET, "weights": "random:1"},
}
PAIRS = ("gen1__real", "gen2__real")
TABLES = ["results/tables/metrics.csv", "results/tables/metrics.md"]


def snapshot(workdir) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every cache, metric file and face-detection summary."""
    files = [
        path
        for pattern in ("results/features/*/*.h5", "results/metrics/*/*.json", "results/faces/*")
        for path in workdir.glob(pattern)
    ]
    return {
        str(path.relative_to(workdir)): (hashlib.sha256(path.read_bytes()).hexdigest(),
                                         path.stat().st_mtime_ns)
        for path in files
    }


def jobs_of(*instances: str, metrics_only: bool = False) -> dict[str, list[str]]:
    jobs = {} if metrics_only else {
        rule: sorted(f"results/{folder}/{name}/{dataset}.h5"
                          for name in instances for dataset in ("gen1", "gen2", "real"))
        for rule, folder in (("extract_features", "features"),
                             ("dataset_statistics", "statistics"))  # rerun with their cache
    }
    jobs["compute_metrics"] = sorted(
        f"results/metrics/{name}/{pair}.json" for name in instances for pair in PAIRS)
    jobs["make_tables"] = TABLES
    return jobs


def sorted_jobs(workdir) -> dict[str, list[str]]:
    return {rule: sorted(outputs) for rule, outputs in planned(workdir).items()}


def test_adding_and_changing_extractors_reruns_only_their_jobs(tmp_path):
    workdir = make_workdir(tmp_path, CONFIG)
    run_ok(workdir)
    before = snapshot(workdir)
    assert len(before) == 3 + 2 + 6  # mobilenet's caches, its metrics, faces JSON + CSV

    added = {**CONFIG, "extractors": {**CONFIG["extractors"], **ADDED}}
    write_config(workdir, added)
    assert sorted_jobs(workdir) == jobs_of("face", "mobilenet_random")
    run_ok(workdir)
    after = snapshot(workdir)
    assert {path: after[path] for path in before} == before, "an earlier file was rewritten"
    assert len(after) == len(before) + 2 * (3 + 2)
    assert planned(workdir) == {}
    face = read_features(workdir / "results/features/face/real.h5", with_outputs=True)
    assert face.features.shape == (N_IMAGES, 128) and face.attrs["extractor_type"] == "dlib_face"
    assert np.isfinite(face.features).all() and "face_found" in face.outputs
    mobilenet = read_features(workdir / "results/features/mobilenet_random/real.h5")
    assert mobilenet.attrs["weights"] == "random-init" and mobilenet.features.shape[1] == 1280
    assert read_features(workdir / "results/features/mobilenet/real.h5").attrs["weights"] == \
        "pretrained"

    # One instance's own setting, or a common one: only that instance's jobs.
    changed = {**added["extractors"], "face": {**ADDED["face"], "upsample": 0}}
    write_config(workdir, {**added, "extractors": changed})
    assert sorted_jobs(workdir) == jobs_of("face")
    changed = {**added["extractors"], "mobilenet_random": {**ADDED["mobilenet_random"],
                                                           "batch_size": 4}}
    write_config(workdir, {**added, "extractors": changed})
    assert sorted_jobs(workdir) == jobs_of("mobilenet_random")

    # A metric setting: every metric file and the tables, never an extraction.
    write_config(workdir, {**added, "metrics": {**CONFIG["metrics"], "seed": 3}})
    assert sorted_jobs(workdir) == jobs_of("face", "mobilenet", "mobilenet_random",
                                           metrics_only=True)


def test_every_instances_own_settings_are_checked_before_any_job(tmp_path):
    config = {**CONFIG, "extractors": {
        "face": {"type": "dlib_face", "face_box": "whole", "colour": 1},
        "mobilenet": {**MOBILENET, "preprocess": "clean"},
        "face_random": {"type": "dlib_face", "weights": "random"},
        "clip": {},
    }}
    message = config_error(tmp_path, config)
    assert "extractors.face.face_box: 'whole' is not one of ['detect', 'whole_image']" in message
    assert "('colour' was unexpected) (dlib_face's own settings: face_box, detector" in message
    assert "extractors.mobilenet.preprocess: mobilenet_v2_imagenet has no preprocessing " \
        "mode 'clean' (choose one of imagenet)" in message
    assert "extractors.face_random.weights: dlib_face has no random weights" in message
    assert "extractors.clip: no such extractor type 'clip'" in message
