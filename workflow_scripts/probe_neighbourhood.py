"""Draw the probes around a generated dataset's recorded bad seeds (seed 000 §3.1).

python workflow_scripts/probe_neighbourhood.py --out DIR --latents FILE.h5 --dataset-name NAME
    --of GENERATED --generated-latents FILE.h5 --bad-seeds FILE.yaml|csv [--samples 200]
    [--radius 2.0] [--space z|w] [--probe-seed 0] [generator flags of GENERATED, as
    generate_dataset.py]

Probe 0 of each bad seed is the seed itself, probes 1..M are uniform in a ball around its z
(then mapped) or w (fidlens.generators.inspection.generate_probes).
"""

import argparse
import logging
import sys

from fidlens.generators.dataset import add_generator_arguments, generator_spec
from fidlens.generators.inspection import generate_probes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the probes' image folder")
    parser.add_argument("--latents", required=True, help="the probes' latents file to write")
    parser.add_argument("--dataset-name", required=True)
    parser.add_argument("--of", required=True, help="the generated dataset inspected")
    parser.add_argument("--generated-latents", required=True, help="its latents file")
    parser.add_argument("--bad-seeds", required=True, help="the recorded bad seeds")
    parser.add_argument("--samples", type=int, default=200, help="probes per bad seed")
    parser.add_argument("--radius", type=float, default=2.0, help="radius of the ball")
    parser.add_argument("--space", choices=["z", "w"], default="z")
    parser.add_argument("--probe-seed", type=int, default=0)
    add_generator_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    probes = {"of": args.of, "bad_seeds": args.bad_seeds, "samples": args.samples,
              "radius": args.radius, "space": args.space, "seed": args.probe_seed}
    try:
        summary = generate_probes(args.out, args.latents, args.generated_latents,
                                  generator_spec(args), probes, args.dataset_name,
                                  device=args.device)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        logging.error("%s", error)
        return 1
    logging.info("%s: %d probes around bad seeds %s of %s (%s-ball, radius %g): %d kept, "
                 "%d drawn, %d removed", args.dataset_name, summary["images"],
                 summary["bad_seeds"], args.of, args.space, args.radius, summary["kept"],
                 summary["generated"], summary["removed"])
    if "defective" in summary:
        logging.info("ground truth: %d probes in the generator's known defective region",
                     summary["defective"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
