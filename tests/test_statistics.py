"""Per-dataset statistics files (fidlens.statistics, workflow_scripts/dataset_statistics.py)
and their use by compute_metrics: the same numbers, bit for bit, as from the caches."""

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_light_imports import heavy_modules_after_run

import fidlens.evaluate as evaluate
from fidlens.cache import CorruptCacheError, FeatureCache, write_cache
from fidlens.evaluate import FROM_CACHES, FROM_CACHES_N_LE_D, FROM_STATISTICS, compute_metrics
from fidlens.metric_specs import K_DC, K_PR
from fidlens.metrics import feature_statistics, l2_normalize
from fidlens.statistics import (
    compute_statistics,
    parse_plan,
    read_statistics,
    write_statistics,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow_scripts"
sys.path.insert(0, str(SCRIPTS))
import dataset_statistics  # noqa: E402

ATTRS = {"extractor": "inception", "extractor_type": "inception", "preprocess": "clean",
         "weights": "pretrained", "weights_sha256": "ab" * 32}  # fmt: skip
FULL = ["--moments", "raw,l2", "--radii", f"raw={K_PR},{K_DC}", "--radii", f"l2={K_PR},{K_DC}"]


def brute_sq_radii(x: np.ndarray, k: int) -> np.ndarray:
    """k-th smallest float64 squared distance to another row, from differences."""
    x = x.astype(np.float64)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def make_pair(folder: Path, n_source=150, n_target=130, dim=12, scale=1.0, seed=0):
    """Two of our caches (with sha256), source shifted from target; values times `scale`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n, shift in (("gen", n_source, 0.4), ("real", n_target, 0.0)):
        values = (rng.standard_normal((n, dim)) * np.linspace(1, 0.2, dim) + shift) * scale
        path = folder / f"{name}.h5"
        write_cache(path, FeatureCache(features=values.astype(np.float32),
                                       attrs=ATTRS | {"dataset": name}))  # fmt: skip
        paths.append(path)
    return paths


def make_statistics(cache: Path, *flags) -> Path:
    out = cache.with_suffix(".stats.h5")
    assert dataset_statistics.main(["--cache", str(cache), *flags, "--out", str(out)]) == 0
    return out


def test_file_holds_each_blocks_moments_and_radii_with_checksums(tmp_path):
    source, _ = make_pair(tmp_path)
    path = make_statistics(source, *FULL)
    stats = read_statistics(path)
    with h5py.File(source) as handle:
        features, stored = handle["features"][()], handle["features"].attrs["sha256"]
    for name, rows in (("raw", features), ("l2", l2_normalize(features))):
        block = stats.block(name)
        mean, covariance = feature_statistics(rows)
        np.testing.assert_array_equal(block.mean, mean)
        np.testing.assert_array_equal(block.covariance, covariance)
        assert sorted(block.sq_radii) == [K_PR, K_DC]
        for k in (K_PR, K_DC):
            np.testing.assert_allclose(block.sq_radii[k], brute_sq_radii(rows, k), rtol=1e-12)
    assert stats.mean is stats.block("raw").mean
    assert (stats.n, stats.dim, stats.layer) == (150, 12, "pool")
    assert stats.attrs["cache_sha256"] == stored and stats.attrs["dataset"] == "gen"
    with h5py.File(path, "r+") as handle:
        assert set(handle) == {"raw", "l2", "mean", "covariance"}
        assert isinstance(handle.get("mean", getlink=True), h5py.SoftLink)
        assert all("sha256" in handle[f"l2/{key}"].attrs for key in handle["l2"])
        handle[f"l2/sq_radii_k{K_DC}"][3] += 1.0
    with pytest.raises(CorruptCacheError, match=f"'l2/sq_radii_k{K_DC}'.*damaged"):
        read_statistics(path)


def test_plan_keeps_raw_moments_and_computes_only_what_is_asked(tmp_path):
    assert parse_plan() == {"raw": {"moments": True, "radii": []}}
    assert parse_plan(("l2",), {"l2": [5, 3, 3]}) == {
        "raw": {"moments": True, "radii": []}, "l2": {"moments": True, "radii": [3, 5]}}
    with pytest.raises(ValueError, match="unknown block"):
        parse_plan(("l3",))
    source, _ = make_pair(tmp_path)
    stats = read_statistics(make_statistics(source, "--radii", "l2=3"))
    assert set(stats.blocks) == {"raw", "l2"} and stats.block("raw").sq_radii == {}
    assert not stats.block("l2").has_moments and sorted(stats.block("l2").sq_radii) == [3]
    with pytest.raises(SystemExit):
        dataset_statistics.main(["--cache", str(source), "--radii", "raw", "--out", "x.h5"])
    bad = tmp_path / "few.h5"
    write_cache(bad, FeatureCache(features=np.eye(4, dtype=np.float32)))
    with pytest.raises(ValueError, match="k = 5 need at least 6 rows"):
        compute_statistics(bad, radii={"raw": [5]})


@pytest.mark.parametrize("scale", [1.0, 2.0**40, 2.0**-40])
def test_metrics_from_statistics_equal_those_from_the_caches_bit_for_bit(tmp_path, scale):
    source, target = make_pair(tmp_path, scale=scale)
    files = {"source_statistics": make_statistics(source, *FULL),
             "target_statistics": make_statistics(target, *FULL)}  # fmt: skip
    settings = {"metrics": "fid,pr,dc", "normalize": "both"}
    plain = compute_metrics(source, target, **settings)
    used = compute_metrics(source, target, **settings, **files)
    for block in ("raw", "l2"):
        assert used[block] == plain[block]  # ==, not approx
        assert used["statistics_from"][block] == dict.fromkeys(("fid", "pr", "dc"),
                                                               FROM_STATISTICS)  # fmt: skip
        assert plain["statistics_from"][block] == dict.fromkeys(("fid", "pr", "dc"),
                                                                FROM_CACHES)  # fmt: skip
    assert 0 < plain["raw"]["precision"] < 1 and 0 < plain["raw"]["coverage"] < 1
    assert used["source_statistics"] == str(files["source_statistics"])
    assert plain["source_statistics"] is None


def test_fid_alone_reads_only_the_caches_headers(tmp_path, monkeypatch):
    source, target = make_pair(tmp_path, scale=2.0**40)
    files = {"source_statistics": make_statistics(source),
             "target_statistics": make_statistics(target)}  # fmt: skip
    plain = compute_metrics(source, target, metrics="fid", normalize="none")

    def refuse(*args, **kwargs):
        raise AssertionError("the features were read")

    monkeypatch.setattr(evaluate, "read_features", refuse)
    used = compute_metrics(source, target, metrics="fid", normalize="none", **files)
    assert used["raw"] == plain["raw"] and used["statistics_from"]["raw"]["fid"] == FROM_STATISTICS
    assert (used["n_source"], used["n_target"], used["feature_dim"]) == (150, 130, 12)
    # l2 moments are not in these files: FID of the l2 block needs the caches
    with pytest.raises(AssertionError, match="features were read"):
        compute_metrics(source, target, metrics="fid", normalize="both", **files)


def test_partial_statistics_and_small_sets_fall_back_to_the_caches(tmp_path):
    source, target = make_pair(tmp_path / "big")
    files = {"source_statistics": make_statistics(source),  # moments only
             "target_statistics": make_statistics(target, "--radii", f"raw={K_PR},{K_DC}")}
    plain = compute_metrics(source, target, metrics="fid,pr,dc", normalize="both")
    used = compute_metrics(source, target, metrics="fid,pr,dc", normalize="both", **files)
    assert used["raw"] == plain["raw"] and used["l2"] == plain["l2"]
    partly = "target radii from statistics files, source radii from the caches"
    assert used["statistics_from"]["raw"] == {"fid": FROM_STATISTICS, "pr": partly,
                                              "dc": FROM_STATISTICS}  # fmt: skip
    assert set(used["statistics_from"]["l2"].values()) == {FROM_CACHES}
    # N <= D: the exact feature-space form, from the caches, even with statistics files
    small_source, small_target = make_pair(tmp_path / "small", 20, 18, dim=32)
    files = {"source_statistics": make_statistics(small_source),
             "target_statistics": make_statistics(small_target)}  # fmt: skip
    plain = compute_metrics(small_source, small_target, metrics="fid", normalize="none")
    used = compute_metrics(small_source, small_target, metrics="fid", normalize="none", **files)
    assert used["raw"] == plain["raw"]
    assert used["statistics_from"]["raw"]["fid"] == FROM_CACHES_N_LE_D


def test_statistics_of_another_cache_are_refused_naming_both_files(tmp_path):
    source, target = make_pair(tmp_path)
    other_source, _ = make_pair(tmp_path / "other", seed=1)
    wrong = make_statistics(other_source)
    with pytest.raises(ValueError, match=f"statistics {wrong} do not belong to the cache "
                       f"{source}: cache sha256"):  # fmt: skip
        compute_metrics(source, target, metrics="fid", source_statistics=wrong,
                        target_statistics=make_statistics(target))  # fmt: skip
    with pytest.raises(ValueError, match="150 x 12 rows x values, the cache has 130 x 12"):
        compute_metrics(source, target, metrics="fid,kid", target_statistics=make_statistics(
            source))  # fmt: skip
    # another tool's cache (no stored sha256): the content's digest stands in
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["features"] = np.random.default_rng(3).standard_normal((40, 12), np.float32)
    stats = make_statistics(foreign)
    assert read_statistics(stats).attrs["cache_sha256"] != "not recorded"
    assert compute_metrics(source, foreign, metrics="fid", target_statistics=stats)["raw"]
    with h5py.File(foreign, "r+") as handle:
        handle["features"][0, 0] += 1.0
    with pytest.raises(ValueError, match="do not belong.*cache sha256"):
        compute_metrics(source, foreign, metrics="fid", target_statistics=stats)


def test_imported_style_statistics_still_write_and_read(tmp_path):
    """DatasetStatistics built from a mean and covariance only (fidlens.stats_io)."""
    from fidlens.statistics import DatasetStatistics

    stats = DatasetStatistics(mean=np.zeros(3), covariance=np.eye(3), n=0, layer="pool",
                              attrs={"provenance": "unknown"})  # fmt: skip
    write_statistics(tmp_path / "s.h5", stats)
    back = read_statistics(tmp_path / "s.h5")
    np.testing.assert_array_equal(back.covariance, np.eye(3))
    assert set(back.blocks) == {"raw"} and back.attrs["provenance"] == "unknown"


@pytest.mark.parametrize("with_radii", [False, True])
def test_fid_statistics_import_no_torch(tmp_path, with_radii):
    """dataset_statistics.py with only FID statistics imports neither torch nor pandas."""
    source, _ = make_pair(tmp_path)
    flags = ["--radii", "raw=3"] if with_radii else []
    argv = [str(SCRIPTS / "dataset_statistics.py"), "--cache", str(source), *flags,
            "--threads", "1", "--out", str(tmp_path / "s.h5")]  # fmt: skip
    assert heavy_modules_after_run(argv) == ("['torch']" if with_radii else "[]")


def test_resources_grow_with_the_l2_block_and_the_radii():
    from fidlens import resources

    n, dim = 50_000, 2048
    plain = resources.statistics_mem_mb(n, dim)
    assert resources.statistics_mem_mb(n, dim, l2=True) - plain == pytest.approx(
        1.25 * 16 * n * dim / 2**20, abs=100)  # fmt: skip (rounded to 100 MB)
    assert resources.statistics_mem_mb(n, dim, radii=True) > plain
    assert resources.statistics_mem_mb(n, dim, attempt=2) >= 2 * plain - 1
    moments = resources.statistics_runtime_min(n, dim, 2)
    both = resources.statistics_runtime_min(n, dim, 2, moment_blocks=2, radii_blocks=2)
    assert both > moments + 5  # the n^2 D within-set pairs of two blocks, at this n
    assert resources.statistics_runtime_min(50, 16, 2, radii_blocks=2) <= 11
