"""The per-dataset statistics file and the three class experiments end to end through their
command-line tools, on small synthetic caches: a classifier (logits) and a second extractor
whose cache lacks some generated images and lists the rest in another order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from fidlens.cache import CorruptCacheError, FeatureCache, write_cache
from fidlens.metrics import feature_statistics, fid_from_features
from fidlens.statistics import read_statistics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))
import class_experiment  # noqa: E402
import dataset_statistics  # noqa: E402
import experiment_tables  # noqa: E402

CLASSES = 10
N_GEN, N_REAL = 60, 60
MISSING = {"g03.png", "g10.png"}  # generated images the second extractor left out


def _attrs(extractor, kind, dataset):
    return {"extractor": extractor, "extractor_type": kind, "dataset": dataset,
            "weights": "pretrained", "weights_sha256": f"sha-{extractor}", "preprocess": "p"}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    rng = np.random.default_rng(0)
    # Real images of classes 0-4 (24, 12, 12, 6, 6); generated ones of every class, each of
    # 0-4 at least twice: Top-1 matching can reproduce the real histogram exactly.
    real_classes = np.repeat(np.arange(5), [24, 12, 12, 6, 6])
    gen_classes = np.concatenate([np.repeat(np.arange(5), 6), rng.choice(np.arange(5, 10), 30)])
    centres = rng.normal(size=(CLASSES, 6)) * 2
    paths = {"gen": [f"g{i:02d}.png" for i in range(N_GEN)],
             "real": [f"r{i:02d}.png" for i in range(N_REAL)]}
    for dataset, classes in (("gen", gen_classes), ("real", real_classes)):
        logits = rng.normal(size=(len(classes), CLASSES))
        logits[np.arange(len(classes)), classes] += 8.0
        # Features that follow the classes, so matching the classes moves FID.
        features = np.eye(CLASSES)[classes] @ centres
        features += rng.normal(scale=0.5, size=features.shape)
        write_cache(root / "clf" / f"{dataset}.h5", FeatureCache(
            features=features.astype(np.float32), logits=logits.astype(np.float32),
            paths=paths[dataset], attrs=_attrs("clf", "mobilenet_v2_imagenet", dataset),
            logit_names=[f"class{c}" for c in range(CLASSES)]))
        other = np.hstack([features[:, :3], rng.normal(size=(len(classes), 2))])
        keep = [i for i, path in enumerate(paths[dataset]) if path not in MISSING][::-1]
        write_cache(root / "other" / f"{dataset}.h5", FeatureCache(
            features=other[keep].astype(np.float32), paths=[paths[dataset][i] for i in keep],
            attrs=_attrs("other", "dlib_face", dataset)))
    for name in ("clf", "other"):
        assert dataset_statistics.main([
            "--cache", str(root / name / "real.h5"), "--out", str(root / "stats" / f"{name}.h5"),
        ]) == 0
    return root


def _features(root, name, dataset):
    with h5py.File(root / name / f"{dataset}.h5") as handle:
        return handle["features"][()], [p.decode() for p in handle["paths"][()]]


def test_statistics_file_holds_the_caches_mean_covariance_and_provenance(caches, tmp_path):
    stats = read_statistics(caches / "stats" / "other.h5")
    features, _ = _features(caches, "other", "real")
    mean, cov = feature_statistics(features)
    np.testing.assert_array_equal(stats.mean, mean)
    np.testing.assert_array_equal(stats.covariance, cov)
    assert (stats.n, stats.dim, stats.layer) == (N_REAL, 5, "pool")
    assert stats.attrs["extractor"] == "other" and stats.attrs["weights_sha256"] == "sha-other"
    assert stats.attrs["cache_sha256"] != "not recorded"
    assert stats.mean.dtype == stats.covariance.dtype == np.float64
    # The classifier's logits as the layer, and a damaged file refused.
    out = tmp_path / "logits.h5"
    assert dataset_statistics.main(["--cache", str(caches / "clf" / "real.h5"), "--layer",
                                    "logits", "--out", str(out)]) == 0
    assert read_statistics(out).dim == CLASSES
    with h5py.File(out, "r+") as handle:
        handle["mean"][0] += 1.0
    with pytest.raises(CorruptCacheError, match="damaged"):
        read_statistics(out)


def _run(caches, tmp_path, experiment, *extra):
    out = tmp_path / experiment
    argv = [
        "--experiment", experiment,
        "--classifier-source", str(caches / "clf" / "gen.h5"),
        "--classifier-target", str(caches / "clf" / "real.h5"),
        "--source-caches", str(caches / "clf" / "gen.h5"), str(caches / "other" / "gen.h5"),
        "--target-statistics", str(caches / "stats" / "clf.h5"), str(caches / "stats" / "other.h5"),
        "--source-name", "gen", "--target-name", "real", "--repeats", "3",
        "--json", f"{out}.json", "--csv", f"{out}.csv", "--plot", f"{out}.png", *extra,
    ]
    assert class_experiment.main(argv) == 0
    assert Path(f"{out}.png").stat().st_size > 10_000
    return json.loads(Path(f"{out}.json").read_text()), pd.read_csv(f"{out}.csv")


def test_top1_matching_matches_exactly_and_reports_every_extractors_fid(caches, tmp_path):
    result, table = _run(caches, tmp_path, "top1")
    assert result["matched"] and result["histogram_exact"]  # every real class is predicted
    assert result["unmatched_mass"] == 0 and result["histogram_distance_after"] == 0
    for row in result["histograms"]:
        assert row["generated_after"] == row["real"]
    assert result["dropped_generated_images"] > 0  # the generated classes 5..9
    for entry in result["extractors"]:
        gen, _ = _features(caches, entry["extractor"], "gen")
        real, _ = _features(caches, entry["extractor"], "real")
        assert entry["fid_before"] == pytest.approx(fid_from_features(gen, real), rel=1e-9)
        assert len(entry["fid_after"]["values"]) == 3
    clf, other = result["extractors"]
    assert clf["draws_missing"] == 0 and other["draws_missing"] >= 0
    # The features follow the classes: matching them lowers FID well below the control.
    for entry in (clf, other):
        assert entry["fid_after"]["mean"] < 0.5 * entry["fid_before"]
        assert entry["fid_after"]["mean"] < 0.5 * entry["fid_control"]["mean"]
    assert list(table["extractor"]) == ["clf", "other"] and (table["n"] == 1).all()


def test_topn_and_resampling_lower_the_fid_they_target(caches, tmp_path):
    topn, table = _run(caches, tmp_path, "topn", "--n", "1,3", "--max-iterations", "100")
    assert [entry["n"] for entry in topn["by_n"]] == [1, 3] and len(table) == 4
    for entry in topn["by_n"]:
        assert entry["mean_mismatch_after"] < entry["mean_mismatch_before"]
        assert entry["indicator_fd_after"] < entry["indicator_fd_before"]
    resampling, table = _run(caches, tmp_path, "resampling", "--extractor", "other",
                             "--max-iterations", "100")
    assert resampling["optimised_extractor"] == "other"
    other = next(e for e in resampling["extractors"] if e["extractor"] == "other")
    assert other["fid_weighted"] == pytest.approx(resampling["fid_optimum"], rel=1e-9)
    assert resampling["fid_optimum"] < 0.9 * resampling["fid_uniform"]
    assert other["fid_before"] == pytest.approx(resampling["fid_uniform"], rel=1e-12)
    assert 1 <= resampling["effective_sample_size"] <= N_GEN - len(MISSING)
    # The optimised weights live on the other cache's rows; the classifier's images it lacks
    # get no weight and no draws.
    clf = next(e for e in resampling["extractors"] if e["extractor"] == "clf")
    assert clf["draws_missing"] == 0

    tables = tmp_path / "tables"
    assert experiment_tables.main([
        "--kind", "experiments", "--results", str(tmp_path / "topn.json"),
        str(tmp_path / "resampling.json"), "--csv", f"{tables}.csv", "--markdown", f"{tables}.md",
    ]) == 0
    markdown = Path(f"{tables}.md").read_text()
    assert "## Top-N matching" in markdown and "## FID-minimising resampling" in markdown
    assert "other (optimised)" in markdown and "60 generated and 60 real images: small" in markdown
    assert len(pd.read_csv(f"{tables}.csv")) == 6


def test_top1_without_a_shared_class_reports_it_and_keeps_the_fids(caches, tmp_path):
    root = tmp_path / "disjoint"
    for dataset, shift in (("gen", 5), ("real", 0)):
        logits = np.zeros((8, CLASSES), np.float32)
        logits[np.arange(8), shift + np.arange(8) % 5] = 5.0
        write_cache(root / f"{dataset}.h5", FeatureCache(
            features=np.random.default_rng(shift).normal(size=(8, 6)).astype(np.float32),
            logits=logits, paths=[f"{dataset}{i}.png" for i in range(8)],
            attrs=_attrs("clf", "mobilenet_v2_imagenet", dataset)))
    assert dataset_statistics.main(["--cache", str(root / "real.h5"),
                                    "--out", str(root / "stats.h5")]) == 0
    out = tmp_path / "top1"
    assert class_experiment.main([
        "--experiment", "top1", "--classifier-source", str(root / "gen.h5"),
        "--classifier-target", str(root / "real.h5"), "--source-caches", str(root / "gen.h5"),
        "--target-statistics", str(root / "stats.h5"),
        "--json", f"{out}.json", "--csv", f"{out}.csv", "--plot", f"{out}.png",
    ]) == 0
    result = json.loads(Path(f"{out}.json").read_text())
    assert result["matched"] is False and "share no class" in result["not_matched_because"]
    assert result["unmatched_mass"] == 1.0 and result["extractors"][0]["fid_after"]["mean"] is None


def test_statistics_and_experiment_jobs_are_sized_from_n_and_d():
    from fidlens import resources

    small, large = resources.statistics_mem_mb(50, 2048), resources.statistics_mem_mb(50000, 2048)
    assert 1000 <= small < large and large >= 1.25 * 20 * 50000 * 2048 / 2**20
    assert resources.statistics_runtime_min(5 * 10**6, 2048, 1) > resources.statistics_runtime_min(
        5 * 10**6, 2048, 8) > resources.statistics_runtime_min(50, 2048, 1) <= 11
    shapes = [(10000, 2048), (10000, 512)]
    assert resources.experiment_mem_mb(shapes) > resources.experiment_mem_mb(shapes[1:])
    free = resources.experiment_runtime_min(shapes, 2, [(10000, 2048)], max_iterations=1000)
    capped = resources.experiment_runtime_min(shapes, 2, [(10000, 2048)], max_iterations=1000,
                                              time_limit_s=600)
    # 1,000 iterations of ~4 s evaluations are hours; a 10-minute limit caps the job.
    assert free > 120 and capped < free and capped <= 10 + 10 + 5
