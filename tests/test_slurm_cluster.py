"""tests/slurm_cluster.sh stops only what it started: a pid file that names another process
(a stale file, a reused pid) is removed without signalling that process. No SLURM needed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "slurm_cluster.sh"


def test_stop_ignores_pid_files_of_other_processes(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        run = tmp_path / "run"
        run.mkdir()
        for name in ("slurmctld", "slurmd", "munged"):
            (run / f"{name}.pid").write_text(f"{bystander.pid}\n")
        result = subprocess.run(["bash", str(SCRIPT), "stop", str(tmp_path)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        time.sleep(0.2)
        assert bystander.poll() is None  # still running: it is not a daemon of this cluster
        assert not any(run.iterdir())  # the stale pid files are gone
    finally:
        bystander.kill()
        bystander.wait()


def test_usage_errors(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "restart", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr
    assert not (tmp_path / "x").exists()
