"""Draw a generated dataset: a generator's PNGs of a seed range and their latents file.

python workflow_scripts/generate_dataset.py --out DIR --latents FILE.h5 --dataset-name NAME
    --seeds 0-199 [--adapter procedural|stylegan] [--network FILE.pkl] [--trust-pickle]
    [--truncation-psi 1.0] [--class-label C] [--resolution R] [--batch-size 32]
    [--device auto|cpu|cuda|cuda:N] [--threads N]

Keeps every PNG of DIR drawn with the same settings (its `fidlens` tag), draws the missing
seeds and removes the generator's PNGs of seeds no longer asked for (fidlens.generators.dataset).
"""

import argparse
import logging
import sys

from fidlens.generators.dataset import add_generator_arguments, generate_dataset, generator_spec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the dataset's image folder")
    parser.add_argument("--latents", required=True, help="the latents file to write (HDF5)")
    parser.add_argument("--dataset-name", required=True)
    parser.add_argument("--seeds", required=True, help="seeds and ranges, e.g. 0-199,500")
    add_generator_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        summary = generate_dataset(args.out, args.latents, generator_spec(args, args.seeds),
                                   args.dataset_name, device=args.device)
    except (OSError, ValueError, RuntimeError) as error:
        logging.error("%s", error)
        return 1
    logging.info("%s: %d images of seeds %s in %s: %d kept, %d drawn, %d removed",
                 args.dataset_name, summary["images"], summary["seeds"], args.out, summary["kept"],
                 summary["generated"], summary["removed"])
    if "defective" in summary:
        logging.info("ground truth: %d in the generator's known defective region",
                     summary["defective"])
    logging.info("generator: %s", summary["generator"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
