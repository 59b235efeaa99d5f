"""What jobs ask a cluster for (fidlens.resources), and how the workflow passes it on: memory
and run time that follow N and D, extraction CPUs that add up to the job's threads, GPUs
only for a CUDA device, TF32 only when asked, trivial steps as localrules."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
from test_workflow import REPO, make_workdir, snakemake

from fidlens import resources as r


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_extraction_cpus_add_up_to_what_the_job_reserved(cpus, device):
    workers, threads = r.split_extraction_cpus(cpus, device)
    assert threads >= 1 and workers >= 0
    if cpus == 1:
        assert (workers, threads) == (0, 1)  # decoding in the main process
    elif device == "cuda":
        assert (workers, threads) == (cpus - 1, 1)  # the GPU runs the network; cores decode
    else:
        assert threads == cpus and 1 <= workers <= cpus / 2  # the network is the work


def test_auto_device_counts_the_most_workers_either_device_would_start():
    assert r.max_workers(8, "cpu") == 2
    assert r.max_workers(8, "cuda:1") == 7
    assert r.max_workers(8, "auto") == 7


def test_metric_memory_follows_n_and_d():
    small = r.metrics_mem_mb(1000, 1000, 2048)
    seventy_k = r.metrics_mem_mb(70_000, 70_000, 2048)
    # The case: a 70k comparison needs about 6-7 GB, more than the old fixed 4 GB.
    assert 6_000 <= seventy_k <= 12_000
    assert small < 2_500
    # Linear in (n_source + n_target) x D beyond the fixed part.
    slope = r.metrics_mem_mb(40_000, 40_000, 2048) - r.metrics_mem_mb(20_000, 20_000, 2048)
    assert slope == pytest.approx(
        r.SAFETY * r.METRICS_BYTES_PER_VALUE * 40_000 * 2048 / r.MB, abs=200
    )
    assert r.metrics_mem_mb(20_000, 20_000, 512) < r.metrics_mem_mb(20_000, 20_000, 2048)
    assert r.metrics_mem_mb(5000, 5000, 2048, attempt=2) == pytest.approx(
        2 * r.metrics_mem_mb(5000, 5000, 2048), abs=100
    )
    assert all(v % 100 == 0 for v in (small, seventy_k))


def test_metric_runtime_grows_with_the_work_and_shrinks_with_threads():
    small = r.metrics_runtime_min(1000, 1000, 2048, threads=2)
    big = r.metrics_runtime_min(70_000, 70_000, 2048, threads=2)
    assert small == r.MIN_RUNTIME_MIN + 1 or small <= 15
    assert big > 30
    assert r.metrics_runtime_min(70_000, 70_000, 2048, threads=8) < big
    assert r.metrics_runtime_min(70_000, 70_000, 2048, threads=2, normalizations=1) < big
    assert r.metrics_runtime_min(70_000, 70_000, 2048, threads=2, attempt=3) == 3 * big


def test_extraction_memory_and_runtime():
    base = r.extraction_mem_mb(100, 50, workers=1)
    assert 1_000 < base < 4_000
    # 70k images: the assembled features add ~3 copies of N x 4096 float32.
    extra = r.extraction_mem_mb(70_000, 50, workers=1) - base
    assert extra == pytest.approx(r.SAFETY * 3 * 70_000 * 4096 * 4 / r.MB, rel=0.05)
    assert r.extraction_mem_mb(100, 200, 1) > r.extraction_mem_mb(100, 50, 1)  # bigger batch
    assert r.extraction_mem_mb(100, 50, 7) > r.extraction_mem_mb(100, 50, 1)  # more workers
    cpu = r.extraction_runtime_min(70_000, 4, "cpu")
    gpu = r.extraction_runtime_min(70_000, 4, "cuda")
    assert gpu < cpu and cpu > 60
    assert r.extraction_runtime_min(70_000, 8, "cpu") < cpu


def test_gpus_only_for_a_cuda_device():
    assert [r.gpus_for(d) for d in ("cuda", "cuda:3", "cpu", "auto")] == [1, 1, 0, 0]


def test_feature_shape_reads_n_and_d_and_names_a_missing_cache(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as handle:
        handle["features"] = np.zeros((7, 5), np.float32)
    assert r.feature_shape(path) == (7, 5)
    missing = tmp_path / "none.h5"
    with pytest.raises(FileNotFoundError) as error:
        r.feature_shape(missing)
    assert error.value.filename == str(missing)  # Snakemake sizes the job once it exists


# ---------------------------------------------------------------- the workflow's plan

CONFIG = {
    "demo": {"enabled": False},
    "device": "cuda",
    "allow_tf32": True,
    "datasets": {"real": {"path": "images/real"}, "gen1": {"path": "images/gen1"},
                 "gen2": {"path": "images/gen2.zip"}},
    "extractors": {"inception": {"weights": "random", "batch_size": 8, "threads": 5}},
    "comparisons": [{"source": "gen1", "target": "real"}],
}


def plan(workdir) -> dict[str, list[dict]]:
    """rule -> jobs (resources, threads, shell command) of a dry run."""
    result = snakemake(workdir, "--dry-run", "--printshellcmds", "--cores", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} )", result.stdout + result.stderr):
        rule = re.search(r"^(local)?rule (\w+):", block, re.M)
        if not rule:
            continue
        resources = dict(re.findall(r"(\w+)=([^,\n]+)", re.search(
            r"resources: (.*)", block).group(1))) if "resources:" in block else {}
        threads = re.search(r"threads: (\d+)", block)
        command = re.search(r"^Shell command: (.*)$", block, re.M)
        jobs.setdefault(rule.group(2), []).append({
            "local": bool(rule.group(1)), "resources": resources,
            "threads": int(threads.group(1)) if threads else 1,
            "command": command.group(1) if command else "",
        })
    return jobs


@pytest.mark.slow
def test_the_plan_asks_for_what_the_work_needs(tmp_path):
    workdir = make_workdir(tmp_path, CONFIG)
    jobs = plan(workdir)
    (extract,) = [j for j in jobs["extract_features"] if "images/gen1" in j["command"]]
    assert extract["threads"] == 5
    assert "--cpus 5" in extract["command"] and "--workers" not in extract["command"]
    assert "--allow-tf32" in extract["command"]
    assert extract["resources"]["gpu"] == "1"
    # 8 images, batch 8, device cuda: 4 decoding workers on 5 cores
    assert int(extract["resources"]["mem_mb"]) == r.extraction_mem_mb(8, 8, workers=4)
    assert int(extract["resources"]["runtime"]) == r.extraction_runtime_min(8, 5, "cuda")
    # Metrics are sized from the caches, which do not exist yet: Snakemake waits for them.
    (metrics,) = jobs["compute_metrics"]
    assert metrics["resources"]["mem_mb"] == "<TBD>"
    # Once the caches exist, their N x D decide.
    for name, rows in (("gen1", 8), ("real", 8)):
        path = workdir / "results" / "features" / "inception" / f"{name}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as handle:
            handle["features"] = np.zeros((rows * 1000, 2048), np.float32)
    (metrics,) = plan(workdir)["compute_metrics"]
    assert int(metrics["resources"]["mem_mb"]) == r.metrics_mem_mb(8000, 8000, 2048)
    assert int(metrics["resources"]["runtime"]) == r.metrics_runtime_min(8000, 8000, 2048, 2)


@pytest.mark.slow
def test_cpu_device_asks_for_no_gpu_and_tf32_is_off_by_default(tmp_path):
    config = {**CONFIG, "device": "cpu"}
    del config["allow_tf32"]
    workdir = make_workdir(tmp_path, config)
    for extract in plan(workdir)["extract_features"]:
        assert extract["resources"]["gpu"] == "0"
        assert "--allow-tf32" not in extract["command"] and "--device cpu" in extract["command"]
        assert int(extract["resources"]["mem_mb"]) == r.extraction_mem_mb(8, 8, workers=2)


@pytest.mark.slow
def test_profiles_are_valid(tmp_path):
    workdir = make_workdir(tmp_path, {**CONFIG, "device": "cpu"})
    for profile in ("workstation", "slurm"):
        result = snakemake(workdir, "--profile", str(REPO / "profiles" / profile), "--dry-run")
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Using profile" in output and "compute_metrics" in output
    # (That make_tables is a localrule, never submitted, is checked on SLURM: test_slurm.py.)
