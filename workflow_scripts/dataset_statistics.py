"""Per-dataset statistics of one feature cache: mean, covariance and k-NN radii, per block.

python workflow_scripts/dataset_statistics.py --cache FEATURES.h5 [--layer pool|logits]
    [--moments raw[,l2]] [--radii BLOCK=K[,K] ...] [--threads N] --out STATISTICS.h5

Written once per (extractor, dataset) under results/statistics/ (layout: fidlens.statistics);
every comparison, experiment and attention map reads it instead of recomputing from the cache.
--moments: the blocks whose mean and covariance are stored (raw always; l2 = L2-normalised
rows); --radii raw=3,5: the squared k-NN radii of a block for those k (precision/recall,
density/coverage). Without --radii nothing imports torch.
"""

import argparse
import sys


def parse_radii(values: list[str]) -> dict[str, list[int]]:
    """{block: ks} from "BLOCK=K,K" strings; raises ValueError for a malformed one."""
    radii: dict[str, list[int]] = {}
    for value in values:
        block, sep, ks = value.partition("=")
        if not sep or not ks.strip():
            raise ValueError(f"--radii {value!r}: expected BLOCK=K[,K], e.g. raw=3,5")
        try:
            radii.setdefault(block.strip(), []).extend(int(k) for k in ks.split(",") if k.strip())
        except ValueError:
            raise ValueError(f"--radii {value!r}: k must be integers") from None
    return radii


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="feature cache (.h5)")
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"],
                        help="the cached array: features (pool) or classifier logits")
    parser.add_argument("--moments", default="raw",
                        help="comma-separated blocks whose mean and covariance to store")
    parser.add_argument("--radii", action="append", default=[], metavar="BLOCK=K[,K]",
                        help="squared k-NN radii of a block (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch, BLAS)")
    parser.add_argument("--out", required=True, help="statistics file to write (.h5)")
    args = parser.parse_args(argv)
    moments = [name.strip() for name in args.moments.split(",") if name.strip()]
    try:
        radii = parse_radii(args.radii)
    except ValueError as error:
        parser.error(str(error))
    if args.threads and radii:
        import torch  # only the radii run on torch

        torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    from fidlens.statistics import compute_statistics, write_statistics

    try:
        with threadpool_limits(args.threads):  # None: the BLAS default (every core)
            stats = compute_statistics(args.cache, args.layer, moments, radii)
    except (OSError, ValueError) as error:
        print(f"dataset_statistics: error: {error}", file=sys.stderr)
        return 1
    write_statistics(args.out, stats)
    contents = ", ".join(
        f"{name}: " + " + ".join(
            (["mean, covariance"] if block.has_moments else [])
            + ([f"radii k = {', '.join(map(str, sorted(block.sq_radii)))}"]
               if block.sq_radii else [])
        )
        for name, block in stats.blocks.items()
    )  # fmt: skip
    print(
        f"{args.cache} ({stats.attrs.get('extractor', '?')}, {stats.layer}): N = {stats.n}, "
        f"D = {stats.dim}, tr(covariance) = {stats.covariance.trace():.6g}; {contents} "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
