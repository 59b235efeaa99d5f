"""FID of a feature cache against a target given only as statistics; the other metrics are
recorded as unavailable.

python workflow_scripts/statistics_metrics.py --source A.h5 --target-statistics T.h5
    [--metrics fid,kid,pr,dc] [--normalize none|l2|both] [--layer pool|logits]
    [--allow-mixed] [--source-name NAME] [--target-name NAME] [--threads N] --out FILE.json

The JSON has compute_metrics.py's layout: FID in the raw block; every other asked-for value,
and every L2 one, null with its reason under `unavailable`
("unavailable: target given as statistics").
"""

import argparse
import sys

from fidlens.interop import metrics_from_statistics, write_json
from fidlens.statistics import read_statistics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="generated features (.h5)")
    parser.add_argument("--target-statistics", required=True, help="imported statistics (.h5)")
    parser.add_argument("--metrics", default="fid")
    parser.add_argument("--normalize", default="both", choices=["none", "l2", "both"])
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"])
    parser.add_argument("--allow-mixed", action="store_true")
    parser.add_argument("--source-name", default=None)
    parser.add_argument("--target-name", default=None)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    try:
        # FID from statistics runs on numpy / SciPy: --threads caps the BLAS (None: every core)
        with threadpool_limits(args.threads):
            result = metrics_from_statistics(
                args.source,
                read_statistics(args.target_statistics),
                metrics=args.metrics,
                normalize=args.normalize,
                source_name=args.source_name,
                target_name=args.target_name,
                layer=args.layer,
                allow_mixed=args.allow_mixed,
            )
    except (OSError, ValueError) as error:
        print(f"statistics_metrics: error: {error}", file=sys.stderr)
        return 1
    write_json(args.out, result)
    print(
        f"{result['source_name']} vs {result['target_name']} (statistics, "
        f"{result['extractor']}): fid={result['raw']['fid'] if 'raw' in result else None}; "
        f"{len(result['unavailable'])} values unavailable -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
