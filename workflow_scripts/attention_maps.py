"""Grad-CAM of FID for one (extractor, comparison): every source image's map and influence,
or the maps and swap FIDs of good/bad pairs.

python workflow_scripts/attention_maps.py maps --extractor NAME [extractor flags]
    --source NAME --source-cache S.h5 [--source-statistics S_STATS.h5] --images DIR_OR_ZIP
    --target NAME --target-cache T.h5 [--target-statistics T_STATS.h5]
    [--layer pool|logits] [--weighting abs|squared] [--normalize none|l2] [--batch-size N]
    [--device auto|cpu|cuda|cuda:N] [--allow-tf32] [--cpus N] --out MAPS.h5 --influence I.csv

python workflow_scripts/attention_maps.py pairs ... (as maps, without --images, --influence)
    --pairs PAIRS.csv --dataset NAME=DIR_OR_ZIP ... --good-cache NAME=CACHE.h5 ...
    --out PAIRS.h5 --table PAIRS_RESULT.csv

Extractor flags (as extract_features.py): --type, --settings JSON, --weights, --fallback,
--weights-dir, --preprocess. The statistics files are read for raw features; with
--normalize l2 the L2-normalised statistics are computed from the caches.
"""

import argparse
import json
import logging
import sys

import torch

from fidlens.attention import AttentionSettings, run_maps, run_pairs
from fidlens.datasets import BadImageError
from fidlens.resources import split_extraction_cpus


def name_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["maps", "pairs"])
    parser.add_argument("--extractor", required=True, help="instance name")
    parser.add_argument("--type", default=None, help="extractor type (default: --extractor)")
    parser.add_argument("--settings", type=json.loads, default={}, help="the type's settings")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--fallback", choices=["none", "random"], default="none")
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--preprocess", default=None)
    parser.add_argument("--source", required=True, help="source (generated) dataset name")
    parser.add_argument("--source-cache", required=True)
    parser.add_argument("--source-statistics", default=None)
    parser.add_argument("--images", default=None, help="maps: the source dataset's images")
    parser.add_argument("--target", required=True, help="target (real) dataset name")
    parser.add_argument("--target-cache", required=True)
    parser.add_argument("--target-statistics", default=None)
    parser.add_argument("--layer", choices=["pool", "logits"], default="pool")
    parser.add_argument("--weighting", choices=["abs", "squared"], default="abs")
    parser.add_argument("--normalize", choices=["none", "l2"], default="none")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--allow-tf32", action="store_true")
    parser.add_argument("--cpus", type=int, default=1, help="cores: decoding workers + threads")
    parser.add_argument("--pairs", default=None, help="pairs: the pair file")
    parser.add_argument("--dataset", type=name_path, action="append", default=[],
                        help="pairs: NAME=PATH of every dataset a pair names")
    parser.add_argument("--good-cache", type=name_path, action="append", default=[],
                        help="pairs: NAME=CACHE of every good dataset")
    parser.add_argument("--out", required=True, help="HDF5 to write")
    parser.add_argument("--influence", default=None, help="maps: influence CSV to write")
    parser.add_argument("--table", default=None, help="pairs: pairs CSV to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("fidlens")
    needed = ("images", "influence") if args.mode == "maps" else ("pairs", "table")
    missing = [f"--{name}" for name in needed if getattr(args, name) is None]
    if missing:
        parser.error(f"{args.mode} needs {', '.join(missing)}")
    device_type = "cuda" if args.device.startswith("cuda") or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    workers, threads = split_extraction_cpus(args.cpus, device_type)
    torch.set_num_threads(threads)
    settings = AttentionSettings(
        weighting=args.weighting, normalize=args.normalize, layer=args.layer,
        batch_size=args.batch_size, device=args.device, allow_tf32=args.allow_tf32,
        workers=workers,
    )
    extractor = dict(
        type_name=args.type or args.extractor, name=args.extractor, settings=args.settings,
        weights=args.weights, preprocess=args.preprocess,
        fallback=None if args.fallback == "none" else args.fallback,
        weights_dir=args.weights_dir,
    )
    target = (args.target, args.target_cache, args.target_statistics)
    try:
        if args.mode == "maps":
            result = run_maps(
                extractor, (args.source, args.source_cache, args.source_statistics, args.images),
                target, settings, args.out, args.influence)
            log.info("%s %s -> %s: FID %.6g; %d maps %s; influence in %s", args.extractor,
                     args.source, args.target, result.fid, len(result.paths),
                     result.maps.grids.shape[1:], args.influence)
        else:
            result = run_pairs(
                extractor, args.pairs, (args.source, args.source_cache, args.source_statistics),
                target, dict(args.good_cache), dict(args.dataset), settings, args.out,
                args.table)
            log.info("%s %s -> %s: %d pairs, FID %.6g, swapped %s", args.extractor, args.source,
                     args.target, len(result.pairs), result.fid, result.fid_swapped)
    except (BadImageError, FileNotFoundError, ValueError, RuntimeError) as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
