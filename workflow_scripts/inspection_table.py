"""Seed 000 Table 1 (picked pairs per model and dataset) from the converted pairs' JSON files.

python workflow_scripts/inspection_table.py --pairs-json A.json [B.json ...] --csv OUT.csv
    --markdown OUT.md
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from fidlens.files import write_text_atomic
from fidlens.generators.inspection import table1_csv, table1_markdown


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-json", nargs="+", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    abouts = [json.loads(Path(path).read_text()) for path in args.pairs_json]
    write_text_atomic(args.csv, table1_csv(abouts))
    write_text_atomic(args.markdown, table1_markdown(abouts))
    logging.info("Table 1: %d generator(s), %d pairs", len(abouts),
                 sum(a["pairs"] for a in abouts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
