"""Collect metric JSON files into a long CSV and paper-style Markdown tables.

python workflow_scripts/make_tables.py --metrics A.json [B.json ...] --csv FILE.csv
    --markdown FILE.md
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from fidlens.files import write_text_atomic
from fidlens.tables import RANDOM_INIT, long_table, markdown_report, metric_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="compute_metrics.py JSONs")
    parser.add_argument("--csv", required=True, help="long table: one row per number")
    parser.add_argument("--markdown", required=True, help="paper-style tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    rows = []
    for path in args.metrics:
        try:
            rows += metric_rows(json.loads(Path(path).read_text()), metrics_file=path)
        except (OSError, ValueError) as error:
            logging.error("cannot read metric file %s: %s", path, error)
            return 1
    table = long_table(rows)
    write_text_atomic(args.csv, table.to_csv(index=False))
    write_text_atomic(args.markdown, markdown_report(table, sources=args.metrics))
    random_rows = int((table["weights"] == RANDOM_INIT).sum())
    if random_rows:
        logging.warning(
            "%d of %d numbers come from random-init weights (marked in the tables)",
            random_rows,
            len(table),
        )
    logging.info("wrote %s (%d rows) and %s", args.csv, len(table), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
