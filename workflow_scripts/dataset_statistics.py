"""Mean and covariance (float64) of one feature cache: the per-dataset statistics file.

python workflow_scripts/dataset_statistics.py --cache FEATURES.h5 [--layer pool|logits]
    [--threads N] --out STATISTICS.h5

Written once per (extractor, dataset) under results/statistics/; the experiments (and any later
step that needs a set's statistics) read it instead of recomputing them from the cache.
"""

import argparse
import sys

import torch

from fidlens.statistics import compute_statistics, write_statistics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="feature cache (.h5)")
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"],
                        help="the cached array: features (pool) or classifier logits")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", required=True, help="statistics file to write (.h5)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        stats = compute_statistics(args.cache, args.layer)
    except (OSError, ValueError) as error:
        print(f"dataset_statistics: error: {error}", file=sys.stderr)
        return 1
    write_statistics(args.out, stats)
    print(
        f"{args.cache} ({stats.attrs.get('extractor', '?')}, {stats.layer}): N = {stats.n}, "
        f"D = {stats.dim}, tr(covariance) = {stats.covariance.trace():.6g} -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
