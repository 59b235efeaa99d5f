"""Confidence intervals of every metric (fidlens.metrics.intervals) on N x N features.

python benchmarks/bench_intervals.py [--n 10000] [--dim 2048] [--resamples 200]
    [--normalize both] [--check 2]

The features are bench_prc.py's (seeded, float32 as in a cache, covariance spectrum k^-1.5,
generator slightly off in mean and spread), written once under benchmarks/_data/. The run
times, per normalisation, the point estimates (`fidlens.evaluate.feature_metrics`: FID, KID
over 100 subsets of 1000, P/R, D/C) and each metric's resampled values
(`fidlens.metrics.intervals`), and prints the intervals, the peak resident memory (VmHWM), the
load average before and after, and the machine. --check R compares the first R resamples
with a direct computation on the same subsets.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prc import data_file, machine, peak_rss_bytes  # noqa: E402

from fidlens import metrics as m  # noqa: E402
from fidlens.evaluate import _kid_plan, feature_metrics  # noqa: E402
from fidlens.metrics import intervals as iv  # noqa: E402


def timed(what: str, log: dict, call, *args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    value = call(*args, **kwargs)
    log[what] = {"s": round(time.perf_counter() - start, 2),
                 "cpu_s": round(time.process_time() - cpu, 2)}  # fmt: skip
    print(f"  {what}: {log[what]['s']} s (CPU {log[what]['cpu_s']} s)", flush=True)
    return value


def check(source, target, plans, draws, count: int) -> dict:
    """Largest relative difference to a direct computation on the first `count` subsets."""
    worst = {}
    for r in range(count):
        x, y = source[plans[0].members[r]], target[plans[1].members[r]]
        direct = {"fid": m.fid_from_features(x, y), "kid_mean": m.kid_whole_sets(x, y)}
        direct.update(m.manifold_metrics(x, y))
        for name, value in direct.items():
            gap = abs(draws[name][r] - value) / max(abs(value), 1e-300)
            worst[name] = max(worst.get(name, 0.0), gap)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--exponent", type=float, default=1.5)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--normalize", choices=["none", "l2", "both"], default="both")
    parser.add_argument("--check", type=int, default=0, help="resamples checked directly")
    args = parser.parse_args()
    data = np.load(data_file(args.n, args.dim, args.exponent))
    source, target = data["fake"], data["real"]
    load_before = os.getloadavg()
    print(f"{args.n} x {args.n}, D = {args.dim}, {args.resamples} resamples; {machine()}; "
          f"load {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    log: dict = {}
    start = time.perf_counter()
    plans = timed("plans", log, lambda: (
        iv.subsample_plan(args.n, args.resamples, 0.5, 0, "source:fake"),
        iv.subsample_plan(args.n, args.resamples, 0.5, 0, "target:real")))  # fmt: skip
    scale = iv.interval_scale(plans[0].fraction, plans[1].fraction)
    _, kid_indices = _kid_plan(args.n, args.n, 100, 1000, 0)
    blocks = {"none": ["raw"], "l2": ["l2"], "both": ["raw", "l2"]}[args.normalize]
    results = {}
    for block in blocks:
        print(block, flush=True)
        x, y = (source, target) if block == "raw" else (m.l2_normalize(source),
                                                        m.l2_normalize(target))  # fmt: skip
        part = {}
        values = timed(f"{block} point estimates", part, feature_metrics, x, y,
                       ("fid", "kid", "pr", "dc"), kid_indices)  # fmt: skip
        draws = {}
        draws["fid"] = timed(f"{block} FID resamples", part, iv.fid_resamples, x, y, *plans)
        draws["kid_mean"] = timed(f"{block} KID resamples", part, iv.kid_resamples, x, y, *plans)
        found, info = timed(f"{block} k-NN resamples", part, iv.manifold_resamples, x, y, *plans)
        draws.update(found)
        extra = {"kid_mean": iv.kid_extra_variance(values["kid_std"], 100)}
        intervals = iv.metric_intervals(values, draws, scale, 0.95, extra)
        results[block] = {"values": values, "intervals": intervals, "knn": info, "times": part}
        for name, (low, high) in intervals.items():
            print(f"  {name[:-3]} = {values[name[:-3]]:.6g}, 95 % interval [{low:.6g}, {high:.6g}]")
        print(f"  k-NN reuse: {info}", flush=True)
        if args.check:
            worst = check(x, y, plans, draws, args.check)
            results[block]["check"] = worst
            print(f"  largest relative difference to direct ({args.check} resamples): {worst}")
        log.update(part)
    total = time.perf_counter() - start
    load_after = os.getloadavg()
    summary = {
        "n": args.n, "dim": args.dim, "resamples": args.resamples, "total_s": round(total, 1),
        "peak_rss_gb": round(peak_rss_bytes() / 2**30, 2), "load_before": load_before,
        "load_after": load_after, "machine": machine(), "torch_threads": torch.get_num_threads(),
        "times": log, "results": results,
    }  # fmt: skip
    print(f"total {total:.1f} s, peak RSS {summary['peak_rss_gb']} GiB, load after "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
