"""Seed 001's Tables I-IV (and seed 000's Table 2) from the metric files, as Markdown and LaTeX.

python workflow_scripts/paper_tables.py --metrics A.json [B.json ...] [--kind NAME=real ...]
    [--discard-replace R.json ...] --markdown OUT.md --latex OUT.tex
"""

import argparse
import logging
import sys

from fidlens.paper_tables import parse_kinds, write_paper_tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="compute_metrics.py JSONs")
    parser.add_argument("--kind", action="append", default=[], metavar="NAME=KIND",
                        help="a source set's kind (real | generated; default generated)")
    parser.add_argument("--discard-replace", nargs="*", default=[],
                        help="discard_replace_fids.py JSONs: seed 000's Table 2")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--latex", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        tables = write_paper_tables(args.metrics, args.markdown, args.latex,
                                    kinds=parse_kinds(args.kind),
                                    discard_replace_files=args.discard_replace)
    except ValueError as error:
        logging.error("cannot make the paper tables: %s", error)
        return 1
    logging.info("wrote %d tables to %s and %s", len(tables), args.markdown, args.latex)
    return 0


if __name__ == "__main__":
    sys.exit(main())
