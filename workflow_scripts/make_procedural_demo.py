"""Write the procedural demo generator's "training set" for the discard / replace experiment.

python workflow_scripts/make_procedural_demo.py --out-dir DIR [--train 200] [--resolution 64]
    [--truncation-psi 1.0]

DIR/train_procedural/ (the generator's non-defective region), its latents file
DIR/train_procedural_latents.h5 and DIR/procedural.json. Drawn on the CPU, so the images are
the same on every machine. The demo's generated set gen_procedural is a generator-declared
dataset (rules/generate.smk).
"""

import argparse
import logging
import sys

from fidlens.generators.demo import write_procedural_demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--train", type=int, default=200, help="images of train_procedural")
    parser.add_argument("--resolution", type=int, default=64, help="image side, px")
    parser.add_argument("--truncation-psi", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    about = write_procedural_demo(args.out_dir, args.train, args.resolution,
                                  args.truncation_psi, device="cpu")
    for name, entry in about["datasets"].items():
        logging.info("%s: %d images (%d in the defective region), seeds %s", name,
                     entry["images"], entry["defective"], entry["seeds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
