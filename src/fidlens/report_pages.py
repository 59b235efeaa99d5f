"""Pages of the Snakemake report: the workflow's Markdown tables as self-contained HTML, and the
study summary (software versions and every extractor's weights, RANDOM-INIT flagged loudly).

Snakemake's report shows an HTML result in an iframe and offers any other file (Markdown, CSV)
only as a download, so each table reaches the report as a page made here. Pages are
self-contained: inline CSS, no script, no link to anything outside the file.

Pure functions: text and parsed documents in, HTML text out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from fidlens.provenance import RANDOM_INIT

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem;
       color: #111; line-height: 1.45; max-width: 80rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; margin-top: 2rem; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border-top: 1px solid #999; border-bottom: 1px solid #999; padding: 0.25rem 0.6rem; }
thead th { border-top: 2px solid #111; border-bottom: 1.5px solid #111; }
tbody tr:last-child td { border-bottom: 2px solid #111; }
td { font-variant-numeric: tabular-nums; white-space: nowrap; }
code { background: #f2f2f2; padding: 0 0.2rem; }
blockquote { border-left: 5px solid #b00000; background: #fdecec; margin: 0.8rem 0;
             padding: 0.4rem 0.9rem; }
.random-init { border: 3px solid #b00000; background: #fdecec; color: #600; padding: 0.6rem 1rem;
               font-weight: 600; margin: 0.8rem 0; }
.provenance { color: #333; font-size: 0.85rem; }
"""

RANDOM_INIT_BANNER = (
    "⚠ RANDOM-INIT WEIGHTS: {names} ran with randomly initialised network weights (weights: "
    "random, or the official file was not found and fallback: random was set). Every number "
    "they made — every table row and figure row marked RANDOM-INIT — shows the workflow "
    "running, NOT what the metric measures, and is not comparable with published numbers. "
    "Install the official file (README.md, \"Weights\"; `make weights`) and run again."
)


