"""PaCMAP map of one comparison's source and target features, for one extractor.

python workflow_scripts/embed_features.py --source A.h5 --target B.h5 [--layer pool|logits]
    [--normalize none|l2|both] [--max-points 2000|none] [--seed 0] [--n-neighbors 10]
    [--mn-ratio 0.5] [--fp-ratio 2.0] [--num-iters 100,100,250] [--source-name NAME]
    [--target-name NAME] [--threads N] --csv OUT.csv --json OUT.json

Writes the 2-D coordinates of every kept image (dataset, relpath, role, row, normalization, x,
y) and a JSON of how they were made (extractor, weights, settings, package versions).
"""

import argparse
import sys

from fidlens.embedding import PacmapSettings, embed_caches
from fidlens.metric_specs import NORMALIZE_MODES


def max_points(value: str) -> int | None:
    return None if value.lower() in ("none", "null") else int(value)


def num_iters(value: str) -> tuple[int, int, int]:
    phases = tuple(int(part) for part in value.split(","))
    if len(phases) != 3:
        raise argparse.ArgumentTypeError(f"three comma-separated phase lengths, got {value!r}")
    return phases


def limit_threads(threads: int) -> None:
    """numba (PaCMAP's optimiser) and BLAS (the PCA) use at most `threads` cores."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    threadpool_limits(threads)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="generated features (.h5)")
    parser.add_argument("--target", required=True, help="real features (.h5)")
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"])
    parser.add_argument("--normalize", default="both", choices=sorted(NORMALIZE_MODES))
    parser.add_argument("--max-points", type=max_points, default=2000,
                        help="rows kept per set (a seeded subsample above it); none = all")
    parser.add_argument("--seed", type=int, default=0, help="subsample and PaCMAP seed")
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--mn-ratio", type=float, default=0.5)
    parser.add_argument("--fp-ratio", type=float, default=2.0)
    parser.add_argument("--num-iters", type=num_iters, default=(100, 100, 250))
    parser.add_argument("--source-name", default=None)
    parser.add_argument("--target-name", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--csv", required=True, help="coordinates CSV to write")
    parser.add_argument("--json", required=True, help="provenance JSON to write")
    args = parser.parse_args(argv)
    if args.threads:
        limit_threads(args.threads)
    try:
        provenance = embed_caches(
            args.source,
            args.target,
            args.csv,
            args.json,
            normalize=args.normalize,
            max_points=args.max_points,
            seed=args.seed,
            settings=PacmapSettings(args.n_neighbors, args.mn_ratio, args.fp_ratio,
                                    args.num_iters),
            layer=args.layer,
            source_name=args.source_name,
            target_name=args.target_name,
        )
    except (OSError, ValueError) as error:
        print(f"embed_features: error: {error}", file=sys.stderr)
        return 1
    flag = f", {provenance['weights']}" if provenance["weights"] != "pretrained" else ""
    print(
        f"{provenance['source_name']} ({provenance['n_source_kept']} of "
        f"{provenance['n_source']}) with {provenance['target_name']} "
        f"({provenance['n_target_kept']} of {provenance['n_target']}), "
        f"{provenance['extractor']}{flag}, {'+'.join(provenance['normalizations'])} "
        f"-> {args.csv}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
