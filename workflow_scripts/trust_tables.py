"""The study-wide trust tables: overlap (from trust_overlap.py's JSONs) or sample size (from
fd_infinity.py's JSONs), as CSV and Markdown.

python workflow_scripts/trust_tables.py --kind overlap|sample_size --inputs FILE.json...
    --csv TABLE.csv --markdown TABLE.md
"""

import argparse
import sys

from fidlens.trust import tables_job


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", required=True, choices=["overlap", "sample_size"])
    parser.add_argument("--inputs", nargs="*", default=[])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args(argv)
    try:
        frame = tables_job(args.kind, args.inputs, args.csv, args.markdown)
    except (OSError, ValueError, KeyError) as error:
        print(f"trust_tables: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{len(args.inputs)} files, {len(frame)} rows -> {args.csv}, {args.markdown}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
