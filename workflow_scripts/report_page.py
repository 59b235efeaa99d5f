"""A Markdown table file as a self-contained HTML page of the Snakemake report.

python workflow_scripts/report_page.py --markdown TABLE.md --title TITLE --out PAGE.html
"""

import argparse
import logging
import sys

from fidlens.report_pages import write_markdown_page


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        write_markdown_page(args.markdown, args.title, args.out)
    except OSError as error:
        logging.error("cannot make the report page of %s: %s", args.markdown, error)
        return 1
    logging.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
