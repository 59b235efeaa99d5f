"""The Snakemake workflow end to end, on tiny datasets: config errors, outputs, and reruns.

Snakemake runs as a subprocess on the repository's Snakefile with a temporary working
directory holding the test's config.yaml and images (the way a user points the workflow at
their own data), with .venv/bin first on PATH so rules find the project's `python`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from fidlens.cache import read_features

REPO = Path(__file__).resolve().parents[1]
# The project's .venv/bin (as `make test` uses), else the interpreter running the tests.
BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").is_dir() else Path(sys.executable).parent
N_IMAGES = 8  # density/coverage (k = 5) need at least 6 real images

pytestmark = pytest.mark.slow

BASE_CONFIG = {
    "demo": {"enabled": False},
    "datasets": {
        "real": {"path": "images/real"},
        "gen1": {"path": "images/gen1"},
        "gen2": {"path": "images/gen2.zip", "resolution": 48},
    },
    "extractors": {"inception": {"weights": "random", "batch_size": N_IMAGES, "threads": 1}},
    "comparisons": [
        {"source": "gen1", "target": "real"},
        {"source": "gen2", "target": "real"},
    ],
    "metrics": {"names": ["fid", "kid", "pr", "dc"], "kid_subsets": 5, "seed": 0},
}


def write_image(path: Path, seed: int, brightness: int) -> None:
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(brightness, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path)


def make_workdir(root: Path, config: dict) -> Path:
    images = root / "images"
    for index, (name, brightness) in enumerate((("real", 100), ("gen1", 130), ("gen2", 160))):
        folder = images / name
        folder.mkdir(parents=True)
        for i in range(N_IMAGES):
            write_image(folder / f"{i}.png", seed=100 * index + i, brightness=brightness)
    # gen2 is a zip, to cover both dataset kinds.
    shutil.make_archive(str(images / "gen2"), "zip", images / "gen2")
    shutil.rmtree(images / "gen2")
    write_config(root, config)
    return root


def write_config(root: Path, config: dict) -> None:
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # Hermetic: no user weights folder or torch cache is looked at.
        "FIDLENS_WEIGHTS_DIR": str(workdir / "no-weights"),
        "TORCH_HOME": str(workdir / "no-torch-home"),
    }
    command = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def run_ok(workdir: Path, *args: str) -> str:
    result = snakemake(workdir, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output + "\n" + read_logs(workdir)
    return output


def read_logs(workdir: Path) -> str:
    logs = sorted((workdir / "logs").rglob("*.log")) if (workdir / "logs").exists() else []
    return "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in logs)


def planned(workdir: Path) -> dict[str, list[str]]:
    """rule -> outputs of the jobs a dry run plans (rule `all` left out)."""
    output = run_ok(workdir, "--dry-run")
    jobs: dict[str, list[str]] = {}
    job_block = re.compile(r"^(?:local)?rule (\w+):\n(?:\s+.*\n)*?\s+output: (.*)$", re.M)
    for rule, outputs in job_block.findall(output):
        jobs.setdefault(rule, []).extend(outputs.split(", "))
    return jobs


def mtimes(workdir: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in workdir.glob(pattern)}


def config_error(tmp_path: Path, config: dict) -> str:
    make_workdir(tmp_path, config)
    return planning_error(tmp_path)


def planning_error(workdir: Path) -> str:
    """The message of a dry run that must stop before any job."""
    result = snakemake(workdir, "--dry-run")
    assert result.returncode != 0
    assert not (workdir / "results").exists()  # stopped before any job
    return result.stdout + result.stderr


# ---------------------------------------------------------------- errors before any job


def test_unknown_key_is_named(tmp_path):
    config = {**BASE_CONFIG, "metrics": {**BASE_CONFIG["metrics"], "kid_subset": 10}}
    message = config_error(tmp_path, config)
    assert "Invalid configuration at metrics" in message
    assert "'kid_subset' was unexpected" in message


def test_wrong_type_is_named(tmp_path):
    config = {**BASE_CONFIG, "extractors": {"inception": {"batch_size": "fifty"}}}
    message = config_error(tmp_path, config)
    assert "extractors.inception.batch_size" in message
    assert "'fifty' is not of type 'integer'" in message


def test_dataset_name_with_double_underscore_is_rejected(tmp_path):
    config = {**BASE_CONFIG, "datasets": {**BASE_CONFIG["datasets"], "gen__x": {"path": "x"}}}
    message = config_error(tmp_path, config)
    assert "'gen__x' does not match" in message
    assert "never '__'" in message


def test_missing_dataset_path_names_dataset_and_path(tmp_path):
    datasets = {**BASE_CONFIG["datasets"], "real": {"path": "images/nowhere"}}
    message = config_error(tmp_path, {**BASE_CONFIG, "datasets": datasets})
    assert "datasets.real.path: images/nowhere does not exist" in message


def test_unknown_dataset_extractor_and_weights_file_are_all_listed(tmp_path):
    config = {
        **BASE_CONFIG,
        "extractors": {"inceptoin": {}, "inception": {"weights": "nowhere/inception.pth"}},
        "comparisons": [{"source": "gen3", "target": "real"}],
    }
    message = config_error(tmp_path, config)
    assert "comparisons[0].source: dataset 'gen3' is not configured" in message
    assert "extractors.inceptoin: no such extractor type 'inceptoin'" in message
    assert "extractors.inception.weights: file nowhere/inception.pth does not exist" in message


def test_auto_weights_without_the_file_is_an_error_unless_fallback(tmp_path):
    config = {key: value for key, value in BASE_CONFIG.items() if key != "extractors"}
    message = config_error(tmp_path, config)  # default: inception, weights auto, no fallback
    assert "extractors.inception.weights: auto found no official file" in message
    assert str(tmp_path / "no-weights" / "pt_inception-2015-12-05-6726825d.pth") in message
    assert "make weights" in message


# ---------------------------------------------------------------- planning


def test_dry_run_plans_every_stage_with_each_jobs_own_settings(tmp_path):
    make_workdir(tmp_path, BASE_CONFIG)
    output = run_ok(tmp_path, "--dry-run", "--printshellcmds")
    jobs = planned(tmp_path)
    assert {rule: len(outputs) for rule, outputs in jobs.items()} == {
        "manifest": 3,
        "extract_features": 3,
        "dataset_statistics": 3,  # once per compared set, read by every comparison
        "compute_metrics": 2,
        "make_tables": 2,  # one job, two outputs
    }
    assert "results/metrics/inception/gen2__real.json" in jobs["compute_metrics"]
    # Settings reach the scripts as flags; the per-dataset resolution only for gen2.
    extractions = [line for line in output.splitlines() if "extract_features.py" in line]
    gen2 = next(line for line in extractions if "--images images/gen2.zip" in line)
    assert "--resolution 48" in gen2 and "--weights random" in gen2
    assert f"--batch-size {N_IMAGES}" in gen2 and "--cpus 1" in gen2  # the cores it reserved
    real = next(line for line in extractions if "--images images/real " in line)
    assert "--resolution" not in real
    assert "--kid-subsets 5" in output and "--normalize both" in output


# ---------------------------------------------------------------- a full run, then reruns


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("workflow"), BASE_CONFIG)
    run_ok(workdir)
    return workdir


def test_full_run_writes_caches_metrics_and_tables(finished_run):
    workdir = finished_run
    for name in ("real", "gen1", "gen2"):
        manifest = (workdir / f"results/manifests/{name}.tsv").read_text().splitlines()
        assert manifest[0] == "path\tsize\tsha1" and len(manifest) == 1 + N_IMAGES
        cache = read_features(workdir / f"results/features/inception/{name}.h5")
        assert cache.features.shape == (N_IMAGES, 2048)
        assert np.isfinite(cache.features).all()
        assert cache.attrs["weights"] == "random-init"
        assert cache.attrs["dataset"] == name
    assert read_features(workdir / "results/features/inception/gen2.h5").attrs["resolution"] == 48

    for pair in ("gen1__real", "gen2__real"):
        document = json.loads((workdir / f"results/metrics/inception/{pair}.json").read_text())
        source = pair.split("__")[0]
        assert (document["source_name"], document["target_name"]) == (source, "real")
        assert document["n_source"] == document["n_target"] == N_IMAGES
        assert document["weights"] == "random-init" and document["extractor"] == "inception"
        for block in ("raw", "l2"):
            values = document[block]
            assert set(values) >= {"fid", "kid_mean", "precision", "recall", "density"}
            assert values["fid"] > 0 and 0 <= values["precision"] <= 1

    table = pd.read_csv(workdir / "results/tables/metrics.csv")
    assert list(table.columns[:9]) == [
        "extractor",
        "weights",
        "source",
        "target",
        "normalization",
        "metric",
        "value",
        "n_source",
        "n_target",
    ]
    assert set(table["source"]) == {"gen1", "gen2"} and set(table["target"]) == {"real"}
    assert set(table["normalization"]) == {"raw", "l2"}
    assert {"fid", "kid_mean", "precision", "recall", "density", "coverage"} <= set(table["metric"])
    assert (table["weights"] == "random-init").all()
    assert (table["n_source"] == N_IMAGES).all() and (table["n_target"] == N_IMAGES).all()
    fid = table.query("metric == 'fid' and normalization == 'raw'").set_index("source")["value"]
    assert fid["gen1"] > 0 and fid["gen2"] > 0

    markdown = (workdir / "results/tables/metrics.md").read_text()
    assert "inception (random-init)" in markdown
    assert "Warning: rows marked (random-init)" in markdown
    assert "| Extractor | Source | Target | N | FID | KID | P | R | D | C |" in markdown
    assert "KID×10³" in markdown


def test_reruns_touch_only_what_changed(finished_run):
    workdir = finished_run
    assert planned(workdir) == {}, "a finished run plans nothing"
    caches = mtimes(workdir, "results/features/inception/*.h5")

    # Modify one image of gen1 (a folder) and add one to gen2 (a zip): only their own
    # manifests, caches and metrics rerun, plus the tables; never the other datasets' caches.
    write_image(workdir / "images/gen1/0.png", seed=999, brightness=90)
    with_new = workdir / "images/gen2-new"
    shutil.unpack_archive(workdir / "images/gen2.zip", with_new)
    write_image(with_new / "extra.png", seed=1000, brightness=160)
    shutil.make_archive(str(workdir / "images/gen2"), "zip", with_new)
    shutil.rmtree(with_new)
    assert _sorted_jobs(planned(workdir)) == {
        "manifest": ["results/manifests/gen1.tsv", "results/manifests/gen2.tsv"],
        "extract_features": [
            "results/features/inception/gen1.h5",
            "results/features/inception/gen2.h5",
        ],
        "dataset_statistics": [
            "results/statistics/inception/gen1.h5",
            "results/statistics/inception/gen2.h5",
        ],
        "compute_metrics": [
            "results/metrics/inception/gen1__real.json",
            "results/metrics/inception/gen2__real.json",
        ],
        "make_tables": ["results/tables/metrics.csv", "results/tables/metrics.md"],
    }
    run_ok(workdir)
    after = mtimes(workdir, "results/features/inception/*.h5")
    real = "results/features/inception/real.h5"
    assert after[real] == caches[real]
    for changed in ("gen1", "gen2"):
        path = f"results/features/inception/{changed}.h5"
        assert after[path] > caches[path]
    gen2 = read_features(workdir / "results/features/inception/gen2.h5")
    assert gen2.features.shape[0] == N_IMAGES + 1
    assert planned(workdir) == {}

    # A metric setting reruns metrics and tables only, never an extraction.
    config = {**BASE_CONFIG, "metrics": {**BASE_CONFIG["metrics"], "seed": 1}}
    write_config(workdir, config)
    jobs = planned(workdir)
    assert set(jobs) == {"compute_metrics", "make_tables"}
    assert len(jobs["compute_metrics"]) == 2
    run_ok(workdir)
    assert mtimes(workdir, "results/features/inception/*.h5") == after
    assert planned(workdir) == {}

    # An extraction setting of one dataset reruns that dataset's cache only.
    datasets = {**BASE_CONFIG["datasets"], "gen1": {"path": "images/gen1", "resolution": 40}}
    write_config(workdir, {**config, "datasets": datasets})
    jobs = planned(workdir)
    assert jobs["extract_features"] == ["results/features/inception/gen1.h5"]
    assert "manifest" not in jobs
    assert jobs["compute_metrics"] == ["results/metrics/inception/gen1__real.json"]


def ran(output: str) -> list[str]:
    """Rules of the jobs a real run executed, in order."""
    return re.findall(r"^(?:local)?rule (\w+):$", output, re.M)


def test_extraction_follows_image_content_not_mtimes_or_other_files(tmp_path):
    """Manifests and extractions follow the images' content: a README, a .DS_Store or
    timestamps lost in a copy rerun nothing; a same-size rewrite of one image reruns that
    dataset only."""
    config = {
        **BASE_CONFIG,
        "datasets": {"real": {"path": "images/real"}, "gen1": {"path": "images/gen1"}},
        "comparisons": [{"source": "gen1", "target": "real"}],
        "metrics": {**BASE_CONFIG["metrics"], "names": ["fid"]},
    }
    for name, brightness in (("real", 100), ("gen1", 130)):
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i in range(N_IMAGES):  # BMP: a rewrite with other pixels keeps the file size
            rng = np.random.default_rng(10 * brightness + i)
            pixels = np.clip(rng.normal(brightness, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.bmp")
    write_config(tmp_path, config)
    run_ok(tmp_path)
    caches = mtimes(tmp_path, "results/features/inception/*.h5")

    (tmp_path / "images/real/README.md").write_text("how these were made")
    (tmp_path / "images/gen1/.DS_Store").write_bytes(b"\0\1")
    for image in (tmp_path / "images").rglob("*.bmp"):
        os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    assert planned(tmp_path) == {}
    output = run_ok(tmp_path)
    assert ran(output) == [], output
    assert mtimes(tmp_path, "results/features/inception/*.h5") == caches

    image = tmp_path / "images/gen1/3.bmp"
    size = image.stat().st_size
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    assert image.stat().st_size == size
    assert sorted(planned(tmp_path)) == [
        "compute_metrics", "dataset_statistics", "extract_features", "make_tables", "manifest"
    ]
    output = run_ok(tmp_path)
    assert ran(output).count("extract_features") == 1, output
    after = mtimes(tmp_path, "results/features/inception/*.h5")
    real = "results/features/inception/real.h5"
    assert after[real] == caches[real]
    gen1 = "results/features/inception/gen1.h5"
    assert after[gen1] > caches[gen1]


def _sorted_jobs(jobs: dict[str, list[str]]) -> dict[str, list[str]]:
    return {rule: sorted(outputs) for rule, outputs in jobs.items()}


def test_conda_environment_pins_match_pyproject():
    """envs/fidlens.yaml cannot be built here; at least its pins must be pyproject's."""
    import tomllib

    import yaml

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "fidlens.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip_section) == sorted(pyproject["project"]["dependencies"])
    python = next(item for item in env["dependencies"] if str(item).startswith("python="))
    assert python == "python=3.11"


