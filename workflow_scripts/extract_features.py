"""Extract features of one image folder or zip into an HDF5 cache.

python workflow_scripts/extract_features.py --images DIR_OR_ZIP --extractor NAME
    [--weights PATH|auto|random] [--fallback random] [--weights-dir DIR] [--preprocess MODE]
    [--batch-size N] [--device auto|cpu|cuda] [--workers N] [--on-bad-image error|skip]
    [--resolution R] [--dataset-name NAME] --out FILE.h5
"""

import argparse
import logging
import sys

import torch

from fidlens.datasets import BadImageError, open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import available, build_extractor


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="image folder (recursive) or .zip")
    parser.add_argument("--extractor", required=True, choices=available())
    parser.add_argument("--weights", default="auto", help="file path, 'auto' or 'random'")
    parser.add_argument("--fallback", choices=["none", "random"], default="none",
                        help="what 'auto' does when the official file is missing")
    parser.add_argument("--weights-dir", default=None, help="project weights folder")
    parser.add_argument("--preprocess", default=None, help="preprocessing mode (extractor's)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=2, help="image decoding processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--on-bad-image", choices=["error", "skip"], default="error")
    parser.add_argument("--resolution", type=int, default=None,
                        help="working resolution: resize to R x R (PIL bicubic, uint8) first")
    parser.add_argument("--dataset-name", default=None, help="name used in messages and attrs")
    parser.add_argument("--out", required=True, help="output .h5 file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        source = open_source(args.images, args.dataset_name)
        if source.ignored:
            log.info("ignored %d non-image files in %s:\n  %s", len(source.ignored), args.images,
                     "\n  ".join(source.ignored))
        extractor = build_extractor(
            args.extractor,
            weights=args.weights,
            preprocess=args.preprocess,
            fallback=None if args.fallback == "none" else args.fallback,
            weights_dir=args.weights_dir,
        )
        settings = ExtractionSettings(
            batch_size=args.batch_size,
            device=args.device,
            workers=args.workers,
            on_bad_image=args.on_bad_image,
            resolution=args.resolution,
        )
        cache = extract_features(source, extractor, args.out, settings, args.dataset_name)
    except (BadImageError, FileNotFoundError, ValueError, RuntimeError) as error:
        log.error("%s", error)
        return 1
    log.info("wrote %s: %d x %d features (%s weights, %d skipped)", args.out,
             *cache.features.shape, cache.attrs["weights"], len(cache.skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