def html_page(title: str, body: str) -> str:
    """A whole HTML document around `body` (HTML), with the page CSS inline."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def markdown_to_html(text: str) -> str:
    """Markdown (GitHub pipe tables, emphasis, block quotes, code) as an HTML fragment."""
    import markdown

    return markdown.markdown(text, extensions=["tables", "fenced_code", "sane_lists"],
                             output_format="html")


def markdown_page(text: str, title: str, source: str | None = None) -> str:
    """A Markdown table file as a report page; `source` (the file's path) is named at the end."""
    body = markdown_to_html(text)
    if source:
        body += f'\n<p class="provenance">From <code>{html.escape(source)}</code>.</p>'
    return html_page(title, body)


# ---------------------------------------------------------------- the study summary


def weights_table(docs: Sequence[Mapping]) -> list[dict]:
    """One row per extractor (first-appearance order) from metric documents: its weights
    (pretrained / random-init / mixed), sha256 and origin, and the comparisons it made."""
    rows: dict[str, dict] = {}
    for doc in docs:
        name = doc.get("extractor", "?")
        row = rows.setdefault(name, {
            "extractor": name,
            "weights": set(),
            "sha256": set(),
            "origin": set(),
            "layer": doc.get("feature_layer"),
            "preprocess": doc.get("preprocess"),
            "comparisons": [],
        })
        row["weights"].add(str(doc.get("weights", "?")))
        for role in ("source", "target"):
            if doc.get(f"{role}_weights_sha256"):
                row["sha256"].add(str(doc[f"{role}_weights_sha256"]))
            if doc.get(f"{role}_weights_origin"):
                row["origin"].add(str(doc[f"{role}_weights_origin"]))
        row["comparisons"].append(f"{doc.get('source_name')} → {doc.get('target_name')}")
    return [
        {**row, "weights": ", ".join(sorted(row["weights"])),
         "sha256": ", ".join(sorted(row["sha256"])) or "–",
         "origin": "; ".join(sorted(row["origin"])) or "–"}
        for row in rows.values()
    ]


def random_init_extractors(docs: Sequence[Mapping]) -> list[str]:
    """Extractors with a random-init number, in first-appearance order."""
    return list(dict.fromkeys(d.get("extractor", "?") for d in docs
                              if d.get("weights") == RANDOM_INIT))


def software_versions(docs: Sequence[Mapping]) -> dict[str, str]:
    """package -> version over every document's package_versions; a package recorded with
    different versions lists them all (a run resumed after an upgrade)."""
    found: dict[str, set[str]] = {}
    for doc in docs:
        for name, value in (doc.get("package_versions") or {}).items():
            found.setdefault(name, set()).add(str(value))
    return {name: " / ".join(sorted(values)) for name, values in sorted(found.items())}


def _banner(docs: Sequence[Mapping]) -> str:
    """The RANDOM-INIT banner (inline styles: it is also shown inside the report's workflow
    description), or a line saying every extractor is pretrained."""
    random = random_init_extractors(docs)
    if not random:
        return "<p>Every extractor ran with its pretrained weights (sha256 below).</p>"
    style = ("border:3px solid #b00000;background:#fdecec;color:#600;padding:0.6rem 1rem;"
             "font-weight:600;margin:0.6rem 0;")
    text = html.escape(RANDOM_INIT_BANNER.format(names=", ".join(random)))
    return f'<div class="random-init" style="{style}">{text}</div>'


def _weights_text(row: Mapping) -> str:
    """`pretrained (sha256 b0353104…)` or a red RANDOM-INIT, as HTML."""
    if RANDOM_INIT in row["weights"]:
        return (f'<strong style="color:#b00000;">⚠ {html.escape(row["weights"].upper())}'
                "</strong>")
    sha = row["sha256"]
    short = ", ".join(f"{s[:12]}…" for s in sha.split(", ")) if sha != "–" else "no sha256"
    return f"{html.escape(row['weights'])} (sha256 {html.escape(short)})"


def summary_fragment(docs: Sequence[Mapping], snakemake_version: str | None = None) -> str:
    """The summary in brief, as an HTML fragment with inline styles only (the report's
    workflow description includes it): the RANDOM-INIT banner where any extractor has such
    numbers, each extractor's weights in a line, and the software versions in one line."""
    parts = ['<div class="fidlens-summary">', _banner(docs), "<p><strong>Weights</strong></p>",
             "<ul>"]
    for row in weights_table(docs):
        parts.append(f"<li><code>{html.escape(row['extractor'])}</code>: "
                     f"{_weights_text(row)}</li>")
    parts.append("</ul>")
    versions = software_versions(docs)
    if snakemake_version:
        versions = {**versions, "snakemake": snakemake_version}
    listed = ", ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in versions.items())
    parts += [f"<p><strong>Software</strong> (recorded in the metric files): {listed}.</p>",
              "</div>"]
    return "\n".join(parts)


def summary_tables(docs: Sequence[Mapping], snakemake_version: str | None = None) -> str:
    """The summary in full, as HTML: the banner, a table of every extractor's weights (sha256,
    origin, layer, preprocessing, comparisons) and a table of the software versions."""
    cell = "border-bottom:1px solid #bbb;padding:0.2rem 0.5rem;text-align:left;"
    parts = [_banner(docs), "<h2>Weights of every extractor</h2>", "<table>"]
    header = ("Extractor", "Weights", "sha256", "Origin", "Feature layer", "Preprocess",
              "Comparisons")
    parts.append("<tr>" + "".join(f'<th style="{cell}">{h}</th>' for h in header) + "</tr>")
    for row in weights_table(docs):
        weights = html.escape(row["weights"])
        if RANDOM_INIT in row["weights"]:
            weights = _weights_text(row)
        values = [html.escape(row["extractor"]), weights, html.escape(row["sha256"]),
                  html.escape(row["origin"]), html.escape(str(row["layer"])),
                  html.escape(str(row["preprocess"])),
                  html.escape(", ".join(row["comparisons"]))]
        parts.append("<tr>" + "".join(f'<td style="{cell}">{v}</td>' for v in values) + "</tr>")
    parts.append("</table>")
    versions = software_versions(docs)
    if snakemake_version:
        versions = {**versions, "snakemake": snakemake_version}
    parts += ["<h2>Software versions (recorded in the metric files)</h2>", "<table>",
              "<tr><th>Package</th><th>Version</th></tr>"]
    for name, value in versions.items():
        parts.append(f'<tr><td style="{cell}">{html.escape(name)}</td>'
                     f'<td style="{cell}">{html.escape(value)}</td></tr>')
    parts.append("</table>")
    return "\n".join(parts)


def summary_page(docs: Sequence[Mapping], settings: Mapping | None = None,
                 snakemake_version: str | None = None) -> str:
    """The summary as a whole page: summary_tables, then the settings the metrics ran with
    (`settings`: a small mapping of the configuration, shown as given)."""
    body = ["<h1>Study summary: weights, software, configuration</h1>",
            summary_tables(docs, snakemake_version)]
    if settings:
        body.append("<h2>Settings</h2><ul>")
        for key, value in settings.items():
            body.append(f"<li><code>{html.escape(str(key))}</code>: "
                        f"{html.escape(str(value))}</li>")
        body.append("</ul>")
    return html_page("Study summary", "\n".join(body))


# ---------------------------------------------------------------- files (the workflow's edge)


def write_markdown_page(markdown_file: str, title: str, out: str) -> None:
    """One Markdown table file as a self-contained report page."""
    from pathlib import Path

    from fidlens.files import write_text_atomic

    text = Path(markdown_file).read_text(encoding="utf-8")
    write_text_atomic(out, markdown_page(text, title, source=str(markdown_file)))


def write_summary(metric_files: Sequence[str], page: str, fragment: str,
                  settings: Mapping | None = None) -> list[str]:
    """The study summary from compute_metrics.py JSON files: the page (a report result) and
    the fragment (included in the report's workflow description). Returns the random-init
    extractors. Raises ValueError naming a file that cannot be read."""
    import json
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    from fidlens.files import write_text_atomic

    docs = []
    for path in metric_files:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read metric file {path}: {error}") from None
    try:
        snakemake_version = version("snakemake")
    except PackageNotFoundError:
        snakemake_version = None
    write_text_atomic(page, summary_page(docs, settings, snakemake_version))
    write_text_atomic(fragment, summary_fragment(docs, snakemake_version) + "\n")
    return random_init_extractors(docs)