def test_paths_with_spaces_quotes_and_shell_characters_run_end_to_end(tmp_path):
    """The checkout, the study folder, the dataset folders and so every result path may
    hold spaces, quotes, $, ;, #, parentheses and non-ASCII letters."""
    odd = "fid l'ens $HOME; #1 (é)"
    checkout = tmp_path / odd / "fidlens"
    for part in ("Snakefile", "rules", "schemas", "workflow_scripts", "envs"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, checkout / part)
        else:
            checkout.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, checkout / part)
    study = tmp_path / f"study {odd}"
    config = {
        **BASE_CONFIG,
        "datasets": {
            "real": {"path": f"images/real {odd}"},
            "gen1": {"path": f"images/gen \"x\" {odd}.zip"},
        },
        "comparisons": [{"source": "gen1", "target": "real"}],
        "metrics": {**BASE_CONFIG["metrics"], "names": ["fid", "kid"]},
    }
    for name, brightness in (("real", 100), ("gen1", 150)):
        folder = study / "images" / f"{name} {odd}"
        folder.mkdir(parents=True)
        for i in range(N_IMAGES):
            write_image(folder / f"é {i}.png", seed=brightness + i, brightness=brightness)
    zipped = study / "images" / f"gen \"x\" {odd}"
    shutil.make_archive(str(zipped), "zip", study / "images" / f"gen1 {odd}")
    write_config(study, config)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(BIN / "snakemake"), "--snakefile", str(checkout / "Snakefile"),
               "--directory", str(study), "--cores", "2"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr + read_logs(study)
    table = pd.read_csv(study / "results/tables/metrics.csv")
    assert set(table["source"]) == {"gen1"} and (table["n_target"] == N_IMAGES).all()
    assert read_features(study / "results/features/inception/real.h5").paths[0] == "é 0.png"


