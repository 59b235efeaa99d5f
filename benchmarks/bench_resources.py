"""Peak memory and time of the workflow's jobs, to calibrate `fidlens.resources` (the mem_mb
and runtime each job asks a cluster for).

python benchmarks/bench_resources.py [--metrics 5000x2048 20000x2048 20000x512]
    [--extraction 200x50 200x100] [--threads 2]

--metrics NxD: two caches of N rows each (seeded float32 features with a decaying spectrum,
written under benchmarks/_data/), then `workflow_scripts/compute_metrics.py` with the
workflow's default metrics (fid, kid, pr, dc; raw and L2; 100 KID subsets of 1000).
--extraction NxB: N smooth random 256² PNGs through `workflow_scripts/extract_features.py`
(inception, random weights, batch B, --cpus THREADS, on the CPU).

Each job runs as its own process tree; its peak memory is the largest sum of the resident
sizes of the process and its children (DataLoader workers), sampled every 50 ms, and for
the main process alone also its kernel-counted peak (ru_maxrss from wait4). The script
prints one Markdown row per run, and the formula's prediction beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "_data"
sys.path.insert(0, str(REPO / "src"))

from fidlens import resources  # noqa: E402


def make_cache(path: Path, n: int, dim: int, seed: int, shift: float) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** -0.75).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path.with_suffix(".tmp"), "w") as handle:
        features = handle.create_dataset("features", (n, dim), dtype=np.float32)
        for start in range(0, n, 5000):
            rows = min(5000, n - start)
            block = rng.standard_normal((rows, dim), dtype=np.float32) * scale + 0.3 + shift
            features[start : start + rows] = block
    path.with_suffix(".tmp").rename(path)


def measure(command: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak MB of the process tree's summed RSS, peak MB of the main process
    as the kernel counted it: ru_maxrss from wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        parent = psutil.Process(process.pid)
        peak_tree = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            total = 0
            try:
                members = [parent, *parent.children(recursive=True)]
            except psutil.Error:
                members = []
            for member in members:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    pass
            peak_tree = max(peak_tree, total)
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{command} failed:\n{errors.read()[-3000:]}")
    return wall, peak_tree / 2**20, usage.ru_maxrss / 1024


def run_metrics(n: int, dim: int, threads: int) -> dict:
    source = DATA / f"resources_{n}x{dim}_source.h5"
    target = DATA / f"resources_{n}x{dim}_target.h5"
    make_cache(source, n, dim, seed=1, shift=0.01)
    make_cache(target, n, dim, seed=2, shift=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, str(REPO / "workflow_scripts" / "compute_metrics.py"),
                   "--source", str(source), "--target", str(target),
                   "--threads", str(threads), "--out", str(Path(tmp) / "m.json")]
        wall, tree, kernel = measure(command)
    predicted = resources.metrics_mem_mb(n, n, dim)
    minutes = resources.metrics_runtime_min(n, n, dim, threads)
    return dict(what=f"compute_metrics {n} vs {n}, D = {dim}", wall=wall, tree=tree,
                kernel=kernel, predicted=predicted, minutes=minutes)


def run_extraction(n: int, batch: int, threads: int) -> dict:
    from PIL import Image

    folder = DATA / f"resources_images_{n}"
    if not folder.exists():
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((256, 256), Image.BICUBIC).save(tmp / f"{i:05d}.png")
        tmp.rename(folder)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FIDLENS_WEIGHTS_DIR": str(Path(tmp) / "none"),
               "TORCH_HOME": str(Path(tmp) / "none")}
        command = [sys.executable, str(REPO / "workflow_scripts" / "extract_features.py"),
                   "--images", str(folder), "--extractor", "inception", "--weights", "random",
                   "--batch-size", str(batch), "--device", "cpu", "--cpus", str(threads),
                   "--out", str(Path(tmp) / "f.h5")]
        wall, tree, kernel = measure(command, env)
    workers, _ = resources.split_extraction_cpus(threads, "cpu")
    predicted = resources.extraction_mem_mb(n, batch, workers)
    minutes = resources.extraction_runtime_min(n, threads, "cpu")
    return dict(what=f"extract_features {n} images 256², batch {batch}, {workers} worker(s)",
                wall=wall, tree=tree, kernel=kernel, predicted=predicted, minutes=minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="*", default=["5000x2048", "20000x2048", "20000x512"])
    parser.add_argument("--extraction", nargs="*", default=["200x50", "200x100"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| job | wall | peak RSS, process tree | peak RSS, main process (kernel) "
          "| mem_mb asked | runtime asked |")
    print("|---|---:|---:|---:|---:|---:|")
    runs = []
    for spec in args.metrics:
        n, dim = (int(v) for v in spec.split("x"))
        runs.append(lambda n=n, dim=dim: run_metrics(n, dim, args.threads))
    for spec in args.extraction:
        n, batch = (int(v) for v in spec.split("x"))
        runs.append(lambda n=n, batch=batch: run_extraction(n, batch, args.threads))
    for run in runs:
        row = run()
        print(f"| {row['what']} | {row['wall']:.1f} s | {row['tree']:.0f} MB "
              f"| {row['kernel']:.0f} MB | {row['predicted']} | {row['minutes']} min |",
              flush=True)


if __name__ == "__main__":
    main()
