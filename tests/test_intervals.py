"""Confidence intervals by subsampling (fidlens.metrics.intervals) and the paired differences.

- every resampled metric equals a direct computation on the same subsets (FID on both paths,
  KID, the four k-NN metrics with ties, duplicates, short neighbour lists and the direct
  fallback);
- simulation (issue #14): 50 independent pairs of sets of N = 200 from two fixed Gaussians in
  D = 16, 100 half-samples each: the fraction of 95 % intervals holding the mean of the 50
  point estimates lies in [0.85, 0.99] for FID, KID and precision; the paired interval of a
  difference is narrower than the unpaired one;
- compute_metrics.py --intervals, metric_differences.py, the tables and the workflow's plan.
"""

import importlib.util
import json
import re
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from fidlens import metrics, tables
from fidlens.differences import paired_differences, read_draws
from fidlens.evaluate import IntervalSettings
from fidlens.metric_specs import interval_subset_size
from fidlens.metrics import intervals as iv

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow_scripts"


@pytest.fixture
def one_thread():
    """Small problems: one torch thread (a busy 2-core machine makes two wait on each other)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def plans(n_x, n_y, resamples=12, fraction=0.5, seed=0):
    return (
        iv.subsample_plan(n_x, resamples, fraction, seed, "source:x"),
        iv.subsample_plan(n_y, resamples, fraction, seed, "target:y"),
    )


# ---------------------------------------------------------------- plans and interval maths


def test_plans_keep_whole_groups_of_a_fixed_size_and_follow_seed_and_stream():
    plan = iv.subsample_plan(203, 30, 0.5, seed=3, stream="target:ffhq")
    assert plan.groups == 64 and plan.resamples == 30
    assert plan.size == interval_subset_size(203, 0.5)  # what the workflow checks at parse time
    for row, chosen in zip(plan.members, plan.chosen, strict=True):
        assert len(np.unique(row)) == plan.size and np.all(np.diff(row) > 0)
        assert set(row) == set(np.flatnonzero(chosen[plan.group_of]))  # whole groups
    again = iv.subsample_plan(203, 30, 0.5, seed=3, stream="target:ffhq")
    assert np.array_equal(again.members, plan.members) and again.digest() == plan.digest()
    other = iv.subsample_plan(203, 30, 0.5, seed=3, stream="source:ffhq")
    assert not np.array_equal(other.members, plan.members)
    assert iv.subsample_plan(203, 30, 0.5, seed=4, stream="target:ffhq").digest() != plan.digest()
    # Every row is kept by about half of the resamples.
    kept = plan.mask().mean(axis=0)
    assert 0.2 < kept.min() and kept.max() < 0.8
    small = iv.subsample_plan(50, 5, 0.5)
    assert small.groups == 50 and small.size == 25  # rows are their own groups
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            iv.subsample_plan(50, 5, bad)
    with pytest.raises(ValueError, match="at least 2 rows"):
        iv.subsample_plan(1, 5)


def test_basic_interval_is_centred_rescaled_clipped_and_widened():
    rng = np.random.default_rng(0)
    draws = rng.normal(3.0, 0.5, 400)
    lo, hi = iv.subsample_interval(10.0, draws, 1.0, 0.9)
    q_lo, q_hi = np.quantile(draws, [0.05, 0.95])
    assert (lo, hi) == pytest.approx((10.0 - (q_hi - draws.mean()), 10.0 - (q_lo - draws.mean())))
    # Centred on the draws' own mean: a shifted subsample distribution (FID's bias at the
    # smaller size) moves nothing; the spread is scaled by c.
    assert iv.subsample_interval(10.0, draws + 7.0, 1.0, 0.9) == pytest.approx((lo, hi))
    wide = iv.subsample_interval(10.0, draws, 2.0, 0.9)
    assert wide == pytest.approx((10.0 - 2 * (10.0 - lo), 10.0 + 2 * (hi - 10.0)))
    assert iv.interval_scale(0.5, 0.5) == 1.0 and iv.interval_scale(0.2) == pytest.approx(0.5)
    assert iv.subsample_interval(0.01, draws, 1.0, 0.9, bounds=(0.0, 1.0))[0] == 0.0
    # KID's subsets add kid_std^2 / subsets: both sides widen by sqrt(1 + extra / var).
    extra = draws.var()
    widened = iv.subsample_interval(10.0, draws, 1.0, 0.9, extra_variance=extra)
    assert widened == pytest.approx((10 - np.sqrt(2) * (10 - lo), 10 + np.sqrt(2) * (hi - 10)))
    assert iv.kid_extra_variance(0.02, 100) == pytest.approx(4e-6)
    assert iv.kid_extra_variance(None, 1) == 0.0


# ---------------------------------------------------------------- equal to direct computations


def test_fid_resamples_equal_fid_of_the_subsets_on_both_paths(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((150, 6)) * 1.2 + 0.3, rng.standard_normal((130, 6))
    px, py = plans(150, 130)
    direct = [metrics.fid_from_features(x[px.members[r]], y[py.members[r]]) for r in range(12)]
    np.testing.assert_allclose(iv.fid_resamples(x, y, px, py), direct, rtol=1e-10)
    # Without the cache of per-group products (recomputed per chunk of 5 resamples).
    monkeypatch.setattr(iv, "GRAM_CACHE_BYTES", 0)
    monkeypatch.setattr(iv, "GRAM_CHUNK_BYTES", 5 * 2 * 8 * 21)
    np.testing.assert_allclose(iv.fid_resamples(x, y, px, py), direct, rtol=1e-10)
    # Subsets with fewer rows than D + 1: feature space, singular covariances.
    x, y = rng.standard_normal((40, 50)) + 0.1, rng.standard_normal((30, 50))
    px, py = plans(40, 30)
    direct = [metrics.fid_from_features(x[px.members[r]], y[py.members[r]]) for r in range(12)]
    np.testing.assert_allclose(iv.fid_resamples(x, y, px, py), direct, rtol=1e-12)


def test_kid_resamples_equal_unbiased_mmd_of_the_subsets():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((90, 7)) + 0.2, rng.standard_normal((70, 7))
    px, py = plans(90, 70)
    direct = [metrics.kid_whole_sets(x[px.members[r]], y[py.members[r]]) for r in range(12)]
    got = iv.kid_resamples(x, y, px, py, block=32)  # blocks smaller than the sets
    np.testing.assert_allclose(got, direct, rtol=1e-10, atol=1e-14)


def knn_reference(fake, real, px, py):
    rows = [metrics.manifold_metrics(fake[px.members[r]], real[py.members[r]])
            for r in range(px.resamples)]  # fmt: skip
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_knn_resamples_equal_direct_computation_with_ties_and_duplicates(one_thread):
    rng = np.random.default_rng(3)
    # Points on an integer grid (many equal distances) with duplicated rows in both sets.
    real = rng.integers(0, 4, (80, 3)).astype(np.float32)
    fake = (rng.integers(0, 4, (70, 3)) + (rng.random((70, 3)) < 0.1)).astype(np.float32)
    real[40:50], fake[30:40] = real[:10], real[10:20]
    px, py = plans(70, 80)
    expected = knn_reference(fake, real, px, py)
    got, info = iv.manifold_resamples(fake, real, px, py, block_size=32)
    assert info["list_misses"] == 0 and not info["direct"]
    for name, values in expected.items():
        assert got[name].tolist() == values, name
    # Lists too short for the subsets' k-th neighbours: the exact rows decide, same numbers.
    got, info = iv.manifold_resamples(fake, real, px, py, lengths=(3, 2), block_size=32)
    assert info["list_misses"] > 0
    for name, values in expected.items():
        assert got[name].tolist() == values, name
    # More candidate pairs than allowed: every resample computed directly, with a warning.
    with pytest.warns(UserWarning, match="computed directly"):
        got, info = iv.manifold_resamples(fake, real, px, py, max_pairs=10)
    assert info["direct"]
    for name, values in expected.items():
        assert got[name].tolist() == values, name


def test_knn_resamples_of_ordinary_features_and_subset_size_errors(one_thread):
    rng = np.random.default_rng(4)
    real = rng.standard_normal((120, 10)).astype(np.float32)
    fake = (rng.standard_normal((100, 10)) * 1.1 + 0.2).astype(np.float32)
    px, py = plans(100, 120)
    got, _ = iv.manifold_resamples(fake, real, px, py)
    for name, values in knn_reference(fake, real, px, py).items():
        assert got[name].tolist() == values, name
    px, py = plans(100, 10, fraction=0.5)  # 5 real points per subset: too few for k = 5
    with pytest.raises(ValueError, match="subsets of at least 6 real points"):
        iv.manifold_resamples(fake, real[:10], px, py)


# ---------------------------------------------------------------- simulation (issue #14)

N, D, RESAMPLES, PAIRS = 200, 16, 100, 50


def draw_pair(rng, shift=0.25, spread=1.15):
    source = (rng.standard_normal((N, D)) * spread + shift).astype(np.float32)
    target = rng.standard_normal((N, D)).astype(np.float32)
    return source, target


def test_simulated_intervals_cover_the_expected_value(one_thread):
    """Two fixed Gaussians (source N(0.25, 1.15^2 I), target N(0, I)), 50 independent pairs;
    the mean of the 50 point estimates stands for E[T_N] (sidestepping FID's bias)."""
    rng = np.random.default_rng(2026)
    estimates, intervals = {}, {}
    for pair in range(PAIRS):
        source, target = draw_pair(rng)
        px, py = plans(N, N, RESAMPLES, seed=pair)
        values = {"fid": metrics.fid_from_features(source, target),
                  "kid_mean": metrics.kid_whole_sets(source, target),
                  "precision": metrics.precision_recall(source, target)[0]}  # fmt: skip
        draws, _ = iv.resample_metrics(source, target, px, py, ("fid", "kid", "pr"), device="cpu")
        found = iv.metric_intervals(values, draws, iv.interval_scale(px.fraction, py.fraction))
        for name, value in values.items():
            estimates.setdefault(name, []).append(value)
            intervals.setdefault(name, []).append(found[f"{name}_ci"])
    for name in ("fid", "kid_mean", "precision"):
        mean = np.mean(estimates[name])
        low, high = np.array(intervals[name]).T
        covered = np.mean((low <= mean) & (mean <= high))
        assert 0.85 <= covered <= 0.99, (name, covered)
        # Not merely wide: on average within 1.5x the width of an exact normal interval.
        width = np.mean(high - low) / (2 * 1.96 * np.std(estimates[name], ddof=1))
        assert 0.7 < width < 1.5, (name, width)


def test_paired_difference_is_narrower_than_unpaired(one_thread):
    """Sources A and B relate to the target the same way (both shifted copies of one law):
    with the same target subsets in each resample the target's noise cancels."""
    rng = np.random.default_rng(7)
    a, target = draw_pair(rng)
    b, _ = draw_pair(rng, shift=0.3)
    plan_a, plan_t = plans(N, N, RESAMPLES)
    plan_b = iv.subsample_plan(N, RESAMPLES, 0.5, 0, "source:b")
    other_t = iv.subsample_plan(N, RESAMPLES, 0.5, 0, "target:elsewhere")
    which = ("fid", "kid", "pr")
    draws_a, _ = iv.resample_metrics(a, target, plan_a, plan_t, which, device="cpu")
    draws_b, _ = iv.resample_metrics(b, target, plan_b, plan_t, which, device="cpu")
    draws_u, _ = iv.resample_metrics(b, target, plan_b, other_t, which, device="cpu")
    values = {name: 0.0 for name in draws_a}
    paired = iv.difference_intervals(values, values, draws_a, draws_b, 1.0)
    unpaired = iv.difference_intervals(values, values, draws_a, draws_u, 1.0)
    for name in ("fid", "kid_mean", "precision", "recall"):
        paired_width = np.diff(paired[f"{name}_ci"])[0]
        unpaired_width = np.diff(unpaired[f"{name}_ci"])[0]
        assert paired_width < 0.9 * unpaired_width, (name, paired_width, unpaired_width)


# ---------------------------------------------------------------- scripts, tables, workflow


def write_cache(path, features, dataset):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("features", data=features)
        handle.attrs.update(extractor="inception", preprocess="clean", weights="pretrained",
                            weights_sha256="ab" * 32, dataset=dataset)  # fmt: skip
    return path


def run(script, *args):
    """A workflow script's main() in this process (each is argparse -> one library call;
    test_compute_metrics_cli.py runs compute_metrics.py in a fresh interpreter)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), SCRIPTS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KID on whole sets at this size
        return module.main([str(arg) for arg in args])


def test_cli_writes_intervals_and_draws_and_the_paired_differences(tmp_path):
    rng = np.random.default_rng(5)
    target = write_cache(tmp_path / "real.h5", rng.standard_normal((60, 8)).astype(np.float32),
                         "real")  # fmt: skip
    outputs = {}
    for name, shift in (("gen_a", 0.2), ("gen_b", 0.6)):
        features = (rng.standard_normal((50, 8)) + shift).astype(np.float32)
        source = write_cache(tmp_path / f"{name}.h5", features, name)
        out, draws = tmp_path / f"{name}.json", tmp_path / f"{name}.csv"
        code = run("compute_metrics.py", "--source", source, "--target", target, "--out", out,
                   "--intervals", "--interval-resamples", 30, "--draws", draws,
                   "--device", "cpu")  # fmt: skip
        assert code == 0
        outputs[name] = (json.loads(out.read_text()), draws)
    doc, draws_file = outputs["gen_a"]
    for block in ("raw", "l2"):
        for name in ("fid", "kid_mean", "precision", "recall", "density", "coverage"):
            low, high = doc[block][f"{name}_ci"]
            assert low <= high and np.isfinite([low, high]).all()
        assert "kid_std_ci" not in doc[block]
    assert doc["interval_resamples"] == 30 and doc["interval_level"] == 0.95
    assert doc["interval_subset_size"] == [25, 30] and doc["interval_seed"] == 0
    assert doc["interval_method"] == iv.INTERVAL_METHOD
    assert "interval_draws" not in doc and doc["interval_draws_file"] == str(draws_file)
    # The draws are exactly the library's on the same subsets (read back from the CSV).
    with h5py.File(tmp_path / "gen_a.h5") as f, h5py.File(target) as r:
        x, y = f["features"][()], r["features"][()]
    settings = IntervalSettings(resamples=30)
    px, py = settings.plan(50, "source", "gen_a"), settings.plan(60, "target", "real")
    assert doc["interval_target_plan"] == py.digest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, _ = iv.resample_metrics(x, y, px, py, device="cpu")
    read = read_draws(draws_file)
    for name, values in expected.items():
        assert read["raw"][name].tolist() == values.tolist(), name
    # Both comparisons subsampled the target the same way: their difference pairs up.
    assert outputs["gen_b"][0]["interval_target_plan"] == doc["interval_target_plan"]
    code = run("metric_differences.py", "--metrics", tmp_path / "gen_a.json",
               tmp_path / "gen_b.json", "--draws", tmp_path / "gen_a.csv",
               tmp_path / "gen_b.csv", "--json", tmp_path / "d.json", "--csv", tmp_path / "d.csv")
    assert code == 0  # fmt: skip
    difference = json.loads((tmp_path / "d.json").read_text())
    (pair,) = difference["differences"]
    assert (pair["source_a"], pair["source_b"]) == ("gen_a", "gen_b")
    doc_b = outputs["gen_b"][0]
    assert pair["raw"]["fid"] == doc["raw"]["fid"] - doc_b["raw"]["fid"]
    low, high = pair["raw"]["fid_ci"]
    assert high < 0  # gen_a is clearly closer to the target than gen_b
    table = pd.read_csv(tmp_path / "d.csv")
    assert len(table) == 2 * 6 and set(table["metric"]) >= {"fid", "kid_mean", "coverage"}
    row = table.query("metric == 'fid' and normalization == 'raw'").iloc[0]
    assert (row["ci_low"], row["ci_high"], bool(row["excludes_zero"])) == (low, high, True)


def test_differences_refuse_comparisons_subsampled_differently(tmp_path):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    docs, draws = [], []
    for seed in (0, 1):
        px, py = plans(30, 30, 5, seed=seed)
        found, _ = iv.resample_metrics(x, y, px, py, ("fid",), device="cpu")
        docs.append({"source_name": f"s{seed}", "target_name": "t", "extractor": "e",
                     "n_source": 30, "n_target": 30, "raw": {"fid": 1.0},
                     "interval_resamples": 5, "interval_level": 0.95, "interval_seed": seed,
                     "interval_target_plan": py.digest(), "interval_fractions": [0.5, 0.5],
                     "interval_subset_size": [15, 15], "interval_method": "m"})  # fmt: skip
        draws.append({"raw": found})
    with pytest.raises(ValueError, match=r"b.json and a.json cannot be paired.*interval_seed"):
        paired_differences(docs, draws, ["a.json", "b.json"])
    docs[1]["interval_seed"] = 0
    docs[1]["interval_target_plan"] = docs[0]["interval_target_plan"]
    found, _ = paired_differences(docs, draws, ["a.json", "b.json"])
    assert found["differences"][0]["raw"]["fid"] == 0.0
    with pytest.raises(ValueError, match="no intervals"):
        paired_differences([{}, {}], [{}, {}], ["a.json", "b.json"])


def test_tables_carry_the_intervals():
    doc = {
        "source_name": "gen", "target_name": "real", "extractor": "inception",
        "weights": "pretrained", "n_source": 50, "n_target": 50,
        "interval_level": 0.95, "interval_resamples": 200, "interval_seed": 0,
        "interval_method": iv.INTERVAL_METHOD, "interval_subset_size": [25, 25],
        "raw": {"fid": 12.5, "fid_ci": [10.0, 15.25], "kid_mean": 0.01, "kid_std": None,
                "kid_mean_ci": [0.005, 0.02]},
        "l2": {"fid": 0.0425, "fid_ci": [0.04, 0.045]},
    }  # fmt: skip
    long = tables.long_table(tables.metric_rows(doc, "m.json"))
    fid = long.query("metric == 'fid' and normalization == 'raw'").iloc[0]
    assert (fid["value"], fid["ci_low"], fid["ci_high"]) == (12.5, 10.0, 15.25)
    assert fid["interval_subset_size"] == "25/25" and fid["interval_resamples"] == 200
    assert long.query("metric == 'kid_std'")["ci_low"].isna().all()
    assert not long["metric"].str.endswith("_ci").any()
    text = tables.markdown_report(long)
    row = "| inception | gen | real | 50/50 | 12.50 [10.00, 15.25] | 0.0100 [0.00500, 0.0200] |"
    assert row in text
    assert "| 42.50 [40.00, 45.00] |" in text  # x 1000 in Table 2
    assert "95 % confidence interval" in text


@pytest.mark.slow
def test_workflow_plans_intervals_differences_and_checks_subset_sizes(tmp_path):
    from test_workflow import BASE_CONFIG, make_workdir, planning_error, run_ok

    intervals = {"enabled": True, "resamples": 20, "subset_fraction": 0.5}
    config = {**BASE_CONFIG, "metrics": {**BASE_CONFIG["metrics"], "names": ["fid", "kid", "pr"],
                                         "intervals": intervals}}  # fmt: skip
    make_workdir(tmp_path, config)
    output = run_ok(tmp_path, "--dry-run", "--printshellcmds")
    jobs: dict[str, list[str]] = {}  # rule -> outputs, as test_workflow.planned reads them
    job_block = re.compile(r"^(?:local)?rule (\w+):\n(?:\s+.*\n)*?\s+output: (.*)$", re.M)
    for rule, outputs in job_block.findall(output):
        jobs.setdefault(rule, []).extend(outputs.split(", "))
    assert sorted(jobs["compute_metrics"]) == [
        "results/metrics/inception/gen1__real.draws.csv",
        "results/metrics/inception/gen1__real.json",
        "results/metrics/inception/gen2__real.draws.csv",
        "results/metrics/inception/gen2__real.json",
    ]
    assert sorted(jobs["metric_differences"]) == [
        "results/metrics/differences/inception/real.csv",
        "results/metrics/differences/inception/real.json",
    ]
    assert "--intervals --interval-resamples 20 --interval-level 0.95 --interval-seed 0" in output
    assert "--draws results/metrics/inception/gen1__real.draws.csv" in output
    assert ("--draws results/metrics/inception/gen1__real.draws.csv "
            "results/metrics/inception/gen2__real.draws.csv") in output  # fmt: skip
    # Subsets of 4 of the 8 images are too few for density/coverage (k = 5): stopped at parse.
    config["metrics"]["names"] = ["fid", "dc"]
    make_workdir(tmp_path / "small", config)
    message = planning_error(tmp_path / "small")
    assert "metrics.intervals.subset_fraction: comparisons[0] (gen1 -> real)" in message
    assert "keeps 4 and 4" in message
