"""Write the embedded demo's datasets: real_a / real_b faces and defective copies of real_a.

python workflow_scripts/make_demo_data.py --out-dir DIR [--size 128] [--seed 0]
    [--generated NAME=STRENGTH ...] [--pairs PAIRS.csv]

--pairs writes the demo's good/bad pair file (fidlens.pairs): each image of the strongest
generated set with the real_a image it was made from.
"""

import argparse
import logging
import sys

from fidlens.demo import demo_pairs, describe_demo, load_lfw_faces, make_demo_sets, write_demo
from fidlens.pairs import write_pairs


def parse_strength(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=STRENGTH, got {text!r}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True, help="one subfolder per dataset is written")
    parser.add_argument("--size", type=int, default=128, help="side of the upscaled faces (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--generated",
        nargs="*",
        type=parse_strength,
        default=[],
        metavar="NAME=STRENGTH",
        help="defective copies of real_a to make",
    )
    parser.add_argument("--pairs", default=None, help="pair file to write (good/bad pairs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    generated = dict(args.generated)
    sets = make_demo_sets(load_lfw_faces(), args.size, args.seed, generated)
    write_demo(args.out_dir, sets, describe_demo(sets, args.size, args.seed, generated))
    if args.pairs:
        pairs = demo_pairs(sets, generated)
        write_pairs(args.pairs, pairs)
        logging.info("%d good/bad pairs in %s", len(pairs), args.pairs)
    for name, files in sets.items():
        logging.info("%s: %d images in %s/%s", name, len(files), args.out_dir, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
