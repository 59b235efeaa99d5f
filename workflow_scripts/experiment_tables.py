"""Collect experiment results (or Inception Scores) into a long CSV and Markdown tables.

python workflow_scripts/experiment_tables.py --kind experiments|inception_score
    --results A.json [B.json ...] --csv FILE.csv --markdown FILE.md
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from fidlens.experiments.tables import (
    experiment_markdown,
    experiment_table,
    inception_score_markdown,
    inception_score_table,
)
from fidlens.files import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", required=True, choices=["experiments", "inception_score"])
    parser.add_argument("--results", nargs="+", required=True, help="result JSON files")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    docs = []
    for path in args.results:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            logging.error("cannot read %s: %s", path, error)
            return 1
    if args.kind == "experiments":
        table, markdown = experiment_table(docs), experiment_markdown(docs, args.results)
    else:
        table = inception_score_table(docs)
        markdown = inception_score_markdown(table)
    write_text_atomic(args.csv, table.to_csv(index=False))
    write_text_atomic(args.markdown, markdown)
    logging.info("wrote %s (%d rows) and %s", args.csv, len(table), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
