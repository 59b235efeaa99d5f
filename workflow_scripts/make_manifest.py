"""Write a dataset's manifest: relative path, size and sha1 of every image, in dataset order.

python workflow_scripts/make_manifest.py --images DIR_OR_ZIP [--dataset-name NAME]
    [--include-hidden] --out FILE.tsv

Files left out (hidden, not images, broken links) are listed as `# left out` comment lines.
"""

import argparse
import logging
import sys

from fidlens.datasets import log_left_out, manifest_rows, open_source, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="image folder (recursive) or .zip")
    parser.add_argument("--dataset-name", default=None)
    parser.add_argument("--include-hidden", action="store_true",
                        help="count files and folders whose name starts with '.' as images")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    try:
        source = open_source(args.images, args.dataset_name, args.include_hidden)
    except (FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 1
    log_left_out(source, log)
    write_manifest(manifest_rows(source), args.out, source.left_out())
    log.info("%s: %d images listed in %s", args.dataset_name or args.images, len(source),
             args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
