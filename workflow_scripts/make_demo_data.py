"""Write the embedded demo's datasets: real_a / real_b faces and defective copies of real_a.

python workflow_scripts/make_demo_data.py --out-dir DIR [--size 128] [--seed 0]
    [--generated NAME=STRENGTH ...]
"""

import argparse
import logging
import sys

from fidlens.demo import describe_demo, load_lfw_faces, make_demo_sets, write_demo


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    generated = dict(args.generated)
    sets = make_demo_sets(load_lfw_faces(), args.size, args.seed, generated)
    write_demo(args.out_dir, sets, describe_demo(sets, args.size, args.seed, generated))
    for name, files in sets.items():
        logging.info("%s: %d images in %s/%s", name, len(files), args.out_dir, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
