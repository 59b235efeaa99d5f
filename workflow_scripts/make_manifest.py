"""Write a dataset's manifest: relative path, size and sha1 of every image, in dataset order.

python workflow_scripts/make_manifest.py --images DIR_OR_ZIP [--dataset-name NAME] --out FILE.tsv
"""

import argparse
import logging
import sys

from fidlens.datasets import manifest_rows, open_source, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="image folder (recursive) or .zip")
    parser.add_argument("--dataset-name", default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    try:
        source = open_source(args.images, args.dataset_name)
    except (FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 1
    if source.ignored:
        log.info("ignored %d non-image files:\n  %s", len(source.ignored),
                 "\n  ".join(source.ignored))
    write_manifest(manifest_rows(source), args.out)
    log.info("%s: %d images listed in %s", args.dataset_name or args.images, len(source),
             args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
