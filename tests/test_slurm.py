"""The workflow on a real single-node SLURM cluster (tests/slurm_cluster.sh), with
`--profile profiles/slurm`: jobs go through sbatch, their outputs equal a local run's, and
a failing job is reported with its SLURM log and resumed after the cause is removed.

`make test-slurm` installs Debian's slurmctld, slurmd, slurm-client and munge if missing and
runs these tests; `make test` leaves them out (marker `slurm`). Without the packages they
fail, never skip. The cluster lives in a temporary folder and its daemons are stopped by
their pid files when the module ends, whether its tests passed or not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from test_workflow import BIN, N_IMAGES, REPO, make_workdir, read_logs

from fidlens import resources
from fidlens.cache import read_features

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = REPO / "tests" / "slurm_cluster.sh"
PROFILE = REPO / "profiles" / "slurm"
NEEDED = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")

# A small study: three tiny datasets (one a zip), one extractor with random weights.
CONFIG = {
    "demo": {"enabled": False},
    "device": "cpu",
    "datasets": {
        "real": {"path": "images/real"},
        "gen1": {"path": "images/gen1"},
        "gen2": {"path": "images/gen2.zip", "resolution": 48},
    },
    "extractors": {"inception": {"weights": "random", "batch_size": N_IMAGES, "threads": 1}},
    "comparisons": [{"source": "gen1", "target": "real"}, {"source": "gen2", "target": "real"}],
    "metrics": {"names": ["fid", "kid", "pr", "dc"], "kid_subsets": 5, "kid_subset_size": 4},
}
SUBMITTED = re.compile(
    r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$", re.M
)


@dataclass
class Cluster:
    root: Path
    env: dict

    def scontrol(self, jobid: str) -> dict[str, str]:
        """`scontrol show job` as key -> value (finished jobs stay visible: MinJobAge=300)."""
        out = subprocess.run(["scontrol", "show", "job", "-o", jobid], env=self.env,
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return dict(re.findall(r"(\w[\w:/]*)=(\S*)", out))


def _tool_missing(name: str) -> bool:
    return shutil.which(name) is None and not Path("/usr/sbin", name).exists()


@pytest.fixture(scope="module")
def cluster():
    missing = [name for name in NEEDED if _tool_missing(name)]
    if missing:
        pytest.fail(
            f"SLURM tools missing: {', '.join(missing)}. `make test-slurm` installs Debian's "
            "slurmctld slurmd slurm-client munge and runs these tests."
        )
    # munged wants every folder above its socket open to all (pytest's tmp folders are 700).
    root = Path(tempfile.mkdtemp(prefix="fidlens-slurm-"))
    root.chmod(0o755)
    started = subprocess.run(["bash", str(CLUSTER), "start", str(root)], capture_output=True,
                             text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    env = {
        **os.environ,
        "SLURM_CONF": str(root / "slurm.conf"),
        # The srun wrapper first (it restores SLURM_CONF for the jobstep's srun), then .venv.
        "PATH": os.pathsep.join([str(root / "bin"), str(BIN), os.environ.get("PATH", "")]),
    }
    try:
        yield Cluster(root, env)
    finally:
        stopped = subprocess.run(["bash", str(CLUSTER), "stop", str(root)],
                                 capture_output=True, text=True, timeout=120)
        print(stopped.stdout + stopped.stderr)
        for name in ("slurmctld", "slurmd", "munged"):
            assert not (root / "run" / f"{name}.pid").exists(), stopped.stderr
        shutil.rmtree(root, ignore_errors=True)


def snakemake(cluster: Cluster | None, workdir: Path, *args: str, timeout: int = 900):
    """Snakemake on the repository's Snakefile: through SLURM with the profile when
    `cluster` is given, else locally. A run past `timeout` gets SIGINT (Snakemake ignores
    SIGTERM while it waits for SLURM), then SIGKILL."""
    env = dict(cluster.env) if cluster else {
        **os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    }
    env.update(FIDLENS_WEIGHTS_DIR=str(workdir / "no-weights"),
               TORCH_HOME=str(workdir / "no-torch-home"))
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir)]
    if cluster:
        command += [
            "--profile", str(PROFILE),
            # No accounting on this cluster: squeue, not sacct (which would hang the run).
            "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "2",
            "--jobs", "4",
        ]
    else:
        command += ["--cores", "2"]
    process = subprocess.Popen([*command, *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"snakemake ran past {timeout} s:\n{output[-5000:]}")
    return process.returncode, output


def submitted(output: str) -> dict[str, str]:
    """SLURM job id -> its log file (relative to the working directory), from Snakemake's
    output."""
    return dict(SUBMITTED.findall(output))


def rule_of(log: str) -> str:
    # .snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log
    return re.search(r"rule_(\w+)", log).group(1)


def test_slurm_run_goes_through_slurm_and_equals_a_local_run(cluster, tmp_path):
    on_slurm = make_workdir(tmp_path / "slurm", CONFIG)
    local = make_workdir(tmp_path / "local", CONFIG)

    code, output = snakemake(cluster, on_slurm)
    assert code == 0, output[-8000:] + read_logs(on_slurm)
    jobs = submitted(output)
    rules = sorted(rule_of(log) for log in jobs.values())
    assert rules == sorted(["manifest"] * 3 + ["extract_features"] * 3
                           + ["dataset_statistics"] * 3 + ["compute_metrics"] * 2), output[-5000:]
    assert "make_tables" not in rules  # a localrule: never submitted
    for jobid, log in jobs.items():
        info = cluster.scontrol(jobid)
        assert info["JobState"] == "COMPLETED", info
        assert (on_slurm / log).is_file()  # the profile keeps successful jobs' logs
        # What the job asked SLURM for is what fidlens.resources computed for its work.
        if rule_of(log) == "compute_metrics":
            assert info["NumCPUs"] == "2"
            mem = resources.metrics_mem_mb(N_IMAGES, N_IMAGES, 2048)
            assert info["MinMemoryNode"] == f"{mem}M"
            minutes = resources.metrics_runtime_min(N_IMAGES, N_IMAGES, 2048, 2, 5, 4)
            assert info["TimeLimit"] == f"00:{minutes:02d}:00"
        if rule_of(log) == "extract_features":
            assert info["NumCPUs"] == "1"
            mem = resources.extraction_mem_mb(N_IMAGES, N_IMAGES, workers=0)
            assert info["MinMemoryNode"] == f"{mem}M"

    code, local_output = snakemake(None, local)
    assert code == 0, local_output[-8000:] + read_logs(local)

    for name in CONFIG["datasets"]:
        ours = read_features(on_slurm / "results" / "features" / "inception" / f"{name}.h5")
        theirs = read_features(local / "results" / "features" / "inception" / f"{name}.h5")
        np.testing.assert_array_equal(ours.features, theirs.features)
        assert ours.paths == theirs.paths and ours.sha1 == theirs.sha1
        assert ours.attrs["cpu_threads"] == theirs.attrs["cpu_threads"] == 1
    for pair in CONFIG["comparisons"]:
        name = f"{pair['source']}__{pair['target']}.json"
        ours = json.loads((on_slurm / "results" / "metrics" / "inception" / name).read_text())
        theirs = json.loads((local / "results" / "metrics" / "inception" / name).read_text())
        assert ours["raw"] == theirs["raw"] and ours["l2"] == theirs["l2"]
    assert (on_slurm / "results" / "tables" / "metrics.md").read_text() == (
        local / "results" / "tables" / "metrics.md"
    ).read_text()


def test_failed_job_is_reported_with_its_slurm_log_and_a_rerun_resumes(cluster, tmp_path):
    workdir = make_workdir(tmp_path, CONFIG)
    bad = workdir / "images" / "gen1" / "9_truncated.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")  # an image name that won't decode

    code, output = snakemake(cluster, workdir)
    (tmp_path / "first-run.txt").write_text(output)
    assert code != 0, output[-5000:]
    assert "Error in rule extract_features" in output, output[-5000:]
    jobs = submitted(output)
    failed = [(jobid, log) for jobid, log in jobs.items()
              if "rule_extract_features/inception_gen1/" in log]
    assert len(failed) == 1, jobs
    jobid, slurm_log = failed[0]
    assert cluster.scontrol(jobid)["JobState"] == "FAILED"
    # Snakemake names the SLURM log of the failed job, and the log holds the cause.
    assert re.search(rf"{re.escape(slurm_log)}", output.split("Error in rule")[1])
    assert (workdir / slurm_log).is_file()
    job_log = workdir / "logs" / "features" / "inception" / "gen1.log"
    assert "9_truncated.png" in job_log.read_text()
    # keep-going: the comparison that does not need gen1 finished.
    done = workdir / "results" / "metrics" / "inception" / "gen2__real.json"
    assert done.is_file()
    kept = {p: p.stat().st_mtime_ns for p in (
        done,
        workdir / "results" / "features" / "inception" / "real.h5",
        workdir / "results" / "features" / "inception" / "gen2.h5",
    )}

    bad.unlink()  # the cause removed
    code, output = snakemake(cluster, workdir)
    assert code == 0, output[-8000:] + read_logs(workdir)
    # .snakemake/slurm_logs/rule_<rule>/<wildcard values joined by _>/<jobid>.log
    again = sorted(re.search(r"rule_(\w+)/([^/]+)/", log).groups()
                   for log in submitted(output).values())
    # Only gen1's manifest (its images changed), its cache, statistics and comparison ran
    # again.
    assert again == [
        ("compute_metrics", "inception_gen1_real"),
        ("dataset_statistics", "inception_gen1"),
        ("extract_features", "inception_gen1"),
        ("manifest", "gen1"),
    ], output[-5000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert (workdir / "results" / "tables" / "metrics.csv").is_file()
