"""Inception Score of one classifier cache, over splits, from its cached logits.

python workflow_scripts/inception_score.py --cache FEATURES.h5 [--splits 10]
    [--logits unbiased|biased] [--shuffle-seed 2020|none] [--dataset-name NAME] --out FILE.json

unbiased: the logits without the last layer's bias where the extractor provides them
(inception's outputs/logits_unbiased, torch-fidelity's default), else its logits (stated in the
JSON); biased: the logits with the bias. --shuffle-seed permutes the images first as
torch-fidelity does (its default seed is 2020); none keeps the cache's order.
"""

import argparse
import json
import sys

from fidlens.experiments.run import inception_score_of_cache
from fidlens.files import write_text_atomic


def seed_or_none(value: str):
    return None if value.lower() in ("none", "null") else int(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="classifier feature cache (.h5)")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--logits", default="unbiased", choices=["unbiased", "biased"])
    parser.add_argument("--shuffle-seed", type=seed_or_none, default=2020)
    parser.add_argument("--dataset-name", default=None)
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    try:
        result = inception_score_of_cache(
            args.cache,
            splits=args.splits,
            logits=args.logits,
            shuffle_seed=args.shuffle_seed,
            dataset_name=args.dataset_name,
        )
    except (OSError, ValueError) as error:
        print(f"inception_score: error: {error}", file=sys.stderr)
        return 1
    write_text_atomic(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(
        f"{result['dataset']} ({result['extractor']}, {result['weights']}): IS = "
        f"{result['inception_score_mean']:.6g} ± {result['inception_score_std']:.3g} over "
        f"{result['splits']} splits of {result['n']} images; {result['logits_used']} -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
