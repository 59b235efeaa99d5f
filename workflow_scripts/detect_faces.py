"""Face-detection rate of one dataset: dlib's HOG detector and MTCNN on every image.

python workflow_scripts/detect_faces.py --images DIR_OR_ZIP [--dataset-name NAME]
    [--manifest FILE.tsv] [--include-hidden] [--detectors dlib,mtcnn] [--dlib-upsample 1]
    [--mtcnn-min-face-size 20] [--resolution R] [--max-image-pixels N]
    [--on-bad-image error|skip] [--workers N] --json FILE.json --csv FILE.csv

The JSON holds the rate per detector, the images where it found no face, the settings and
the detectors' model files and versions; the CSV one row per image.
"""

import argparse
import logging
import sys

from fidlens.datasets import (
    DEFAULT_MAX_PIXELS,
    BadImageError,
    log_left_out,
    open_source,
    read_manifest,
)
from fidlens.faces import DETECTORS, FaceDetectionSettings, detect_dataset, write_detection


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="image folder (recursive) or .zip")
    parser.add_argument("--dataset-name", default=None)
    parser.add_argument("--manifest", default=None, help="the dataset's manifest (.tsv)")
    parser.add_argument("--include-hidden", action="store_true",
                        help="count files and folders whose name starts with '.' as images")
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help=f"comma-separated, some of {', '.join(DETECTORS)}")
    parser.add_argument("--dlib-upsample", type=int, default=1)
    parser.add_argument("--mtcnn-min-face-size", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=None,
                        help="working resolution: resize to R x R (PIL bicubic, uint8) first")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--on-bad-image", choices=["error", "skip"], default="error")
    parser.add_argument("--workers", type=int, default=1, help="detection processes")
    parser.add_argument("--json", required=True, help="summary per detector")
    parser.add_argument("--csv", required=True, help="one row per image")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    try:
        settings = FaceDetectionSettings(
            detectors=tuple(name for name in args.detectors.split(",") if name),
            dlib_upsample=args.dlib_upsample,
            mtcnn_min_face_size=args.mtcnn_min_face_size,
            resolution=args.resolution,
            max_pixels=args.max_image_pixels,
            on_bad_image=args.on_bad_image,
        )
        source = open_source(args.images, args.dataset_name, args.include_hidden)
        log_left_out(source, log)
        manifest = read_manifest(args.manifest) if args.manifest else None
        if manifest is not None and [row.path for row in manifest] != source.images:
            raise ValueError(f"{args.manifest} does not list the images of {args.images}")
        result = detect_dataset(
            source, settings, args.dataset_name, workers=args.workers,
            manifest_sha1=[row.sha1 for row in manifest] if manifest else None,
        )
    except (BadImageError, FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 1
    summary = write_detection(result, args.json, args.csv)
    for name, found in summary["detectors"].items():
        log.info("%s: %s finds a face in %d of %d images (%.3f)", summary["dataset"], name,
                 found["n_with_face"], summary["n_images"], found["rate"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
