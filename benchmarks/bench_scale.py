"""Metrics at 70k-image scale: time and peak memory of every metric from two HDF5 caches.

python benchmarks/bench_scale.py [--n 70000] [--dim 2048] [--threads 2]
    [--jobs fid:both kid:both pr:none dc:none all:both]

Two caches of N seeded float32 features (decaying spectrum, as bench_resources.py makes them,
written once under benchmarks/_data/), then one whole process of
`workflow_scripts/compute_metrics.py` per job: `METRIC:NORMALIZE` runs `--metrics METRIC
--normalize NORMALIZE` (`all` = the workflow's default fid,kid,pr,dc). Peak memory is the
largest summed RSS of the process tree (sampled every 50 ms) and the kernel's ru_maxrss of the
main process; beside each row, what `fidlens.resources` asks a cluster for the same job.
Nothing in the metrics holds an N x N matrix: at N = 70,000 one would be 39 GB (float64).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench_resources import DATA, REPO, make_cache, measure

from fidlens import resources

METRIC_SETS = {"fid": "fid", "kid": "kid", "pr": "pr", "dc": "dc", "all": "fid,kid,pr,dc"}


def run(source: Path, target: Path, n: int, dim: int, job: str, threads: int) -> dict:
    metric, _, normalize = job.partition(":")
    normalize = normalize or "both"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        command = [sys.executable, str(REPO / "workflow_scripts" / "compute_metrics.py"),
                   "--source", str(source), "--target", str(target),
                   "--metrics", METRIC_SETS[metric], "--normalize", normalize,
                   "--threads", str(threads), "--out", str(out)]
        load = os.getloadavg()[0]
        wall, tree, kernel = measure(command)
        values = json.loads(out.read_text())
    shown = {block: {k: round(v, 6) for k, v in found.items() if isinstance(v, float)}
             for block, found in values.items() if block in ("raw", "l2")}
    blocks = 1 if normalize != "both" else 2
    return dict(job=f"{METRIC_SETS[metric]} ({normalize})", wall=wall, tree=tree, kernel=kernel,
                load=load, values=shown,
                asked_mb=resources.metrics_mem_mb(n, n, dim),
                asked_min=resources.metrics_runtime_min(n, n, dim, threads,
                                                        normalizations=blocks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", nargs="*",
                        default=["fid:both", "kid:both", "pr:none", "dc:none", "all:both"])
    args = parser.parse_args()
    unknown = [job for job in args.jobs if job.partition(":")[0] not in METRIC_SETS]
    if unknown:
        parser.error(f"unknown job(s) {unknown}: METRIC:NORMALIZE, METRIC in {list(METRIC_SETS)}")
    source = DATA / f"resources_{args.n}x{args.dim}_source.h5"
    target = DATA / f"resources_{args.n}x{args.dim}_target.h5"
    make_cache(source, args.n, args.dim, seed=1, shift=0.01)
    make_cache(target, args.n, args.dim, seed=2, shift=0.0)
    print(f"machine: {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"N = {args.n} per set, D = {args.dim}, {args.threads} threads")
    print("| metrics (normalisation) | wall | peak RSS, process tree | peak RSS, main (kernel) "
          "| mem_mb asked | runtime asked | load at start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for job in args.jobs:
        row = run(source, target, args.n, args.dim, job, args.threads)
        print(f"| {row['job']} | {row['wall']:.1f} s | {row['tree']:.0f} MB | "
              f"{row['kernel']:.0f} MB | {row['asked_mb']} | {row['asked_min']} min | "
              f"{row['load']:.1f} |", flush=True)
        print(f"<!-- {row['job']}: {row['values']} -->", flush=True)


if __name__ == "__main__":
    main()
