"""Contact sheets for a person to scan (seed 000 §3.1): a generated dataset's first seeds, or
the probes around each bad seed.

python workflow_scripts/inspection_sheets.py samples --latents FILE.h5 --images DIR --out DIR
    --dataset-name NAME [--first 1000] [--per-page 100] [--columns 10]
python workflow_scripts/inspection_sheets.py probes --latents FILE.h5 --images DIR --out DIR
    --dataset-name NAME [--columns 10]
"""

import argparse
import logging
import sys

from fidlens.generators.inspection import SHEET_DEFAULTS, probe_sheets, sample_sheets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["samples", "probes"])
    parser.add_argument("--latents", required=True, help="the dataset's latents file")
    parser.add_argument("--images", required=True, help="the dataset's image folder")
    parser.add_argument("--out", required=True, help="folder of the sheets")
    parser.add_argument("--dataset-name", required=True)
    parser.add_argument("--first", type=int, default=SHEET_DEFAULTS["first"])
    parser.add_argument("--per-page", type=int, default=SHEET_DEFAULTS["per_page"])
    parser.add_argument("--columns", type=int, default=SHEET_DEFAULTS["columns"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        if args.mode == "samples":
            sheets = sample_sheets(args.latents, args.images, args.out, args.dataset_name,
                                   args.first, args.per_page, args.columns)
        else:
            sheets = probe_sheets(args.latents, args.images, args.out, args.dataset_name,
                                  args.columns)
    except (OSError, ValueError, KeyError) as error:
        logging.error("%s", error)
        return 1
    logging.info("%d %s sheets of %s in %s", len(sheets), args.mode, args.dataset_name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
