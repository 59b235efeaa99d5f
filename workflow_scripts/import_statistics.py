"""Import a target given only as statistics (pytorch-fid / clean-fid .npz, or ours), checked
against the extractor instance it is declared for, into our statistics format.

python workflow_scripts/import_statistics.py --file FILE --format pytorch-fid|clean-fid|fidlens
    --instance NAME --type TYPE [--settings JSON] [--weights W] [--fallback F]
    [--weights-dir DIR] [--preprocess MODE] [--layer pool|logits] --name TARGET --out STATS.h5

A file that records fidlens provenance must match the instance (extractor type, layer,
preprocessing, own settings, weights sha256 or random-init seed): a mismatch is an error
naming each setting. Other tools' files record none; their dimension is checked, and for
clean-fid names the Inception mode, and the log says what was taken on trust.
"""

import argparse
import sys

from fidlens.extractors import get_type
from fidlens.interop import (
    add_instance_arguments,
    check_imported_statistics,
    expected_from_arguments,
)
from fidlens.statistics import write_statistics
from fidlens.stats_io import FORMATS, import_statistics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, help="the statistics file")
    parser.add_argument("--format", required=True, choices=FORMATS)
    add_instance_arguments(parser)
    parser.add_argument("--layer", default="pool", choices=["pool", "logits"])
    parser.add_argument("--name", required=True, help="the target's name")
    parser.add_argument("--out", required=True, help="statistics file to write (.h5)")
    args = parser.parse_args(argv)
    try:
        stats = import_statistics(args.file, args.format)
        kind = get_type(args.type)
        dim = kind.logits_dim if args.layer == "logits" else kind.feature_dim
        expected = expected_from_arguments(args, check_resolution=False)
        notes = check_imported_statistics(stats, expected, args.instance, dim)
        if stats.attrs.get("provenance") == "unknown":
            # another tool's file: its layer is the one the config declares
            stats.layer = stats.attrs["layer"] = args.layer
        elif stats.layer != args.layer:
            raise ValueError(f"{args.file}: statistics of layer {stats.layer!r}, but "
                             f"{args.instance}'s metrics read layer {args.layer!r}")  # fmt: skip
    except (OSError, ValueError) as error:
        print(f"import_statistics: error: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"WARNING: {note}", file=sys.stderr)
    stats.attrs.update(dataset=args.name, imported_for=args.instance)
    write_statistics(args.out, stats)
    print(
        f"{args.file} ({args.format}, D = {stats.dim}, N = {stats.n or 'not recorded'}) "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
