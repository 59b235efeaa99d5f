"""Pictures of FID attention from the maps' files (fidlens.plots_attention).

python workflow_scripts/attention_plots.py comparison --maps MAPS.h5 --images DIR_OR_ZIP
    [--sample 16|all] [--top-k 8] --heatmaps DIR --overlays DIR --average PNG --sheet PNG
    --influence PNG
python workflow_scripts/attention_plots.py pairs --pairs PAIRS.h5 --dataset NAME=DIR ... --out PNG
python workflow_scripts/attention_plots.py figure --maps A.h5 B.h5 ... --images DIR --out PNG
"""

import argparse
import logging
import sys

from fidlens.datasets import BadImageError
from fidlens.plots_attention import draw_average_figure, draw_comparison, draw_pairs


def name_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def sample(text: str):
    if text == "all":
        return text
    try:
        value = int(text)
        if value < 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 0 or all, got {text!r}") from None
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["comparison", "pairs", "figure"])
    parser.add_argument("--maps", nargs="+", default=[], help="attention HDF5 file(s)")
    parser.add_argument("--pairs", default=None, help="pairs HDF5 file")
    parser.add_argument("--images", default=None, help="the source dataset's images")
    parser.add_argument("--dataset", type=name_path, action="append", default=[])
    parser.add_argument("--sample", type=sample, default=16)
    parser.add_argument("--top-k", type=int, default=8)
    for name in ("heatmaps", "overlays", "average", "sheet", "influence", "out"):
        parser.add_argument(f"--{name}", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    needed = {
        "comparison": ("maps", "images", "heatmaps", "overlays", "average", "sheet",
                       "influence"),
        "pairs": ("pairs", "out"),
        "figure": ("maps", "images", "out"),
    }[args.kind]
    missing = [f"--{name}" for name in needed if not getattr(args, name)]
    if missing:
        parser.error(f"{args.kind} needs {', '.join(missing)}")
    try:
        if args.kind == "comparison":
            if len(args.maps) != 1:
                parser.error("comparison takes one --maps file")
            counts = draw_comparison(
                args.maps[0], args.images, sample=args.sample, top_k=args.top_k,
                heatmaps=args.heatmaps, overlays=args.overlays, average=args.average,
                sheet=args.sheet, influence=args.influence)
            log.info("%s: %s", args.maps[0], counts)
        elif args.kind == "pairs":
            log.info("%s: %d pairs drawn in %s", args.pairs,
                     draw_pairs(args.pairs, dict(args.dataset), args.out), args.out)
        else:
            draw_average_figure(args.maps, args.images, args.out)
            log.info("averaged maps of %d extractors in %s", len(args.maps), args.out)
    except (BadImageError, FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
