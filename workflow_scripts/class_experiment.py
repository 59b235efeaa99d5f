"""One seed-002 experiment for one comparison, from feature caches and statistics files.

python workflow_scripts/class_experiment.py --experiment top1|topn|resampling
    --classifier-source GEN.h5 --classifier-target REAL.h5
    --source-caches A/GEN.h5 B/GEN.h5 ... --target-statistics A/REAL.h5 B/REAL.h5 ...
    [--source-name NAME] [--target-name NAME] [--seed 0] [--repeats 5]
    [--n 1,2,5] (topn) [--extractor NAME] (resampling) [--max-iterations 200]
    [--time-limit-s S] [--device cpu|cuda|auto] [--threads N] [--allow-mixed]
    --json FILE.json --csv FILE.csv --plot FILE.png

top1: resample the generated set so that its Top-1 class histogram (the classifier's logits)
matches the real set's; topn: per N, weights that match the sets' N-hot Top-N statistics;
resampling: weights that minimise one extractor's FID. Each reports every extractor's FID
before and after (source caches and target statistics are given in the same order).
"""

import argparse
import json
import sys

import pandas as pd
import torch

from fidlens.experiments import run
from fidlens.experiments.plots import experiment_figure
from fidlens.files import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, choices=["top1", "topn", "resampling"])
    parser.add_argument("--classifier-source", required=True, help="generated set's logits")
    parser.add_argument("--classifier-target", required=True, help="real set's logits")
    parser.add_argument("--source-caches", nargs="+", required=True)
    parser.add_argument("--target-statistics", nargs="+", required=True)
    parser.add_argument("--source-name", default=None)
    parser.add_argument("--target-name", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", default="1,2,5", help="topn: comma-separated N values")
    parser.add_argument("--extractor", default=None, help="resampling: the FID to minimise")
    parser.add_argument("--max-iterations", type=int, default=200)
    parser.add_argument("--time-limit-s", type=float, default=None)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--allow-mixed", action="store_true")
    parser.add_argument("--json", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--plot", required=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = "cpu"
        if args.experiment == "resampling" and args.device != "cpu":
            from fidlens.extract import resolve_device

            device = str(resolve_device(args.device))
        setup = run.load_setup(
            args.classifier_source,
            args.classifier_target,
            args.source_caches,
            args.target_statistics,
            source_name=args.source_name,
            target_name=args.target_name,
            device=device,
            allow_mixed=args.allow_mixed,
        )
        solver = run.Solver(args.max_iterations, args.time_limit_s)
        if args.experiment == "top1":
            result = run.top1_matching(setup, args.seed, args.repeats)
        elif args.experiment == "topn":
            ns = [int(value) for value in args.n.split(",") if value.strip()]
            result = run.top_n_matching(setup, ns, solver, args.seed, args.repeats)
        else:
            result = run.fid_resampling(
                setup, args.extractor or setup.classifier, solver, args.seed, args.repeats
            )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"class_experiment: error: {error}", file=sys.stderr)
        return 1
    result["device"] = device
    write_text_atomic(args.json, json.dumps(result, indent=2, sort_keys=True) + "\n")
    rows = pd.DataFrame(run.result_rows(result))
    write_text_atomic(args.csv, rows.to_csv(index=False))
    experiment_figure(result, args.plot)
    for row in rows.itertuples():
        n = "" if pd.isna(row.n) else f" N={int(row.n)}"
        after = (
            "not matched" if pd.isna(row.fid_after) else
            f"{row.fid_after:.6g} ± {row.fid_after_std:.2g} ({100 * row.relative_change:+.2f} %)"
        )
        print(
            f"{args.experiment}{n} {row.source} -> {row.target} {row.extractor}: FID "
            f"{row.fid_before:.6g} -> {after}",
            file=sys.stderr,
        )
    if result.get("matched") is False:
        print(f"top1: not matched: {result['not_matched_because']}", file=sys.stderr)
    print(f"-> {args.json}, {args.csv}, {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
