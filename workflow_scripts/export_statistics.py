"""Export one per-dataset statistics file in pytorch-fid's or clean-fid's format.

python workflow_scripts/export_statistics.py --statistics STATS.h5 --format pytorch-fid
    --name DATASET --out FILE.npz
python workflow_scripts/export_statistics.py --statistics STATS.h5 --cache FEATURES.h5
    --format clean-fid --name DATASET --out FOLDER

pytorch-fid: an .npz with mu and sigma (and fidlens_provenance), for
`python -m pytorch_fid FILE.npz ...`. clean-fid: a folder with clean-fid's custom statistics
and KID files of DATASET, named as its make_custom_stats names them; copy both into clean-fid's
stats folder (`<site-packages>/cleanfid/stats/`) and use `dataset_name=DATASET,
dataset_split="custom"` and the mode in the file name.
"""

import argparse
import sys

from fidlens.statistics import read_layer, read_statistics
from fidlens.stats_io import export_clean_fid, export_pytorch_fid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statistics", required=True, help="a results/statistics/ .h5 file")
    parser.add_argument("--cache", default=None, help="its feature cache (clean-fid's KID file)")
    parser.add_argument("--format", required=True, choices=["pytorch-fid", "clean-fid"])
    parser.add_argument("--name", required=True, help="the dataset's name (clean-fid's file names)")
    parser.add_argument("--out", required=True, help="the .npz (pytorch-fid) or folder (clean-fid)")
    args = parser.parse_args(argv)
    try:
        stats = read_statistics(args.statistics)
        if args.format == "pytorch-fid":
            export_pytorch_fid(stats, args.out)
            written = [args.out]
        else:
            if args.cache is None:
                parser.error("--format clean-fid needs --cache (the KID file holds the features)")
            _, features = read_layer(args.cache, stats.layer)
            written = export_clean_fid(stats, features, args.out, args.name)
    except (OSError, ValueError) as error:
        print(f"export_statistics: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.statistics} (N = {stats.n}, D = {stats.dim}) -> " + ", ".join(map(str, written)),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
