"""Figures of one comparison's PaCMAP maps: a scatter per extractor and seed 001's grid.

python workflow_scripts/embed_figures.py --csvs A.csv B.csv --jsons A.json B.json
    --scatters A.png B.png --grid GRID.png

The i-th CSV and JSON (written by embed_features.py, one extractor each) give the i-th scatter;
the grid has a column per extractor, in the order given, and a row per normalisation.
"""

import argparse
import sys

from fidlens.embedding_plots import comparison_figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csvs", nargs="+", required=True)
    parser.add_argument("--jsons", nargs="+", required=True)
    parser.add_argument("--scatters", nargs="+", required=True)
    parser.add_argument("--grid", required=True)
    args = parser.parse_args(argv)
    try:
        comparison_figures(args.csvs, args.jsons, args.scatters, args.grid)
    except (OSError, ValueError, KeyError) as error:
        print(f"embed_figures: error: {error}", file=sys.stderr)
        return 1
    print(f"{len(args.scatters)} scatters and {args.grid}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
