"""Download and verify official extractor weights into the project weights folder (online only).

python workflow_scripts/fetch_weights.py [--extractor NAME ...] [--weights-dir DIR]

Files are checked against their published sha256 (or the hash prefix in the file name), the
full sha256 is printed and written beside each file; a file already present and valid is kept.
Extractors without a download URL get instructions for where to put their file.
"""

import argparse
import logging
import sys

from fidlens.weight_specs import WEIGHTS_SPECS, default_weights_dir
from fidlens.weights_fetch import HashMismatchError, fetch_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", action="append", choices=sorted(WEIGHTS_SPECS),
                        help="extractor to fetch (repeatable; default: all)")
    parser.add_argument("--weights-dir", default=None,
                        help=f"weights folder (default: {default_weights_dir()})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        fetch_all(args.extractor, args.weights_dir)
    except (HashMismatchError, OSError) as error:
        print(f"fetch_weights: {error}\n(no internet here? run `make weights` on an online "
              "machine and copy its weights folder over, or set FIDLENS_WEIGHTS_DIR)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
