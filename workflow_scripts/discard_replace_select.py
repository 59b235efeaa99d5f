"""Seed 000 §3.2 for one generated dataset: select the images closest to the pair file's bad
examples in w space and draw their replacements.

python workflow_scripts/discard_replace_select.py --images DIR_OR_ZIP [--manifest FILE.tsv]
    --latents FILE.h5 --pairs FILE.csv [--pair-latents NAME=FILE.h5 ...]
    --dataset-name NAME [--fraction 0.015]
    [--adapter procedural|stylegan] [--network FILE.pkl] [--trust-pickle]
    [--truncation-psi 1.0] [--resolution R] [--device auto|cpu|cuda|cuda:N] [--batch-size 32]
    [--threads N] --replacements DIR --replacement-latents FILE.h5 --selection FILE.csv
    --about FILE.json --sheet FILE.png

Selected: the fraction (at least 2) with the smallest d_i = ||w_i - mean(W_bad)|| -
||w_i - mean(W_good)||; replacement w' = w + mean(W_good) - mean(W_bad). A StyleGAN pickle is
unpickled only with --trust-pickle and NVlabs' dnnlib / torch_utils on PYTHONPATH.
"""

import argparse
import logging
import sys

import torch

from fidlens.datasets import DatasetError
from fidlens.experiments.discard_replace import DEFAULT_FRACTION, run_selection


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="the generated dataset")
    parser.add_argument("--manifest", default=None, help="its manifest (.tsv)")
    parser.add_argument("--latents", required=True, help="its per-image w (HDF5)")
    parser.add_argument("--pairs", required=True, help="good/bad pair file (CSV)")
    parser.add_argument("--pair-latents", action="append", default=[], metavar="NAME=FILE",
                        help="latents of another dataset the pairs name (e.g. probes)")
    parser.add_argument("--dataset-name", required=True)
    parser.add_argument("--fraction", type=float, default=DEFAULT_FRACTION)
    parser.add_argument("--adapter", choices=["procedural", "stylegan"], default="procedural")
    parser.add_argument("--network", default=None, help="stylegan: the network pickle")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow unpickling the network (it runs code)")
    parser.add_argument("--truncation-psi", type=float, default=1.0,
                        help="the psi the set was drawn with (checked against the latents)")
    parser.add_argument("--resolution", type=int, default=None, help="image side, px")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    for name in ("replacements", "replacement-latents", "selection", "about", "sheet"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = {"adapter": args.adapter, "network": args.network, "trust_pickle": args.trust_pickle,
            "truncation_psi": args.truncation_psi, "resolution": args.resolution}
    out = {"replacements": args.replacements, "replacement_latents": args.replacement_latents,
           "selection": args.selection, "about": args.about, "sheet": args.sheet}
    try:
        pair_latents = dict(text.split("=", 1) for text in args.pair_latents)
        summary = run_selection(args.images, args.latents, args.pairs, spec, out,
                                args.dataset_name, args.manifest, args.fraction, args.device,
                                args.batch_size, pair_latents)
    except (OSError, ValueError, KeyError, RuntimeError, DatasetError) as error:
        logging.error("%s", error)
        return 1
    logging.info("%s", summary["rule"])
    if "ground_truth" in summary:
        logging.info("ground truth: %s", summary["ground_truth"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
