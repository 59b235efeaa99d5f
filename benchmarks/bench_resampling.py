"""Benchmark of the FID-minimising resampling (fidlens.experiments.fid_resampling).

python benchmarks/bench_resampling.py [--n 10000] [--dim 2048] [--minutes 30]
    [--checkpoints 5,30] [--threads 2] [--device cpu] [--out FILE.json]

Synthetic features in D dimensions shaped like an ImageNet network's: a mixture of 100
classes (class means plus a shared within-class covariance with eigenvalues ~ 1/k in a random
basis); the real set draws its classes from a Zipf law, the generated set from the same law
over a partly shuffled class order, with slightly narrower classes and a small mean shift, so
reweighting can lower FID a lot but not to zero. One L-BFGS run of `--minutes` minutes from
uniform weights; the best FID reached by each checkpoint is read from its trace. Prints the
load average at the start and at the end (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from fidlens.experiments.fid_resampling import (
    WeightedFrechet,
    minimise_fid,
    reference_from_statistics,
)
from fidlens.metrics import feature_statistics

CLASSES = 100


def synthetic_sets(n: int, m: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    within = basis * np.sqrt(1.0 / np.arange(1, dim + 1))  # within-class covariance factor
    means = rng.normal(size=(CLASSES, dim)) * 0.25
    zipf = 1.0 / np.arange(1, CLASSES + 1)
    real_p = zipf / zipf.sum()
    order = np.arange(CLASSES)
    swap = rng.choice(CLASSES, size=CLASSES // 3, replace=False)
    order[swap] = rng.permutation(swap)
    gen_p = real_p[order]

    def draw(count, probabilities, scale, shift):
        classes = rng.choice(CLASSES, size=count, p=probabilities)
        noise = rng.normal(size=(count, dim)) @ within.T
        return (means[classes] + scale * noise + shift).astype(np.float32)

    real = draw(m, real_p, 1.0, 0.0)
    generated = draw(n, gen_p, 0.95, 0.01)
    return generated, real


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="generated and real images")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--checkpoints", default="5,30", help="minutes, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="JSON with the trace")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", flush=True)

    started = time.perf_counter()
    generated, real = synthetic_sets(args.n, args.n, args.dim)
    reference = reference_from_statistics(*feature_statistics(real))
    objective = WeightedFrechet(generated, reference, device=args.device)
    setup_s = time.perf_counter() - started
    print(f"setup (features, statistics, factor, projection): {setup_s:.1f} s", flush=True)

    def progress(iteration, seconds, fid):
        if iteration % 10 == 0:
            print(f"iteration {iteration}: {seconds:.0f} s, FID {fid:.6f}", flush=True)

    optimum = minimise_fid(
        objective,
        max_iterations=10**6,
        time_limit_s=args.minutes * 60,
        progress=progress,
    )
    load_end = os.getloadavg()
    checkpoints = [float(value) for value in args.checkpoints.split(",")]
    reached = {minutes: optimum.fid_at(minutes * 60) for minutes in checkpoints}
    final = reached[max(checkpoints)]
    result = {
        "n_generated": args.n,
        "n_real": args.n,
        "dim": args.dim,
        "threads": args.threads,
        "device": args.device,
        "machine": f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}",
        "load_average_start": load_start,
        "load_average_end": load_end,
        "setup_s": setup_s,
        "fid_uniform": optimum.fid_uniform,
        "fid_at_minutes": reached,
        "share_of_final_reduction": {
            minutes: (optimum.fid_uniform - fid) / (optimum.fid_uniform - final)
            for minutes, fid in reached.items()
        },
        "iterations": optimum.iterations,
        "evaluations": optimum.evaluations,
        "seconds_per_evaluation": optimum.seconds / max(1, optimum.evaluations),
        "effective_sample_size": optimum.effective_sample_size(),
        "stop_reason": optimum.stop_reason,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        result["trace"] = optimum.trace
        with open(args.out, "w") as handle:
            json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
