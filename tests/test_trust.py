"""Trust checks and the extra metrics, against direct computations: FD∞ (the fit equals numpy's
polyfit of FIDs computed independently on the same subsets), CMMD (equals the paper's formula
as an O(N^2) double loop in float64; its biased form equals google-research's), nearest
neighbours, overlap, memorisation sheets, sample-size warnings; CMMD on a tiny CLIP run; and
the workflow end to end on tiny datasets (statistics out and back in, a shared cache, the trust
outputs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance
from test_workflow import read_logs, run_ok, snakemake

from fidlens.cache import FeatureCache, read_features, write_cache
from fidlens.datasets import ManifestRow, manifest_rows, open_source, write_manifest
from fidlens.metrics.cmmd import CMMD_SCALE, CMMD_SIGMA, cmmd, rbf_mmd2
from fidlens.metrics.fd_infinity import fd_infinity, fd_infinity_sizes, fit_inverse_n
from fidlens.trust import (
    BYTE,
    NEAR,
    byte_identical,
    near_identical,
    nearest_neighbours,
    overlap_job,
    reference_spacing,
    sample_size_warnings,
    sheet_sample,
)

# ---------------------------------------------------------------- FD∞


def test_fd_infinity_sizes_follow_chong_and_forsyth():
    # their np.linspace(5000, 50000, 15).astype(int32)
    np.testing.assert_array_equal(
        fd_infinity_sizes(50000), np.linspace(5000, 50000, 15).astype(np.int32)
    )
    assert fd_infinity_sizes(50, 15, 0.4).tolist()[0] == 20
    with pytest.raises(ValueError, match="at least 2 distinct subset sizes"):
        fd_infinity_sizes(2, 5, 0.9)


@pytest.mark.parametrize("target_kind", ["features", "statistics"])
def test_fd_infinity_is_the_polyfit_of_direct_fids_on_the_same_subsets(target_kind):
    rng = np.random.default_rng(0)
    dim = 6
    x = rng.normal(size=(300, dim))
    y = rng.normal(0.4, 1.0, size=(250, dim))
    target = y if target_kind == "features" else (y.mean(0), np.cov(y, rowvar=False))
    sizes = fd_infinity_sizes(len(x), points=8, min_fraction=0.2)
    fit = fd_infinity(x, target, sizes, seed=3)
    assert [len(rows) for rows in fit.subsets] == sizes.tolist()
    assert not np.array_equal(fit.subsets[0], np.arange(sizes[0]))  # random, not the first N
    # FID of each subset by pytorch-fid's own formula (scipy sqrtm; N > D, full rank)
    direct = [
        calculate_frechet_distance(
            x[rows].mean(0), np.cov(x[rows], rowvar=False), y.mean(0), np.cov(y, rowvar=False)
        )
        for rows in fit.subsets
    ]
    np.testing.assert_allclose(fit.fids, direct, rtol=1e-8)
    slope, intercept = np.polyfit(1.0 / sizes, direct, 1)
    assert fit.fd_infinity == pytest.approx(intercept, rel=1e-8)
    assert fit.slope == pytest.approx(slope, rel=1e-8)


def test_fd_infinity_against_statistics_with_n_below_d_equals_frechet_distance():
    """Subsets of fewer rows than dimensions against target statistics: the feature-space
    form with the target's factor equals the Frechet distance of the subset's statistics."""
    from fidlens.metrics import feature_statistics, fid_from_features, frechet_distance

    rng = np.random.default_rng(9)
    x = rng.normal(size=(30, 40))
    y = rng.normal(0.2, 1.1, size=(90, 40))
    mu, sigma = feature_statistics(y)
    fit = fd_infinity(x, (mu, sigma), fd_infinity_sizes(30, 4, 0.3), seed=1)
    direct = [frechet_distance(*feature_statistics(x[rows]), mu, sigma) for rows in fit.subsets]
    np.testing.assert_allclose(fit.fids, direct, rtol=1e-9)
    assert fit.fids[-1] == pytest.approx(fid_from_features(x, y), rel=1e-9)


def test_fd_infinity_removes_most_of_the_1_over_n_bias():
    """N(0, I) against the exact statistics of N(0.3, I): FD = D x 0.09; FID_N adds ~D / N."""
    rng = np.random.default_rng(1)
    dim = 8
    truth = dim * 0.09
    x = rng.normal(size=(400, dim))
    target = (np.full(dim, 0.3), np.eye(dim))
    fit = fd_infinity(x, target, fd_infinity_sizes(400, 15, 0.1), seed=0)
    assert abs(fit.fd_infinity - truth) < 0.5 * abs(fit.fids[-1] - truth)
    assert fit.slope > 0  # FID falls as N grows
    intercept, slope = fit_inverse_n([10, 20, 40], [3.0, 2.0, 1.5])
    assert (intercept, slope) == pytest.approx((1.0, 20.0))


# ---------------------------------------------------------------- CMMD


def direct_cmmd(x, y, sigma=CMMD_SIGMA, scale=CMMD_SCALE, unbiased=True):
    """The paper's estimator written out pair by pair (float64 Python loops)."""
    x = [row / np.linalg.norm(row) for row in np.asarray(x, np.float64)]
    y = [row / np.linalg.norm(row) for row in np.asarray(y, np.float64)]

    def k(a, b):
        return float(np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2)))

    m, n = len(x), len(y)
    if unbiased:
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    else:
        xx = sum(k(a, b) for a in x for b in x) / m**2
        yy = sum(k(a, b) for a in y for b in y) / n**2
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return scale * (xx + yy - 2 * xy)


