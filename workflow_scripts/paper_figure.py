"""One target's metrics figure: every metric with its interval per extractor and source, raw
vs L2-normalised.

python workflow_scripts/paper_figure.py --metrics A.json [B.json ...] --target NAME
    [--kind NAME=real ...] --out FIGURE.png
"""

import argparse
import logging
import sys

from fidlens.paper_figures import write_metrics_figure
from fidlens.paper_tables import parse_kinds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="compute_metrics.py JSONs")
    parser.add_argument("--target", required=True, help="the target whose comparisons to plot")
    parser.add_argument("--kind", action="append", default=[], metavar="NAME=KIND",
                        help="a source set's kind (real | generated; default generated)")
    parser.add_argument("--out", required=True, help="PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        write_metrics_figure(args.metrics, args.target, args.out, kinds=parse_kinds(args.kind))
    except ValueError as error:
        logging.error("cannot draw the metrics figure of %s: %s", args.target, error)
        return 1
    logging.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
