"""Seed 000 Table 2 for one extractor: one row per (training set, generated set).

python workflow_scripts/discard_replace_table.py --results A.json B.json ... --csv OUT.csv
    --markdown OUT.md
"""

import argparse
import json
import sys
from pathlib import Path

from fidlens.experiments.discard_replace import table_csv, table_markdown
from fidlens.files import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args(argv)
    results = [json.loads(Path(path).read_text()) for path in args.results]
    write_text_atomic(args.csv, table_csv(results))
    write_text_atomic(args.markdown, table_markdown(results, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