def test_comparison_too_small_for_a_metric_stops_before_any_job(tmp_path):
    make_workdir(tmp_path, BASE_CONFIG)
    tiny = tmp_path / "images" / "tiny"
    tiny.mkdir()
    for i in range(2):
        write_image(tiny / f"{i}.png", seed=500 + i, brightness=120)
    config = {
        **BASE_CONFIG,
        "datasets": {**BASE_CONFIG["datasets"], "tiny": {"path": "images/tiny"}},
        "comparisons": [*BASE_CONFIG["comparisons"], {"source": "tiny", "target": "real"}],
    }
    write_config(tmp_path, config)
    message = planning_error(tmp_path)
    assert "comparisons[2] (tiny -> real): pr needs at least 4 source" in message
    assert f"has 2 and {N_IMAGES}" in message and "metrics.names" in message
    assert "comparisons[0]" not in message


def test_dataset_problems_are_config_messages_not_tracebacks(tmp_path):
    make_workdir(tmp_path, BASE_CONFIG)
    (tmp_path / "images/real.tar.gz").write_bytes(b"\x1f\x8b" + b"\0" * 64)
    data = (tmp_path / "images/gen2.zip").read_bytes()
    (tmp_path / "images/cut.zip").write_bytes(data[: len(data) // 2])
    datasets = {
        **BASE_CONFIG["datasets"],
        "real": {"path": "images/real.tar.gz"},
        "gen2": {"path": "images/cut.zip"},
    }
    write_config(tmp_path, {**BASE_CONFIG, "datasets": datasets})
    message = planning_error(tmp_path)
    assert "Traceback" not in message and "Exception" not in message
    assert "datasets.real.path: images/real.tar.gz: expected a folder of images" in message
    assert "datasets.gen2.path: images/cut.zip: not a readable zip file" in message


def test_dangling_link_is_a_bad_image_when_skipping(tmp_path):
    make_workdir(tmp_path, BASE_CONFIG)
    (tmp_path / "images/gen1/moved.png").symlink_to(tmp_path / "elsewhere.png")
    message = planning_error(tmp_path)
    assert "datasets.gen1.path: 1 broken symbolic links" in message
    assert "moved.png" in message and "on_bad_image: skip" in message
    write_config(tmp_path, {**BASE_CONFIG, "on_bad_image": "skip"})
    assert "manifest" in planned(tmp_path)  # no error: the link is skipped and listed
