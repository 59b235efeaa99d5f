"""workflow_scripts/compute_metrics.py on small HDF5 files written here."""

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_light_imports import heavy_modules_after_run

from fidlens import metrics
from fidlens.evaluate import compute_metrics

SCRIPT = Path(__file__).resolve().parents[1] / "workflow_scripts" / "compute_metrics.py"
ALL_KEYS = {"fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
PROVENANCE = {
    "n_source", "n_target", "feature_dim", "extractor", "feature_layer", "preprocess", "weights",
    "seed", "kid_subsets", "kid_subset_size", "metrics", "normalize", "package_versions",
    "source_path", "target_path", "source_name", "target_name",
    "source_weights_sha256", "target_weights_sha256", "source_weights_origin",
    "target_weights_origin", "allow_mixed",
}  # fmt: skip

spec = importlib.util.spec_from_file_location("compute_metrics_cli", SCRIPT)
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)


def write_h5(path, features, **attrs):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("features", data=features)
        for key, value in attrs.items():
            handle.attrs[key] = value
    return path


OURS = {
    "extractor": "inception",
    "feature_layer": "pool3",
    "preprocess": "pytorch-fid",
    "weights": "pretrained",
    "weights_sha256": "ab" * 32,
    "dataset": "faces",
}


@pytest.fixture
def caches(tmp_path):
    rng = np.random.default_rng(0)
    fake = (rng.standard_normal((120, 24)) + 0.2).astype(np.float32)
    real = rng.standard_normal((100, 24)).astype(np.float32)
    return (
        write_h5(tmp_path / "fake.h5", fake, **OURS | {"dataset": "gen"}),
        write_h5(tmp_path / "real.h5", real, **OURS),
    )


def run(*args):
    """The CLI in a fresh interpreter, as Snakemake runs it."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True
    )


def test_cli_writes_every_metric_and_provenance(caches, tmp_path):
    fake, real = caches
    out = tmp_path / "deep" / "dir" / "m.json"
    done = run(
        "--source", fake, "--target", real, "--out", out,
        "--kid-subsets", 10, "--kid-subset-size", 50,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1 and "fid=" in done.stderr and str(out) in done.stderr
    text = out.read_text()
    result = json.loads(text)
    assert text == json.dumps(result, indent=2, sort_keys=True) + "\n"
    assert set(result["raw"]) == set(result["l2"]) == ALL_KEYS
    assert PROVENANCE <= set(result)
    assert (result["n_source"], result["n_target"], result["feature_dim"]) == (120, 100, 24)
    assert (result["extractor"], result["weights"]) == ("inception", "pretrained")
    assert (result["source_name"], result["target_name"]) == ("gen", "faces")
    assert result["kid_subset_size"] == 50  # min(50, 120, 100)
    assert result["kid_method"] == "subsets" and result["kid_subsets"] == 10
    # The numbers are those of the maths on the stored arrays.
    with h5py.File(fake) as f, h5py.File(real) as r:
        x, y = f["features"][()], r["features"][()]
    assert result["raw"]["fid"] == metrics.fid_from_features(x, y)
    indices = metrics.kid_subset_indices(120, 100, 10, 50, seed=0)
    l2 = metrics.l2_normalize(x), metrics.l2_normalize(y)
    assert (result["l2"]["kid_mean"], result["l2"]["kid_std"]) == metrics.kid(*l2, indices)
    assert (result["raw"]["kid_mean"], result["raw"]["kid_std"]) == metrics.kid(x, y, indices)
    assert result["raw"]["kid_std"] > 0
    pr = metrics.precision_recall(x, y)
    assert (result["raw"]["precision"], result["raw"]["recall"]) == pr


def unbiased_mmd2(x, y):
    """KID's unbiased MMD^2 on all rows, written out in numpy: kernel (a.b / D + 1)^3,
    within-set sums without the diagonal over m (m - 1) and n (n - 1), cross sum over m n."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    dim, m, n = x.shape[1], len(x), len(y)
    k_xx, k_yy, k_xy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within += (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return within - 2 * k_xy.sum() / (m * n)


def test_small_sets_give_one_kid_estimate_on_the_whole_sets(tmp_path):
    # Neither set larger than the subset size (the demo: 50 images, subsets of 1000): every
    # subset would hold the whole sets, so their std (~1e-16) would mean nothing.
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 8)), rng.standard_normal((30, 8)) + 0.3
    fake, real = write_h5(tmp_path / "f.h5", x), write_h5(tmp_path / "r.h5", y)
    with pytest.warns(UserWarning, match="KID: neither set .* whole sets"):
        result = compute_metrics(fake, real, metrics="kid")
    assert result["raw"]["kid_std"] is None and result["l2"]["kid_std"] is None
    assert result["raw"]["kid_mean"] == pytest.approx(unbiased_mmd2(x, y), rel=1e-12)
    l2 = metrics.l2_normalize(x), metrics.l2_normalize(y)
    assert result["l2"]["kid_mean"] == pytest.approx(unbiased_mmd2(*l2), rel=1e-12)
    assert (result["kid_method"], result["kid_subsets"], result["kid_subset_size"]) == (
        "whole sets", 1, None,
    )  # fmt: skip
    # The job log says so, and the JSON holds null.
    out = tmp_path / "m.json"
    done = run("--source", fake, "--target", real, "--out", out, "--metrics", "fid,kid")
    assert done.returncode == 0, done.stderr
    assert "KID: neither set (40 source, 30 target samples)" in done.stderr
    assert '"kid_std": null' in out.read_text()
    assert json.loads(out.read_text())["raw"]["kid_mean"] == result["raw"]["kid_mean"]


