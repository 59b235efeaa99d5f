"""Convert a person's good/bad pairs (good_probe,bad_probe probe ids, or the pair-file schema)
into the pair-file schema that discard / replace and the attention pair sheets read, with the
Table 1 row of the generator.

python workflow_scripts/inspection_pairs.py --pairs FILE.csv --generated-name NAME
    --generated-latents FILE.h5 [--probes-name NAME --probes-latents FILE.h5] [--model TEXT]
    [--dataset-label TEXT] [--first K] --out-csv PAIRS.csv --out-json PAIRS.json
"""

import argparse
import logging
import sys

from fidlens.generators.inspection import write_inspection_pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="the person's pair file")
    parser.add_argument("--generated-name", required=True)
    parser.add_argument("--generated-latents", required=True)
    parser.add_argument("--probes-name", default=None)
    parser.add_argument("--probes-latents", default=None)
    parser.add_argument("--model", default=None, help="Table 1's Model (default: the generator)")
    parser.add_argument("--dataset-label", default=None,
                        help="Table 1's Dataset (default: the generated dataset's name)")
    parser.add_argument("--first", type=int, default=None, help="samples on the sample sheets")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-json", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        about = write_inspection_pairs(args.pairs, args.out_csv, args.out_json,
                                       args.generated_name, args.generated_latents,
                                       args.probes_name, args.probes_latents, args.model,
                                       args.dataset_label, args.first)
    except (OSError, ValueError, KeyError) as error:
        logging.error("%s", error)
        return 1
    logging.info("%d pairs (%s) -> %s", about["pairs"], about["format"], args.out_csv)
    if about["ground_truth"]:
        logging.info("ground truth: %s", about["ground_truth"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