def test_cmmd_equals_the_direct_double_loop():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(23, 12)) + 0.5
    y = rng.normal(size=(17, 12))
    assert cmmd(x, y, device="cpu") == pytest.approx(direct_cmmd(x, y), rel=1e-10)
    # blocks smaller than the sets give the same sums
    assert cmmd(x, y, block=5, device="cpu") == pytest.approx(direct_cmmd(x, y), rel=1e-10)
    # the biased form is google-research cmmd/distance.py's: means over all pairs, x 1000
    assert cmmd(x, y, unbiased=False, device="cpu") == pytest.approx(
        direct_cmmd(x, y, unbiased=False), rel=1e-10
    )
    # rows are unit-normalised first: scaling them changes nothing
    assert cmmd(3 * x, 0.5 * y, device="cpu") == pytest.approx(cmmd(x, y, device="cpu"))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit_y = y / np.linalg.norm(y, axis=1, keepdims=True)
    assert cmmd(x, y, device="cpu") == pytest.approx(
        1000 * rbf_mmd2(unit, unit_y, sigma=10, device="cpu")
    )


def test_cmmd_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 16)) + 1.0
    same = rng.normal(size=(300, 16)) + 1.0
    shifted = rng.normal(size=(300, 16)) + 1.0 + np.eye(16)[0] * 2
    assert abs(cmmd(base, same, device="cpu")) < 0.05 * cmmd(base, shifted, device="cpu")
    assert cmmd(base, shifted, device="cpu") > 0


# ---------------------------------------------------------------- neighbours and overlap


def test_nearest_neighbours_equal_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(20, 5))
    index, distance = nearest_neighbours(x, y, block=7)
    full = np.linalg.norm(x[:, None] - y[None], axis=-1)
    np.testing.assert_array_equal(index, full.argmin(1))
    np.testing.assert_allclose(distance, full.min(1), rtol=1e-12)
    own = np.linalg.norm(y[:, None] - y[None], axis=-1) + np.diag(np.full(20, np.inf))
    assert reference_spacing(y) == pytest.approx(np.median(own.min(1)))


def test_a_near_copy_is_flagged_and_nothing_else():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(40, 16))
    x = rng.normal(size=(10, 16))
    x[7] = y[12] + 1e-3 * rng.normal(size=16)
    table = near_identical(x, y, ratio=0.1)
    assert table["near_identical"].tolist() == [i == 7 for i in range(10)]
    assert table.loc[7, "reference_index"] == 12
    raw = near_identical(x * 5, y * 5, ratio=0.1, normalize="none")  # scale-free ratio
    np.testing.assert_allclose(raw["ratio"], near_identical(x, y, 0.1, "none")["ratio"])


def test_byte_identical_pairs_and_sample_size_warnings():
    rows = [ManifestRow("a.png", 1, "1" * 40), ManifestRow("b.png", 1, "2" * 40)]
    reference = [ManifestRow("x.png", 1, "2" * 40), ManifestRow("y.png", 1, "3" * 40)]
    assert byte_identical(rows, reference).values.tolist() == [["b.png", "x.png", "2" * 40]]
    warnings = sample_size_warnings(50, 500, 2048)
    assert warnings[0].startswith("N < D (source): 50 images for 2048-dimensional")
    assert warnings[-1].startswith("sizes differ: 50 source vs 500 target")
    assert sample_size_warnings(5000, 6000, 2048) == []
    assert sheet_sample(10, 3, ratios=np.arange(10)[::-1], selection="closest").tolist() == [
        9,
        8,
        7,
    ]