def test_one_small_set_keeps_kid_subsets(tmp_path):
    # Only the target is no larger than the subset size: the source's subsets differ, the
    # estimates spread, and KID stays the mean and std over subsets, without a warning.
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((120, 8)), rng.standard_normal((100, 8)) + 0.3
    fake, real = write_h5(tmp_path / "f.h5", x), write_h5(tmp_path / "r.h5", y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_metrics(fake, real, metrics="kid", kid_subsets=20, kid_subset_size=110)
    indices = metrics.kid_subset_indices(120, 100, 20, 110, seed=0)
    assert (result["raw"]["kid_mean"], result["raw"]["kid_std"]) == metrics.kid(x, y, indices)
    assert result["raw"]["kid_std"] > 0
    assert (result["kid_method"], result["kid_subsets"], result["kid_subset_size"]) == (
        "subsets", 20, 100,
    )  # fmt: skip


def test_metric_subset_and_normalize_modes(caches, tmp_path, capsys):
    fake, real = caches
    out = tmp_path / "m.json"
    base = ["--source", str(fake), "--target", str(real), "--out", str(out)]
    assert cli.main([*base, "--metrics", "fid,pr", "--normalize", "none"]) == 0
    result = json.loads(out.read_text())
    assert set(result["raw"]) == {"fid", "precision", "recall"} and "l2" not in result
    assert cli.main([*base, "--metrics", "dc,kid", "--normalize", "l2", "--kid-subsets", "3"]) == 0
    result = json.loads(out.read_text())
    assert set(result["l2"]) == {"density", "coverage", "kid_mean", "kid_std"}
    assert "raw" not in result
    assert result["metrics"] == ["kid", "dc"]


def test_file_without_attributes_and_random_init(tmp_path, capsys):
    rng = np.random.default_rng(1)
    plain = write_h5(tmp_path / "plain.h5", rng.standard_normal((30, 8)))
    random = write_h5(
        tmp_path / "rand.h5", rng.standard_normal((30, 8)),
        extractor="inception", weights="random-init", weights_sha256="random-init",
    )  # fmt: skip
    result = compute_metrics(plain, plain, metrics="fid", source_name="mine")
    assert (result["weights"], result["extractor"]) == ("unknown", "unknown")
    assert (result["source_name"], result["target_name"]) == ("mine", "plain")
    result = compute_metrics(random, plain, metrics=["fid"], normalize="none")
    assert (result["weights"], result["extractor"]) == ("random-init", "inception")
    assert result["source_weights_sha256"] == "random-init"
    out = tmp_path / "r.json"
    assert cli.main(["--source", str(random), "--target", str(plain), "--out", str(out)]) == 0
    assert "random-init" in capsys.readouterr().err


def bad_case(tmp_path, name):
    rng = np.random.default_rng(2)
    good = write_h5(tmp_path / "good.h5", rng.standard_normal((20, 8)), extractor="inception")
    if name == "dimensions":
        return good, write_h5(tmp_path / "wide.h5", rng.standard_normal((20, 9))), "wide.h5"
    if name == "nan":
        values = rng.standard_normal((20, 8))
        values[[3, 4, 9], 2] = np.nan
        values[11, 0] = np.inf
        return write_h5(tmp_path / "nan.h5", values), good, "4 of 20 feature rows"
    if name == "one sample":
        return good, write_h5(tmp_path / "one.h5", rng.standard_normal((1, 8))), "one.h5"
    if name == "extractors":
        clip = write_h5(tmp_path / "clip.h5", rng.standard_normal((20, 8)), extractor="clip")
        return clip, good, "different extractors"
    if name == "no features":
        with h5py.File(tmp_path / "empty.h5", "w") as handle:
            handle.create_dataset("logits", data=np.zeros((3, 2)))
        return tmp_path / "empty.h5", good, "empty.h5"
    if name == "missing":
        return tmp_path / "absent.h5", good, "absent.h5"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name", ["dimensions", "nan", "one sample", "extractors", "no features", "missing"]
)
def test_bad_inputs_fail_with_a_message_naming_the_file(tmp_path, capsys, name):
    source, target, expected = bad_case(tmp_path, name)
    out = tmp_path / "m.json"
    code = cli.main(["--source", str(source), "--target", str(target), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert expected in err
    assert str(source) in err or str(target) in err


def test_bad_settings(caches, tmp_path):
    fake, real = caches
    with pytest.raises(ValueError, match="unknown metric name.*'is'"):
        compute_metrics(fake, real, metrics="fid,is")
    with pytest.raises(ValueError, match="normalize must be one of"):
        compute_metrics(fake, real, normalize="l1")
    done = run("--source", fake, "--target", real, "--out", tmp_path / "m.json", "--metrics", "fd")
    assert done.returncode != 0 and "unknown metric name(s) 'fd'" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- mixed settings


def _pair(tmp_path, source_attrs, target_attrs):
    rng = np.random.default_rng(3)
    return (
        write_h5(tmp_path / "gen.h5", rng.standard_normal((20, 8)), **source_attrs),
        write_h5(tmp_path / "real.h5", rng.standard_normal((20, 8)), **target_attrs),
    )


RANDOM_SEED_0 = OURS | {"weights": "random-init", "weights_sha256": "random-init",
                        "weights_origin": "random (seed 0)"}  # fmt: skip
MIXED_CASES = {
    "preprocessing": (
        OURS | {"preprocess": "clean"}, OURS,
        ["preprocess 'clean'", "preprocess 'pytorch-fid'"], "preprocess", "mixed",
    ),
    "weights files": (
        OURS | {"weights_sha256": "cd" * 32}, OURS,
        ["weights sha256 " + "cd" * 32, "weights sha256 " + "ab" * 32], "weights", "mixed",
    ),
    "random seeds": (
        RANDOM_SEED_0 | {"weights_origin": "random (seed 1)"}, RANDOM_SEED_0,
        ["random-init weights (seed 1)", "random-init weights (seed 0)"],
        "weights", "random-init",
    ),
    "random and pretrained": (
        RANDOM_SEED_0, OURS,
        ["random-init weights (seed 0)", "weights sha256 " + "ab" * 32],
        "weights", "random-init",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MIXED_CASES))
def test_mixed_settings_are_an_error_naming_both_files_and_settings(tmp_path, capsys, case):
    source_attrs, target_attrs, settings, key, allowed_value = MIXED_CASES[case]
    source, target = _pair(tmp_path, source_attrs, target_attrs)
    with pytest.raises(ValueError, match="different settings") as caught:
        compute_metrics(source, target, metrics="fid")
    message = str(caught.value)
    for part in (str(source), str(target), *settings, "--allow-mixed", "metrics.allow_mixed"):
        assert part in message
    out = tmp_path / "m.json"
    assert cli.main(["--source", str(source), "--target", str(target), "--out", str(out)]) == 1
    assert settings[0] in capsys.readouterr().err and not out.exists()

    # Asked for explicitly: computed, labelled, and both sides recorded.
    argv = ["--source", str(source), "--target", str(target), "--out", str(out), "--allow-mixed"]
    assert cli.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["allow_mixed"] is True and result[key] == allowed_value
    for side, attrs in (("source", source_attrs), ("target", target_attrs)):
        assert result[f"{side}_preprocess"] == attrs["preprocess"]
        assert result[f"{side}_weights_sha256"] == attrs["weights_sha256"]
    assert compute_metrics(source, target, metrics="fid", allow_mixed=True)["raw"]["fid"] > 0


def test_same_settings_and_unknown_settings_are_not_mixed(tmp_path):
    # The fallback's random init uses seed 0, like "random": the same weights.
    fallback = RANDOM_SEED_0 | {"weights_origin": "random (fallback: official file not found "
                                                  "in /a/x.pth, /b/x.pth)"}  # fmt: skip
    source, target = _pair(tmp_path, fallback, RANDOM_SEED_0)
    result = compute_metrics(source, target, metrics="fid")
    assert (result["weights"], result["preprocess"], result["allow_mixed"]) == (
        "random-init", "pytorch-fid", False)
    # Another tool's file records neither preprocessing nor weights: allowed, unknown.
    source, target = _pair(tmp_path, {}, OURS | {"preprocess": "clean"})
    result = compute_metrics(source, target, metrics="fid")
    assert result["source_preprocess"] == "unknown" and result["preprocess"] == "clean"
    assert result["weights"] == "unknown"


# ---------------------------------------------------------------- per-dataset statistics


def _statistics(cache, *flags):
    out = cache.with_suffix(".stats.h5")
    done = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "dataset_statistics.py"), "--cache", str(cache),
         *flags, "--out", str(out)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_cli_takes_statistics_files_with_the_same_numbers(caches, tmp_path):
    fake, real = caches  # another tool's files (no stored sha256): digests of their content
    flags = ["--moments", "raw,l2", "--radii", "raw=3,5", "--radii", "l2=3,5"]
    files = ["--source-statistics", _statistics(fake, *flags),
             "--target-statistics", _statistics(real, *flags)]  # fmt: skip
    outputs = []
    for extra in ([], files):
        out = tmp_path / f"m{len(extra)}.json"
        done = run("--source", fake, "--target", real, "--metrics", "fid,pr,dc", *extra,
                   "--threads", 1, "--out", out)  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(out.read_text()))
    plain, used = outputs
    assert used["raw"] == plain["raw"] and used["l2"] == plain["l2"]
    assert used["statistics_from"]["l2"] == dict.fromkeys(("fid", "pr", "dc"), "statistics files")
    assert used["target_statistics"] == str(files[3]) and plain["target_statistics"] is None
    # statistics of the other cache: an error naming both files
    done = run("--source", fake, "--target", real, "--metrics", "fid",
               "--target-statistics", files[1], "--out", tmp_path / "x.json")  # fmt: skip
    assert done.returncode == 1
    assert f"statistics {files[1]} do not belong to the cache {real}" in done.stderr


@pytest.mark.parametrize(
    ("metrics", "statistics", "expected"),
    [("fid", False, []), ("fid", True, []), ("fid,pr", False, ["torch"])],
)
def test_fid_alone_imports_neither_torch_nor_pandas(caches, tmp_path, metrics, statistics,
                                                    expected):  # fmt: skip
    fake, real = caches
    argv = [str(SCRIPT), "--source", str(fake), "--target", str(real), "--metrics", metrics,
            "--normalize", "none", "--threads", "1", "--out", str(tmp_path / "m.json")]
    if statistics:
        argv += ["--source-statistics", str(_statistics(fake)),
                 "--target-statistics", str(_statistics(real))]  # fmt: skip
    assert heavy_modules_after_run(argv) == str(expected)
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["statistics_from"]["raw"]["fid"] == (
        "statistics files" if statistics else "caches")
