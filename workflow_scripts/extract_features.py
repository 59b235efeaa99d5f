"""Extract features of one image folder or zip into an HDF5 cache.

python workflow_scripts/extract_features.py --images DIR_OR_ZIP --extractor NAME [--type TYPE]
    [--settings JSON] [--weights PATH|auto|random] [--fallback random] [--weights-dir DIR]
    [--preprocess MODE] [--batch-size N] [--device auto|cpu|cuda|cuda:N] [--allow-tf32]
    [--cpus N | --workers N --threads N] [--on-bad-image error|skip]
    [--resolution R] [--max-image-pixels N] [--include-hidden] [--dataset-name NAME]
    [--manifest FILE.tsv] --out FILE.h5

With --manifest (written by make_manifest.py), saved batches of an interrupted run are checked
against the manifest's content hashes, and so is every image read.

--cpus N is what the workflow passes: the N cores the job reserved, split between decoding
workers and torch threads by the device (fidlens.resources.split_extraction_cpus). With
--device cuda (or auto on a machine with GPUs) the job takes a free GPU (fidlens.gpus).
"""

import argparse
import json
import logging
import sys

import torch

from fidlens.datasets import (
    DEFAULT_MAX_PIXELS,
    BadImageError,
    log_left_out,
    open_source,
    read_manifest,
)
from fidlens.extract import ExtractionSettings, extract_features, resolve_device
from fidlens.extractors import available, build_extractor
from fidlens.gpus import release_process_claim
from fidlens.resources import split_extraction_cpus


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="image folder (recursive) or .zip")
    parser.add_argument("--extractor", required=True,
                        help="instance name, recorded in the cache (the type unless --type)")
    parser.add_argument("--type", default=None,
                        help=f"extractor type (default: --extractor): {', '.join(available())}")
    parser.add_argument("--settings", type=json.loads, default={},
                        help="the type's own settings as JSON, e.g. '{\"face_box\": \"detect\"}'")
    parser.add_argument("--weights", default="auto", help="file path, 'auto' or 'random'")
    parser.add_argument("--fallback", choices=["none", "random"], default="none",
                        help="what 'auto' does when the official file is missing")
    parser.add_argument("--weights-dir", default=None, help="project weights folder")
    parser.add_argument("--preprocess", default=None, help="preprocessing mode (extractor's)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=2, help="image decoding processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cpus", type=int, default=None,
                        help="cores reserved for the job: sets --workers and --threads")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let CUDA use TF32 in matrix products and convolutions (faster, "
                        "~1e-3 relative); stamped in the cache")
    parser.add_argument("--on-bad-image", choices=["error", "skip"], default="error")
    parser.add_argument("--resolution", type=int, default=None,
                        help="working resolution: resize to R x R (PIL bicubic, uint8) first")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="larger images (width x height) are bad images")
    parser.add_argument("--include-hidden", action="store_true",
                        help="count files and folders whose name starts with '.' as images")
    parser.add_argument("--dataset-name", default=None, help="name used in messages and attrs")
    parser.add_argument("--manifest", default=None, help="the dataset's manifest (.tsv)")
    parser.add_argument("--out", required=True, help="output .h5 file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    try:
        device = resolve_device(args.device)
        set_threads(args, device.type, log)
        source = open_source(args.images, args.dataset_name, args.include_hidden)
        manifest = read_manifest(args.manifest) if args.manifest else None
        log_left_out(source, log)
        extractor = build_extractor(
            args.type or args.extractor,
            name=args.extractor,
            settings=args.settings,
            weights=args.weights,
            preprocess=args.preprocess,
            fallback=None if args.fallback == "none" else args.fallback,
            weights_dir=args.weights_dir,
        )
        if extractor.cpu_only and device.type != "cpu":  # a network outside torch
            release_process_claim()
            device = torch.device("cpu")
            set_threads(args, device.type, log)
        settings = ExtractionSettings(
            batch_size=args.batch_size,
            device=str(device),
            allow_tf32=args.allow_tf32,
            workers=args.workers,
            on_bad_image=args.on_bad_image,
            resolution=args.resolution,
            max_pixels=args.max_image_pixels,
        )
        cache = extract_features(source, extractor, args.out, settings, args.dataset_name,
                                 manifest=manifest)
    except (BadImageError, FileNotFoundError, ValueError, RuntimeError) as error:
        log.error("%s", error)
        return 1
    log.info("wrote %s: %d x %d features (%s weights, %d skipped)", args.out,
             *cache.features.shape, cache.attrs["weights"], len(cache.skipped))
    return 0


def set_threads(args, device_type: str, log) -> None:
    """--cpus: the job's cores split between decoding workers and torch threads."""
    if args.cpus:
        args.workers, args.threads = split_extraction_cpus(args.cpus, device_type)
        log.info("%d cores: %d decoding workers, %d torch threads on %s", args.cpus,
                 args.workers, args.threads, device_type)
    if args.threads:
        torch.set_num_threads(args.threads)


if __name__ == "__main__":
    sys.exit(main())
