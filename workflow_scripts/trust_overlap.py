"""Byte-identical and near-identical images of a source set in a reference set, in every
extractor's feature space, and the memorisation sheet.

python workflow_scripts/trust_overlap.py --source-manifest A.tsv --reference-manifest B.tsv
    --extractors E... --source-caches A_E.h5... --reference-caches B_E.h5... [--layers L...]
    [--ratio 0.3] [--normalize l2|none] --source-images DIR --reference-images DIR
    [--source-hidden] [--reference-hidden] --source-name A --reference-name B
    [--sheet-images 8] [--selection random|closest] [--seed 0] [--threads N]
    --csv OVERLAP.csv --neighbours NEIGHBOURS.csv --json OVERLAP.json --sheet SHEET.png

Near-identical: the nearest reference image is closer than --ratio x the reference set's
median nearest-neighbour spacing (fidlens.trust). OVERLAP.csv lists every flagged image;
NEIGHBOURS.csv every source image's nearest reference image per extractor.
"""

import argparse
import sys

import torch

from fidlens.trust import NEAR_RATIO, overlap_job


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-manifest", required=True)
    parser.add_argument("--reference-manifest", required=True)
    parser.add_argument("--extractors", nargs="+", required=True, help="instance names")
    parser.add_argument("--source-caches", nargs="+", required=True, help="one per extractor")
    parser.add_argument("--reference-caches", nargs="+", required=True, help="one per extractor")
    parser.add_argument("--layers", nargs="+", default=None, help="pool or logits, per extractor")
    parser.add_argument("--ratio", type=float, default=NEAR_RATIO)
    parser.add_argument("--normalize", default="l2", choices=["l2", "none"])
    parser.add_argument("--source-images", required=True, help="the source's folder or zip")
    parser.add_argument("--reference-images", required=True)
    parser.add_argument("--source-hidden", action="store_true", help="its include_hidden")
    parser.add_argument("--reference-hidden", action="store_true")
    parser.add_argument("--source-name", required=True)
    parser.add_argument("--reference-name", required=True)
    parser.add_argument("--sheet-images", type=int, default=8)
    parser.add_argument("--selection", default="random", choices=["random", "closest"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--neighbours", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--sheet", required=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        document = overlap_job(
            args.source_manifest, args.reference_manifest, args.extractors,
            args.source_caches, args.reference_caches, args.source_images,
            args.reference_images, args.source_name, args.reference_name, args.ratio,
            args.normalize, args.layers, args.sheet_images, args.selection, args.seed,
            args.source_hidden, args.reference_hidden, csv=args.csv,
            neighbours_csv=args.neighbours, json_path=args.json, sheet=args.sheet,
        )  # fmt: skip
    except (OSError, ValueError) as error:
        print(f"trust_overlap: error: {error}", file=sys.stderr)
        return 1
    flagged = ", ".join(f"{row['extractor']}: {row['n_flagged']}" for row in document["summary"])
    print(
        f"{args.source_name} vs {args.reference_name}: flagged {flagged} -> {args.csv}, "
        f"{args.sheet}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
