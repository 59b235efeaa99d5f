"""FD∞ (Chong & Forsyth 2020) beside FID for one comparison in every extractor's features,
with the sample-size warnings.

python workflow_scripts/fd_infinity.py --extractors E... --sources A_E.h5...
    (--targets B_E.h5... | --target-statistics T_E.h5...) [--layers L...] [--points 15]
    [--min-fraction 0.1] [--seed 0] [--size-ratio 2] [--source-name NAME]
    [--target-name NAME] [--threads N] --out FILE.json
"""

import argparse
import sys

import torch

from fidlens.trust import fd_comparison_job, write_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", nargs="+", required=True, help="instance names")
    parser.add_argument(
        "--sources", nargs="+", required=True, help="generated features, per extractor"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--targets", nargs="+", help="real features (.h5), per extractor")
    target.add_argument("--target-statistics", nargs="+", help="imported statistics, per extractor")
    parser.add_argument("--layers", nargs="+", default=None, help="pool or logits, per extractor")
    parser.add_argument("--points", type=int, default=15)
    parser.add_argument("--min-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size-ratio", type=float, default=2.0)
    parser.add_argument("--source-name", default=None)
    parser.add_argument("--target-name", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        document = fd_comparison_job(
            args.extractors, args.sources, args.targets, args.target_statistics, args.layers,
            args.points, args.min_fraction, args.seed, args.size_ratio, args.source_name,
            args.target_name,
        )  # fmt: skip
    except (OSError, ValueError) as error:
        print(f"fd_infinity: error: {error}", file=sys.stderr)
        return 1
    write_json(args.out, document)
    for result in document["results"]:
        for warning in result["warnings"]:
            print(f"WARNING: {result['extractor']}: {warning}", file=sys.stderr)
        print(
            f"{result['source']} vs {result['target']} ({result['extractor']}): FID "
            f"{result['fid']:.6g}, FD∞ {result['fd_infinity']:.6g} from N = "
            f"{result['fd_infinity_sizes']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
