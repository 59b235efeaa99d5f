"""The report's study summary: every extractor's weights (RANDOM-INIT flagged loudly), the
software versions and the metric settings, from the metric files.

python workflow_scripts/report_summary.py --metrics A.json [B.json ...] [--settings JSON]
    --page SUMMARY.html --fragment FRAGMENT.html
"""

import argparse
import json
import logging
import sys

from fidlens.report_pages import write_summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="compute_metrics.py JSONs")
    parser.add_argument("--settings", default="{}", help="settings to list (a JSON object)")
    parser.add_argument("--page", required=True, help="the summary page (HTML)")
    parser.add_argument("--fragment", required=True,
                        help="the summary as an HTML fragment for the workflow description")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        settings = json.loads(args.settings)
        random = write_summary(args.metrics, args.page, args.fragment, settings)
    except ValueError as error:
        logging.error("cannot make the study summary: %s", error)
        return 1
    if random:
        logging.warning("RANDOM-INIT weights: %s (flagged in the report)", ", ".join(random))
    logging.info("wrote %s and %s", args.page, args.fragment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
