"""Compute FID, KID, precision/recall and density/coverage between two feature caches.

python workflow_scripts/compute_metrics.py --source A.h5 --target B.h5 [--metrics fid,kid,pr,dc]
    [--normalize none|l2|both] [--seed S] [--kid-subsets 100] [--kid-subset-size 1000]
    [--source-name NAME] [--target-name NAME] [--threads N] [--allow-mixed]
    [--layer pool|logits] [--intervals [--interval-resamples 200] [--interval-level 0.95]
    [--interval-seed 0] [--interval-subset-fraction 0.5] [--draws FILE.csv]
    [--device auto|cpu|cuda]] [--source-statistics S.h5] [--target-statistics T.h5]
    --out FILE.json

Source is the generated set, target the real one. Any HDF5 file with a 2-D `features`
dataset is accepted. Caches made with different preprocessing or weights are an error unless
--allow-mixed is given (the JSON then says `mixed` and records both sides). --layer logits
computes the metrics on the caches' classifier logits instead of their features.
--intervals adds each metric's confidence interval (`<name>_ci` in the JSON, by subsampling:
fidlens.metrics.intervals); --draws writes the per-resample values, which
metric_differences.py turns into paired intervals of differences between sources.
--source-statistics / --target-statistics: the per-dataset statistics files of the two caches
(dataset_statistics.py): FID from their moments, PR/DC with their radii, the same values
(the JSON's `statistics_from` says what was used). torch and pandas are imported only when a
metric or the draws need them: FID alone runs without either.
"""

import argparse
import json
import sys
from pathlib import Path

from fidlens.evaluate import IntervalSettings, compute_metrics
from fidlens.files import write_text_atomic
from fidlens.metric_specs import METRIC_KEYS, NORMALIZE_MODES

# Metrics that run on torch (fidlens.metrics.mmd, knn, cmmd; the intervals too).
TORCH_METRICS = {"kid", "pr", "dc", "cmmd"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="generated features (.h5)")
    parser.add_argument("--target", required=True, help="real features (.h5)")
    parser.add_argument("--metrics", default="fid,kid,pr,dc", help="comma-separated subset")
    parser.add_argument("--normalize", default="both", choices=sorted(NORMALIZE_MODES))
    parser.add_argument("--seed", type=int, default=0, help="seed of the KID subsets")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--source-name", default=None)
    parser.add_argument("--target-name", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch, BLAS)")
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"],
                        help="the cached array the metrics read: features (pool) or logits")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="compare caches made with different preprocessing or weights")
    parser.add_argument("--intervals", action="store_true",
                        help="confidence intervals of every metric, by subsampling")
    parser.add_argument("--interval-resamples", type=int, default=200)
    parser.add_argument("--interval-level", type=float, default=0.95)
    parser.add_argument("--interval-seed", type=int, default=0)
    parser.add_argument("--interval-subset-fraction", type=float, default=0.5,
                        help="share of each set a subsample keeps")
    parser.add_argument("--draws", default=None,
                        help="CSV of every resample's values (with --intervals)")
    parser.add_argument("--device", default="auto", help="where the intervals' products run")
    parser.add_argument("--source-statistics", default=None,
                        help="the source cache's per-dataset statistics file (.h5)")
    parser.add_argument("--target-statistics", default=None,
                        help="the target cache's per-dataset statistics file (.h5)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.draws and not args.intervals:
        parser.error("--draws needs --intervals")
    intervals = None
    if args.intervals:
        intervals = IntervalSettings(args.interval_resamples, args.interval_level,
                                     args.interval_seed, args.interval_subset_fraction)
    names = {name.strip().lower() for name in args.metrics.split(",")}
    if args.threads and (names & TORCH_METRICS or intervals is not None):
        import torch

        torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(args.threads):  # None: the BLAS default (every core)
            result = _compute(args, intervals)
    except (OSError, ValueError) as error:
        print(f"compute_metrics: error: {error}", file=sys.stderr)
        return 1
    draws = result.pop("interval_draws", None)
    if args.draws:
        result["interval_draws_file"] = args.draws
        write_text_atomic(args.draws, draws_csv(draws))
    # Atomic: a crash never leaves a half-written JSON for the next rule.
    write_text_atomic(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(summary(result, Path(args.out)), file=sys.stderr)
    return 0


def _compute(args, intervals) -> dict:
    """compute_metrics with the command line's settings."""
    return compute_metrics(
        args.source,
        args.target,
        metrics=args.metrics,
        normalize=args.normalize,
        seed=args.seed,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        source_name=args.source_name,
        target_name=args.target_name,
        allow_mixed=args.allow_mixed,
        layer=args.layer,
        intervals=intervals,
        device=args.device,
        progress=intervals is not None,
        source_statistics=args.source_statistics,
        target_statistics=args.target_statistics,
    )


def draws_csv(draws: dict) -> str:
    """One row per resample, one column per normalisation and metric (`raw_fid`, ...), every
    value with 17 significant digits (read back exactly)."""
    import pandas as pd  # only the draws need it

    columns = {
        f"{block}_{name}": values
        for block, found in draws.items()
        for name, values in found.items()
    }
    frame = pd.DataFrame(columns)
    frame.insert(0, "resample", range(len(frame)))
    return frame.to_csv(index=False, float_format="%.17g")


def summary(result: dict, out: Path) -> str:
    parts = [f"{result['source_name']} vs {result['target_name']} ({result['extractor']}"]
    parts[0] += ", random-init)" if result["weights"] == "random-init" else ")"
    for block in ("raw", "l2"):
        values = result.get(block)
        if values:
            shown = " ".join(
                (f"{key}={values[key]:.6g}" if values[key] is not None else f"{key}=null")
                + (" [{:.6g}, {:.6g}]".format(*values[f"{key}_ci"]) if f"{key}_ci" in values
                   else "")
                for keys in METRIC_KEYS.values()
                for key in keys
                if key in values
            )
            parts.append(f"{block}: {shown}")
    return " | ".join(parts) + f" -> {out}"


if __name__ == "__main__":
    sys.exit(main())