def write_images(folder: Path, pixels: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{i:02d}.png")


def test_overlap_job_flags_copies_and_draws_the_sheet(tmp_path):
    rng = np.random.default_rng(6)
    real = [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(8)]
    gen = [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(5)]
    gen[1] = real[4].copy()  # a byte-identical copy
    write_images(tmp_path / "real", real)
    write_images(tmp_path / "gen", gen)
    for name in ("real", "gen"):
        write_manifest(manifest_rows(open_source(tmp_path / name)), tmp_path / f"{name}.tsv")
    caches = {}
    for name, images in (("real", real), ("gen", gen)):
        # features: the mean colour per quadrant; gen[3] a near copy of real[6] in this space
        features = np.array([[im[i:i + 12, j:j + 12].mean() for i in (0, 12) for j in (0, 12)]
                             for im in images], np.float32)  # fmt: skip
        if name == "gen":
            features[3] = caches["real"][6] * 1.0001
        caches[name] = features
        write_cache(tmp_path / f"{name}.h5", FeatureCache(
            features=features, paths=[f"{i:02d}.png" for i in range(len(images))],
            attrs={"extractor": "quadrants", "weights": "random-init", "dataset": name},
        ))  # fmt: skip
    doc = overlap_job(
        tmp_path / "gen.tsv", tmp_path / "real.tsv", ["quadrants"], [tmp_path / "gen.h5"],
        [tmp_path / "real.h5"], tmp_path / "gen", tmp_path / "real", "gen", "real",
        ratio=0.1, sheet_images=3, selection="closest", csv=tmp_path / "overlap.csv",
        neighbours_csv=tmp_path / "neighbours.csv", json_path=tmp_path / "overlap.json",
        sheet=tmp_path / "sheet.png",
    )  # fmt: skip
    overlap = pd.read_csv(tmp_path / "overlap.csv")
    assert overlap.loc[
        overlap["check"] == BYTE, ["source_path", "reference_path"]
    ].values.tolist() == [["01.png", "04.png"]]
    near = overlap[overlap["check"] == NEAR]
    assert set(near["source_path"]) == {"01.png", "03.png"}  # the byte copy is near too
    assert doc["sheet_images"][:2] == ["01.png", "03.png"] or doc["sheet_images"][:2] == [
        "03.png", "01.png"]  # fmt: skip
    assert json.loads((tmp_path / "overlap.json").read_text())["n_byte_identical"] == 1
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("L"), np.float64)
    assert sheet.shape[0] > 300 and sheet.shape[1] > 200 and sheet.std() > 10


# ---------------------------------------------------------------- CMMD on a tiny CLIP run


@pytest.mark.slow
def test_cmmd_in_the_metrics_of_a_tiny_clip_run(tmp_path):
    """clip_vitb32 (random-init) features of a few tiny images: compute_metrics reports CMMD
    and it equals the direct computation on the cached embeddings; a non-CLIP cache has none."""
    from fidlens.evaluate import compute_metrics
    from fidlens.extract import ExtractionSettings, extract_features
    from fidlens.extractors import build_extractor

    rng = np.random.default_rng(7)
    model = build_extractor("clip_vitb32", weights="random")
    for name, level in (("a", 90), ("b", 160)):
        write_images(tmp_path / name, [np.clip(rng.normal(level, 40, (32, 32, 3)), 0, 255)
                                       .astype(np.uint8) for _ in range(4)])  # fmt: skip
        extract_features(open_source(tmp_path / name), model, tmp_path / f"{name}.h5",
                         ExtractionSettings(batch_size=4, device="cpu", workers=0),
                         dataset_name=name, progress=False)  # fmt: skip
    result = compute_metrics(tmp_path / "a.h5", tmp_path / "b.h5", metrics="fid,cmmd")
    a, b = read_features(tmp_path / "a.h5").features, read_features(tmp_path / "b.h5").features
    assert result["raw"]["cmmd"] == pytest.approx(direct_cmmd(a, b), rel=1e-9)
    assert result["l2"]["cmmd"] == result["raw"]["cmmd"]
    assert "sigma 10" in result["cmmd_method"] and result["weights"] == "random-init"
    cache = read_features(tmp_path / "a.h5")
    cache.attrs.update(extractor="other", extractor_type="inception")
    write_cache(tmp_path / "other_a.h5", cache)
    cache = read_features(tmp_path / "b.h5")
    cache.attrs.update(extractor="other", extractor_type="inception")
    write_cache(tmp_path / "other_b.h5", cache)
    other = compute_metrics(tmp_path / "other_a.h5", tmp_path / "other_b.h5", metrics="fid,cmmd")
    assert "cmmd" not in other["raw"]


