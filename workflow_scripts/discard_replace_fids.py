"""Seed 000 Table 2's five FIDs of one generated dataset for one extractor.

python workflow_scripts/discard_replace_fids.py --selection FILE.csv [--about FILE.json]
    --generated GEN.h5 --train TRAIN.h5 --replacements REPL.h5 [--layer pool|logits]
    [--generated-name NAME] [--train-name NAME] [--allow-mixed] [--threads N] --out FILE.json

FID, FID_Replace, FID_Delete, FID_Sub_Good and FID_Sub_Bad against the training set's
features, from the three feature caches and the selection CSV.
"""

import argparse
import json
import logging
import sys

from fidlens.experiments.discard_replace import KEYS, discard_replace_fids
from fidlens.files import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selection", required=True)
    parser.add_argument("--about", default=None, help="the selection's JSON summary")
    parser.add_argument("--generated", required=True, help="the generated set's cache")
    parser.add_argument("--train", required=True, help="the training set's cache")
    parser.add_argument("--replacements", required=True, help="the replacements' cache")
    parser.add_argument("--layer", choices=["pool", "logits"], default="pool")
    parser.add_argument("--generated-name", default=None)
    parser.add_argument("--train-name", default=None)
    parser.add_argument("--allow-mixed", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    from threadpoolctl import threadpool_limits

    try:
        # FID runs on numpy / SciPy, not torch: --threads caps the BLAS (None: every core)
        with threadpool_limits(args.threads):
            result = discard_replace_fids(args.selection, args.generated, args.train,
                                          args.replacements, args.about, args.layer,
                                          args.generated_name, args.train_name, args.allow_mixed)
    except (OSError, ValueError, KeyError) as error:
        logging.error("%s", error)
        return 1
    write_text_atomic(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    logging.info("%s", ", ".join(f"{key} {result[key]:.3f}" for key in KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
