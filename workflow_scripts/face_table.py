"""Collect face-detection summaries (detect_faces.py JSONs) into one CSV and a Markdown table.

python workflow_scripts/face_table.py --summaries A.json [B.json ...] --csv FILE.csv
    --markdown FILE.md
"""

import argparse
import logging
import sys

from fidlens.faces import write_face_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summaries", nargs="+", required=True, help="detect_faces.py JSONs")
    parser.add_argument("--csv", required=True,
                        help="one row per dataset and detector: n_images, n_with_face, rate")
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        write_face_table(args.summaries, args.csv, args.markdown)
    except (OSError, ValueError, KeyError) as error:
        logging.error("cannot make the face-detection table: %s", error)
        return 1
    logging.info("wrote %s and %s", args.csv, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
