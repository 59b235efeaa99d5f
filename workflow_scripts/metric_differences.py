"""Paired confidence intervals of the differences between sources compared with one target.

python workflow_scripts/metric_differences.py --metrics A.json B.json [C.json ...]
    --draws A.csv B.csv [C.csv ...] --json FILE.json --csv FILE.csv

Each metric JSON and draws CSV comes from compute_metrics.py --intervals --draws, one per
comparison against the same target (the same extractor and interval settings). For every pair
(A, B), A listed before B, the JSON and CSV hold metric(A) - metric(B) and its paired interval:
in each resample both sources were measured against the same target subset.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from fidlens.differences import long_table, paired_differences, read_draws
from fidlens.files import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="compute_metrics.py JSONs")
    parser.add_argument("--draws", nargs="+", required=True, help="their --draws CSVs")
    parser.add_argument("--json", required=True, help="the differences, with their intervals")
    parser.add_argument("--csv", required=True, help="long table: one row per difference")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    if len(args.metrics) != len(args.draws):
        logging.error("give one --draws file per --metrics file (%d vs %d)",
                      len(args.draws), len(args.metrics))  # fmt: skip
        return 1
    try:
        documents = [json.loads(Path(path).read_text()) for path in args.metrics]
        draws = [read_draws(path) for path in args.draws]
        document, rows = paired_differences(documents, draws, args.metrics)
    except (OSError, ValueError, KeyError) as error:
        logging.error("metric_differences: %s", error)
        return 1
    write_text_atomic(args.json, json.dumps(document, indent=2, sort_keys=True) + "\n")
    write_text_atomic(args.csv, long_table(rows).to_csv(index=False))
    clear = sum(row["excludes_zero"] for row in rows)
    logging.info("%d differences (%d intervals exclude 0) -> %s, %s", len(rows), clear,
                 args.json, args.csv)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
