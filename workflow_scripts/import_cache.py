"""Use a feature cache made elsewhere: check it against this configuration and this machine's
images, then copy it into the workflow's cache folder.

python workflow_scripts/import_cache.py --cache SHARED.h5 --manifest MANIFEST.tsv
    --instance NAME --type TYPE [--settings JSON] [--weights W] [--fallback F]
    [--weights-dir DIR] [--preprocess MODE] [--resolution R|native] --out FEATURES.h5

Checked: every array's stored sha256; the provenance (extractor type, feature layer,
preprocessing, own settings, weights sha256 or random-init seed, resolution) against what the
instance makes here; the images (paths and sha1) against the manifest. Any difference is an
error naming it; nothing is copied then.
"""

import argparse
import sys

from fidlens.datasets import read_manifest
from fidlens.interop import add_instance_arguments, expected_from_arguments, import_cache


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="the shared cache (.h5)")
    parser.add_argument("--manifest", required=True, help="this machine's manifest of the dataset")
    add_instance_arguments(parser)
    parser.add_argument("--resolution", default="native", help="the dataset's working resolution")
    parser.add_argument("--out", required=True, help="the cache to write (.h5)")
    args = parser.parse_args(argv)
    try:
        expected = expected_from_arguments(args, resolution=args.resolution)
        summary = import_cache(
            args.cache, args.out, expected, args.instance, read_manifest(args.manifest)
        )
    except (OSError, ValueError) as error:
        print(f"import_cache: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.cache}: {summary['n']} rows; checked {'; '.join(summary['checks'])} -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