# ---------------------------------------------------------------- the workflow


def workflow_config(**extra) -> dict:
    config = {
        "demo": {"enabled": False},
        "datasets": {"real": {"path": "images/real"}, "gen": {"path": "images/gen"}},
        "extractors": {"inception": {"weights": "random", "batch_size": 8, "threads": 1}},
        "comparisons": [{"source": "gen", "target": "real"}],
        "metrics": {"names": ["fid"], "normalize": "none"},
        "statistics": {
            "export": {"formats": ["clean-fid"], "datasets": ["real"]},
            "targets": {"real_stats": {"inception": {
                "path": "results/statistics/export/inception/clean-fid/real_clean_custom_na.npz",
                "format": "clean-fid"}}},  # fmt: skip
            "comparisons": [{"source": "gen", "target": "real_stats"}],
        },
        "trust": {"enabled": True, "sheet": {"images": 2},
                  "fd_infinity": {"points": 4, "min_fraction": 0.5}},
    }  # fmt: skip
    config.update(extra)
    return config


def make_images(root: Path) -> None:
    rng = np.random.default_rng(8)
    for name, level in (("real", 100), ("gen", 140)):
        write_images(root / "images" / name, [np.clip(rng.normal(level, 40, (32, 32, 3)), 0, 255)
                                              .astype(np.uint8) for _ in range(8)])  # fmt: skip


@pytest.mark.slow
def test_workflow_statistics_round_trip_shared_cache_and_trust_outputs(tmp_path):
    first = tmp_path / "first"
    make_images(first)
    (first / "config.yaml").write_text(yaml.safe_dump(workflow_config()))
    run_ok(first)
    metrics = json.loads((first / "results/metrics/inception/gen__real.json").read_text())
    stats = json.loads((first / "results/metrics/inception/gen__real_stats.json").read_text())
    assert stats["raw"]["fid"] == pytest.approx(metrics["raw"]["fid"], rel=1e-9)
    table = (first / "results/tables/metrics.md").read_text()
    assert "real_stats" in table and "random-init" in table
    overlap = pd.read_csv(first / "results/trust/overlap.csv")
    assert overlap["check"].tolist() == [BYTE, NEAR] and overlap["n_flagged"].tolist() == [0, 0]
    size = pd.read_csv(first / "results/trust/sample_size.csv")
    assert set(size["target"]) == {"real", "real_stats"}
    assert size["warnings"].str.contains("N < D").all()
    assert (first / "results/trust/gen__real/memorisation.png").stat().st_size > 10_000
    exported = np.load(
        first / "results/statistics/export/inception/clean-fid/real_clean_custom_na.npz"
    )
    assert exported["sigma"].shape == (2048, 2048) and "fidlens_provenance" in exported

    # a second machine: the same images, gen's cache shared from the first
    second = tmp_path / "second"
    shutil.copytree(first / "images", second / "images")
    shared = first / "results/features/inception/gen.h5"
    config = workflow_config(trust={"enabled": False}, statistics={})
    config["datasets"]["gen"]["caches"] = {"inception": str(shared)}
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    output = run_ok(second, "results/metrics/inception/gen__real.json")
    assert "import_cache_inception_gen" in output and "rule extract_features" in output
    np.testing.assert_array_equal(read_features(second / "results/features/inception/gen.h5")
                                  .features, read_features(shared).features)  # fmt: skip
    again = json.loads((second / "results/metrics/inception/gen__real.json").read_text())
    assert again["raw"]["fid"] == pytest.approx(metrics["raw"]["fid"], rel=1e-12)

    # a third: other weights than the shared cache's -> a clear error, nothing mixed
    third = tmp_path / "third"
    shutil.copytree(first / "images", third / "images")
    config["extractors"]["inception"]["weights"] = "random:5"
    (third / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(third, "results/features/inception/gen.h5")
    assert result.returncode != 0
    log = read_logs(third)
    assert "was not made with the settings of extractor instance 'inception'" in log
    assert "'random-init seed 0', this configuration makes 'random-init seed 5'" in log
    assert not (third / "results/features/inception/gen.h5").exists()
