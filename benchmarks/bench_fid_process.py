"""FID of two feature caches as a whole process: ours against a pytorch-fid reference (#13).

python benchmarks/bench_fid_process.py [--n 10000] [--dim 2048] [--repeats 3] [--threads T]

Writes two seeded float32 caches of N x D features (fidlens.cache's layout, with checksums and
provenance, a decaying covariance spectrum in a random basis and a positive mean, like pooled
CNN features) under benchmarks/_data/fid_process/, then times, round-robin, each as its own
process from start to exit:

(a) ours: `workflow_scripts/compute_metrics.py --metrics fid --normalize none` (no torch);
(b) the reference: a `python -c` process that loads the same HDF5 files with h5py into a
    float64 array (as pytorch-fid holds activations), forms `np.mean` / `np.cov` and calls
    `pytorch_fid.fid_score.calculate_frechet_distance`;
(c) ours given the per-dataset statistics files (dataset_statistics.py, made once, not
    timed): what each comparison of the workflow runs.

Prints a Markdown table (best and median of the repeats, every run), the speed-up of (a) and
(c) over (b), both FID values and their relative difference, and a machine / load line.
--threads T sets the BLAS threads of every process (OPENBLAS_NUM_THREADS etc.); default: the
libraries' own (every core).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "_data" / "fid_process"
SCRIPTS = REPO / "workflow_scripts"

REFERENCE = """
import sys, warnings
import h5py, numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance
warnings.filterwarnings("ignore", category=DeprecationWarning)  # sqrtm(disp=) in SciPy 1.17

def statistics(path):
    with h5py.File(path, "r") as handle:
        act = handle["features"][()].astype(np.float64)
    return np.mean(act, axis=0), np.cov(act, rowvar=False)

mu1, sigma1 = statistics(sys.argv[1])
mu2, sigma2 = statistics(sys.argv[2])
print(repr(float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))))
"""


def make_caches(n: int, dim: int, seed: int = 0) -> tuple[Path, Path]:
    """Two seeded caches (source shifted and scaled from target), written once per (n, dim)."""
    from fidlens.cache import FeatureCache, write_cache

    folder = DATA / f"{n}x{dim}-seed{seed}"
    paths = folder / "gen.h5", folder / "real.h5"
    if all(path.exists() for path in paths):
        return paths
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -0.75
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mixing = (spectrum[:, None] * basis.T).astype(np.float32)
    mean = rng.uniform(0.2, 0.6, dim).astype(np.float32)
    attrs = {"extractor": "inception", "extractor_type": "inception", "preprocess": "clean",
             "weights": "pretrained", "weights_sha256": "benchmark"}  # fmt: skip
    for path, shift, spread in ((paths[0], 0.02, 1.1), (paths[1], 0.0, 1.0)):
        rows = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 4096):  # float32 throughout: no float64 copy of the set
            block = rng.standard_normal((min(4096, n - start), dim), dtype=np.float32)
            rows[start : start + len(block)] = spread * (block @ mixing) + mean + shift
        write_cache(path, FeatureCache(features=rows, attrs=attrs | {"dataset": path.stem}))
    return paths


def make_statistics(cache: Path) -> Path:
    out = cache.with_suffix(".stats.h5")
    if not out.exists():
        subprocess.run([sys.executable, str(SCRIPTS / "dataset_statistics.py"), "--cache",
                        str(cache), "--out", str(out)], check=True, capture_output=True)
    return out


def run_timed(command: list[str], env: dict) -> tuple[float, str]:
    """(wall seconds from start to exit, stdout) of one process; raises on failure."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{done.stderr}")
    return elapsed, done.stdout


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    import scipy

    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="rows of each cache")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads per process")
    args = parser.parse_args()

    source, target = make_caches(args.n, args.dim)
    files = make_statistics(source), make_statistics(target)
    env = dict(os.environ)
    if args.threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.threads)
    out = Path(tempfile.mkdtemp(prefix="bench_fid_process_")) / "fid.json"
    ours = [sys.executable, str(SCRIPTS / "compute_metrics.py"), "--source", str(source),
            "--target", str(target), "--metrics", "fid", "--normalize", "none",
            "--out", str(out)]  # fmt: skip
    commands = {
        "(a) ours: compute_metrics.py --metrics fid --normalize none": ours,
        "(b) reference: h5py + np.cov + pytorch-fid calculate_frechet_distance":
            [sys.executable, "-c", REFERENCE, str(source), str(target)],
        "(c) ours with the per-dataset statistics files": ours + [
            "--source-statistics", str(files[0]), "--target-statistics", str(files[1])],
    }  # fmt: skip
    times = {name: [] for name in commands}
    values = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):  # round-robin: a busy moment falls on every process alike
        for name, command in commands.items():
            elapsed, stdout = run_timed(command, env)
            times[name].append(elapsed)
            if name.startswith("(b)"):
                values[name] = float(stdout.strip().splitlines()[-1])
            else:
                values[name] = json.loads(out.read_text())["raw"]["fid"]
        loads.append(os.getloadavg()[0])

    names = list(commands)
    reference = names[1]
    print(f"FID of two {args.n} x {args.dim} float32 caches, whole processes, round-robin, "
          f"{args.repeats} repeats; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; BLAS threads: {args.threads or 'default'}; "
          f"1-min load {min(loads):.2f}-{max(loads):.2f} during the runs\n")  # fmt: skip
    print("| process | best s | median s | runs s | FID | rel. diff to (b) |")
    print("|---|---:|---:|---|---:|---:|")
    for name in names:
        runs = " ".join(f"{t:.2f}" for t in times[name])
        diff = abs(values[name] - values[reference]) / abs(values[reference])
        print(f"| {name} | {min(times[name]):.2f} | {statistics.median(times[name]):.2f} | "
              f"{runs} | {values[name]:.10f} | {diff:.2e} |")
    for name in (names[0], names[2]):
        best = min(times[reference]) / min(times[name])
        median = statistics.median(times[reference]) / statistics.median(times[name])
        print(f"\nspeed-up of {name[:3]} over (b): {best:.2f}x (best), {median:.2f}x (median)")


if __name__ == "__main__":
    main()
