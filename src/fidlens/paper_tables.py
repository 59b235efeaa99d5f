"""The seed papers' tables, ready to paste: Markdown and LaTeX (booktabs).

Seed 001 (§VI, Tables I–IV): rows = extractor × source set against one target, columns
FID ↓, KID ↓, P ↑, R ↑ on the features as extracted (Tables I and III), and the same on
L2-normalised features with FID and KID × 1000 (Tables II and IV). Seed 001 put its generated
sources (StyleGAN2, ProjectedGAN) in Tables I/II and its real source (CelebA-HQ against FFHQ)
in Tables III/IV; here every group of comparisons that shares a target and a source kind
(`datasets.<name>.kind`: generated or real) gets such a pair, numbered I, II, III, ... in the
order of the comparisons (per target, generated before real). Per extractor and metric, the
best of a table's sources is bold (lowest FID and KID, highest P and R), when it has two or
more. Seed 000's Table 2 (Dataset, Model, FID, FID_Replace, FID_Delete, FID_Sub_Good,
FID_Sub_Bad) gets one table over every extractor.

A number with an interval (the metric JSON's `<metric>_ci`: [low, high]) reads `v ± h` where
the interval is symmetric at the shown decimals, `v +a/−b` where it is not (a subsampling
interval need not be symmetric), and `v [low, high]` where v lies outside it. Under each table
a provenance line names every extractor's weights (sha256 of the pretrained file, or
RANDOM-INIT, loudly: such numbers show the workflow running, not what a metric measures).

Pure functions: parsed metric documents in, text out; no file is read or written here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fidlens.provenance import RANDOM_INIT
from fidlens.weight_specs import random_seed_from_origin

KINDS = ("generated", "real")
DEFAULT_KIND = "generated"
NORMALIZATIONS = ("raw", "l2")
SIGNIFICANT_DIGITS = 3  # at least, so that 0.1403 and 0.1422 do not both read 0.14
MINUS = "−"  # U+2212 in Markdown; LaTeX's math mode makes its own
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
         "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX")  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One metric column: the metric JSON's key, titles, display scale, decimals, and
    whether lower or higher is better."""

    metric: str
    title: str
    latex: str
    scale: float
    decimals: int
    lower_is_better: bool

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"

    @property
    def latex_arrow(self) -> str:
        return r"$\downarrow$" if self.lower_is_better else r"$\uparrow$"


# Seed 001's decimals: FID 3, KID 4 (Table I) and 5 (Table II, x1000), P and R 3.
COLUMNS = {
    "raw": (
        Column("fid", "FID", "FID", 1.0, 3, True),
        Column("kid_mean", "KID", "KID", 1.0, 4, True),
        Column("precision", "P", "P", 1.0, 3, False),
        Column("recall", "R", "R", 1.0, 3, False),
    ),
    "l2": (
        Column("fid", "FID×10³", r"FID$\times 10^3$", 1000.0, 3, True),
        Column("kid_mean", "KID×10³", r"KID$\times 10^3$", 1000.0, 5, True),
        Column("precision", "P", "P", 1.0, 3, False),
        Column("recall", "R", "R", 1.0, 3, False),
    ),
}
NORMALIZATION_TITLES = {
    "raw": "features as extracted",
    "l2": "L2-normalised features (FID and KID × 1000)",
}


@dataclass(frozen=True)
class Measure:
    """A metric value with its interval (None where not computed or not defined)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def scaled(self, scale: float) -> Measure:
        return Measure(*(None if v is None else v * scale for v in (self.value, self.low,
                                                                     self.high)))


@dataclass(frozen=True)
class Entry:
    """One comparison on one extractor, as the tables need it."""

    extractor: str
    weights: str  # pretrained | random-init | mixed
    source: str
    target: str
    kind: str
    n_source: int | None
    n_target: int | None
    measures: Mapping[tuple[str, str], Measure]  # (normalization, metric) -> Measure
    weights_sha256: str | None = None
    weights_origin: str | None = None
    interval_level: float | None = None
    interval_resamples: int | None = None
    fidlens_version: str | None = None
    fidlens_git: str | None = None
    metrics_file: str | None = None


@dataclass
class PaperTable:
    """One table: its number, title, normalisation, columns and rows (extractor, source,
    cells); `entries` are the comparisons it was made from (for the provenance line)."""

    number: str
    target: str
    kind: str
    normalization: str
    columns: tuple[Column, ...]
    rows: list[tuple[str, str, list[tuple[Measure, bool]]]]
    entries: list[Entry] = field(default_factory=list)

    @property
    def title(self) -> str:
        sources = ", ".join(dict.fromkeys(e.source for e in self.entries))
        return (f"{self.kind.capitalize()} sources ({sources}) against {self.target}: "
                f"{NORMALIZATION_TITLES[self.normalization]}")

    @property
    def n_sources(self) -> int:
        return len({e.source for e in self.entries})


# ---------------------------------------------------------------- metric documents in


def entry_from_document(doc: Mapping, kinds: Mapping[str, str] | None = None,
                        metrics_file: str | None = None) -> Entry:
    """One compute_metrics.py document (parsed JSON) as an Entry.

    kinds: dataset name -> "real" | "generated" (`datasets.<name>.kind`); a source not in it
    is generated. Raises ValueError naming `metrics_file` when a required key is missing or a
    kind is not real/generated.
    """
    where = metrics_file or "metric document"
    for key in ("extractor", "weights", "source_name", "target_name"):
        if key not in doc:
            raise ValueError(f"{where}: no {key!r} key (not a compute_metrics.py file?)")
    kind = (kinds or {}).get(doc["source_name"], DEFAULT_KIND)
    if kind not in KINDS:
        raise ValueError(f"{where}: source {doc['source_name']!r} has kind {kind!r}; "
                         f"expected one of {', '.join(KINDS)}")
    measures = {}
    for normalization in NORMALIZATIONS:
        block = doc.get(normalization) or {}
        for name, value in block.items():
            if name.endswith("_ci"):
                continue
            low, high = block.get(f"{name}_ci") or (None, None)
            measures[(normalization, name)] = Measure(_float(value), _float(low), _float(high))
    versions = doc.get("package_versions") or {}
    return Entry(
        extractor=doc["extractor"],
        weights=doc["weights"],
        source=doc["source_name"],
        target=doc["target_name"],
        kind=kind,
        n_source=doc.get("n_source"),
        n_target=doc.get("n_target"),
        measures=measures,
        weights_sha256=_shared(doc.get("source_weights_sha256"), doc.get("target_weights_sha256")),
        weights_origin=doc.get("source_weights_origin") or doc.get("target_weights_origin"),
        interval_level=doc.get("interval_level"),
        interval_resamples=doc.get("interval_resamples"),
        fidlens_version=versions.get("fidlens"),
        fidlens_git=versions.get("fidlens_git"),
        metrics_file=metrics_file,
    )


def parse_kinds(values: Iterable[str] | None) -> dict[str, str]:
    """NAME=KIND command-line values (KIND real or generated) as a dict; raises ValueError
    naming a malformed value."""
    kinds = {}
    for value in values or []:
        name, sep, kind = value.partition("=")
        if not sep or not name or kind not in KINDS:
            raise ValueError(f"--kind {value!r}: expected NAME=real or NAME=generated")
        kinds[name] = kind
    return kinds


def _float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _shared(a, b):
    if a is None or b is None:
        return a if b is None else b
    return a if a == b else "mixed"


# ---------------------------------------------------------------- grouping and bold


def group_entries(entries: Iterable[Entry]) -> list[tuple[str, str, list[Entry]]]:
    """(target, kind, entries) per group of comparisons sharing a target and a source kind:
    targets in first-appearance order, generated before real within a target, entries in
    their given order."""
    entries = list(entries)
    targets = list(dict.fromkeys(e.target for e in entries))
    groups = []
    for target in targets:
        for kind in KINDS:
            chosen = [e for e in entries if e.target == target and e.kind == kind]
            if chosen:
                groups.append((target, kind, chosen))
    return groups


def best_flags(values: Sequence[float | None], lower_is_better: bool) -> list[bool]:
    """Which values are the best of `values` (ties all best; None never). All False when
    fewer than two values are present: one source has nothing to be better than."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return [False] * len(values)
    best = min(present) if lower_is_better else max(present)
    return [v is not None and v == best for v in values]


def paper_tables(entries: Iterable[Entry], first_number: int = 1) -> list[PaperTable]:
    """Seed 001's table pairs (features as extracted, then L2-normalised) of every group
    (group_entries), numbered in Roman numerals from `first_number`. Rows: extractors in
    first-appearance order, each with its sources in their given order. A table without a
    single number (the L2 table of a target given only as statistics) is left out."""
    tables = []
    number = first_number
    for target, kind, group in group_entries(entries):
        extractors = list(dict.fromkeys(e.extractor for e in group))
        for normalization in NORMALIZATIONS:
            columns = COLUMNS[normalization]
            rows = []
            for extractor in extractors:
                chosen = [e for e in group if e.extractor == extractor]
                measures = [[e.measures.get((normalization, c.metric), Measure(None))
                             .scaled(c.scale) for c in columns] for e in chosen]
                flags = [best_flags([row[i].value for row in measures], c.lower_is_better)
                         for i, c in enumerate(columns)]
                for index, entry in enumerate(chosen):
                    cells = [(measures[index][i], flags[i][index]) for i in range(len(columns))]
                    rows.append((extractor_label(entry), entry.source, cells))
            if not any(m.value is not None for _, _, cells in rows for m, _ in cells):
                continue
            tables.append(PaperTable(roman(number), target, kind, normalization, columns,
                                     rows, list(group)))
            number += 1
    return tables


def roman(number: int) -> str:
    """I, II, ... XX; beyond that the Arabic number."""
    return ROMAN[number - 1] if 1 <= number <= len(ROMAN) else str(number)


def extractor_label(entry: Entry) -> str:
    return f"{entry.extractor} ({RANDOM_INIT.upper()})" if entry.weights == RANDOM_INIT \
        else entry.extractor


# ---------------------------------------------------------------- numbers as text


def decimals_for(value: float, decimals: int) -> int:
    """`decimals`, widened where a nonzero value would otherwise keep fewer than
    SIGNIFICANT_DIGITS significant digits."""
    if value != 0 and math.isfinite(value):
        leading = math.floor(math.log10(abs(value)))  # 10^leading <= |value|
        decimals = max(decimals, SIGNIFICANT_DIGITS - 1 - leading)
    return decimals


def format_measure(measure: Measure, decimals: int, bold: bool = False,
                   style: str = "markdown") -> str:
    """A cell: the value (bold if asked) with its interval, in Markdown or LaTeX.

    Markdown: `4.721 ± 0.310`, `4.721 +0.300/−0.320`, `4.721 [4.800, 5.100]`, `–` (missing);
    LaTeX (math mode): `$4.721 \\pm 0.310$`, `$4.721^{+0.300}_{-0.320}$`, `--`.
    """
    if style not in ("markdown", "latex"):
        raise ValueError(f"style must be markdown or latex, not {style!r}")
    latex = style == "latex"
    if measure.value is None:
        return "--" if latex else "–"
    value = measure.value
    places = decimals_for(value, decimals)
    shown = f"{value:.{places}f}"
    if bold:
        shown = rf"\mathbf{{{shown}}}" if latex else f"**{shown}**"
    if measure.low is None or measure.high is None:
        return f"${shown}$" if latex else shown
    up, down = measure.high - value, value - measure.low
    if up < 0 or down < 0:  # the value outside its interval: show the interval itself
        low, high = (f"{v:.{places}f}" for v in (measure.low, measure.high))
        return rf"${shown}\ [{low}, {high}]$" if latex else f"{shown} [{low}, {high}]"
    up_text, down_text = f"{up:.{places}f}", f"{down:.{places}f}"
    if up_text == down_text:
        return rf"${shown} \pm {up_text}$" if latex else f"{shown} ± {up_text}"
    if latex:
        return rf"${shown}^{{+{up_text}}}_{{-{down_text}}}$"
    return f"{shown} +{up_text}/{MINUS}{down_text}"


# ---------------------------------------------------------------- provenance


def weights_note(entry: Entry, style: str = "markdown") -> str:
    """How one extractor's numbers were made: RANDOM-INIT (loud), or the pretrained file's
    sha256 prefix."""
    name = latex_escape(entry.extractor) if style == "latex" else entry.extractor
    if entry.weights == RANDOM_INIT:
        seed = random_seed_from_origin(entry.weights_origin or "")
        how = "official file not found, `fallback: random`" if (
            entry.weights_origin or "").startswith("random (fallback") else "`weights: random`"
        seeded = f"seed {seed}, " if seed is not None else ""
        if style == "latex":
            return (rf"{name}: \textbf{{RANDOM-INIT weights}} ({seeded}"
                    rf"{latex_escape(how.replace('`', ''))}): not a measurement")
        return (f"{name}: **⚠ RANDOM-INIT WEIGHTS** ({seeded}{how}): these numbers show the "
                "workflow running, not what the metric measures")
    sha = entry.weights_sha256
    if sha and sha != "mixed":
        detail = f"sha256 {sha[:12]}…" if style == "markdown" else f"sha256 {sha[:12]}..."
    else:
        detail = "different files per set" if sha == "mixed" else "sha256 not recorded"
    return f"{name}: {entry.weights} ({detail})"


def provenance_line(entries: Sequence[Entry], style: str = "markdown") -> str:
    """The line under a table: every extractor's weights, the set sizes, the intervals, and
    the fidlens version that made the numbers."""
    first = {}
    for entry in entries:
        first.setdefault(entry.extractor, entry)
    weights = "; ".join(weights_note(e, style) for e in first.values())
    sizes = sorted({f"{_count(e.n_source)}/{_count(e.n_target)}" for e in entries})
    parts = [f"Weights — {weights}." if style == "markdown" else f"Weights: {weights}.",
             f"N (source/target): {', '.join(sizes)}."]
    levels = sorted({e.interval_level for e in entries if e.interval_level is not None})
    if levels:
        resamples = sorted({e.interval_resamples for e in entries
                            if e.interval_resamples is not None})
        level = "/".join(f"{100 * v:g}" for v in levels)
        percent = r"\%" if style == "latex" else "%"
        parts.append(f"±: {level} {percent} interval, subsampling without replacement, "
                     f"{'/'.join(str(r) for r in resamples)} resamples."
                     if style == "markdown" else
                     rf"$\pm$: {level}{percent} interval (subsampling without replacement, "
                     f"{'/'.join(str(r) for r in resamples)} resamples).")
    versions = sorted({f"fidlens {e.fidlens_version}" + (f" (commit {_short_commit(e.fidlens_git)})"
                                                         if e.fidlens_git else "")
                       for e in entries if e.fidlens_version})
    if versions:
        text = ", ".join(versions)
        parts.append(f"Made by {latex_escape(text) if style == 'latex' else text}.")
    return " ".join(parts)


def _short_commit(commit: str) -> str:
    """A 12-character commit (with its -dirty mark); other text as it is."""
    sha, dirty, _ = commit.partition("-dirty")
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        return sha[:12] + ("-dirty" if dirty else "")
    return commit


def _count(value) -> str:
    return "?" if value is None else str(int(value))


# ---------------------------------------------------------------- Markdown


def footnotes(table: PaperTable) -> list[str]:
    """Seed 001's notes under a table."""
    notes = []
    if table.normalization == "l2":
        notes.append("FID and KID are multiplied by 1000 for readability.")
    if table.n_sources >= 2:
        notes.append("Bold: the better source per extractor and metric.")
    notes.append("↓: lower is better, ↑: higher is better. P = precision, R = recall "
                 "(source = the set evaluated, target = the real reference).")
    return notes


def markdown_table(table: PaperTable) -> str:
    """One table: heading, a RANDOM-INIT warning where it has such rows, the pipe table (the
    extractor named on its first row only, as in the paper), footnotes, provenance."""
    lines = [f"### Table {table.number}: {table.title}", ""]
    if any(e.weights == RANDOM_INIT for e in table.entries):
        lines += ["> **⚠ WARNING: rows marked (RANDOM-INIT) come from randomly initialised "
                  "network weights**, not the official file: they show the workflow running, "
                  "not what the metric measures, and are not comparable with published "
                  "numbers (README.md, \"Weights\").", ""]
    header = ["Feature extractor", "Source data", *(f"{c.title} {c.arrow}" for c in table.columns)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|---|" + "---:|" * len(table.columns))
    previous = None
    for extractor, source, cells in table.rows:
        shown = extractor if extractor != previous else ""
        previous = extractor
        texts = [format_measure(m, c.decimals, bold) for (m, bold), c in
                 zip(cells, table.columns, strict=True)]
        lines.append("| " + " | ".join([shown, source, *texts]) + " |")
    lines += [""] + [" ".join(footnotes(table))]
    lines += ["", f"*Provenance:* {provenance_line(table.entries)}"]
    return "\n".join(lines)


def markdown_document(tables: Sequence[PaperTable], table2: str | None = None,
                      sources: Sequence[str] = ()) -> str:
    """The Markdown file: every seed-001 table, then seed 000's Table 2 where given."""
    parts = ["# Paper-style tables", "",
             "Seed 001's layouts (Tables I–IV): one pair per target and source kind "
             "(generated / real), features as extracted and L2-normalised. The same tables "
             "in LaTeX (booktabs) are in `paper.tex` beside this file."]
    if sources:
        parts += ["", f"Made by workflow_scripts/paper_tables.py from {len(sources)} metric "
                  "files (results/metrics/); every number with its full provenance is in "
                  "results/tables/metrics.csv."]
    if not tables:
        parts += ["", "No comparison has numbers to tabulate."]
    for table in tables:
        parts += ["", markdown_table(table)]
    if table2:
        parts += ["", table2]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "…": r"\ldots{}", "—": "---", "–": "--",
                  "×": r"$\times$", "±": r"$\pm$"}  # fmt: skip


def latex_escape(text: str) -> str:
    """Text safe in LaTeX's text mode (names like gen_mild, paths, the provenance)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_label(*parts: str) -> str:
    return "tab:" + "-".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-").lower() for p in parts)


def latex_table(table: PaperTable) -> str:
    """One `table` environment (booktabs: \\toprule, \\midrule, \\bottomrule; needs
    \\usepackage{booktabs}), the extractor on its first row only, \\addlinespace between
    extractors, footnotes and provenance in \\footnotesize under the tabular."""
    lines = [
        rf"% Table {table.number}: {latex_escape(table.title)}",
        r"\begin{table}[t]",
        r"  \centering",
        rf"  \caption{{{latex_escape(table.title)}}}",
        rf"  \label{{{latex_label(table.target, table.kind, table.normalization)}}}",
        r"  \begin{tabular}{ll" + "r" * len(table.columns) + "}",
        r"    \toprule",
        "    Feature extractor & Source data & "
        + " & ".join(f"{c.latex} {c.latex_arrow}" for c in table.columns) + r" \\",
        r"    \midrule",
    ]
    previous = None
    for extractor, source, cells in table.rows:
        if previous is not None and extractor != previous:
            lines.append(r"    \addlinespace")
        name = ""
        if extractor != previous:
            name = latex_escape(extractor).replace(
                f"({RANDOM_INIT.upper()})", rf"(\textbf{{{RANDOM_INIT.upper()}}})")
        previous = extractor
        texts = [format_measure(m, c.decimals, bold, style="latex")
                 for (m, bold), c in zip(cells, table.columns, strict=True)]
        lines.append("    " + " & ".join([name, latex_escape(source), *texts]) + r" \\")
    notes = " ".join(latex_escape(n).replace(r"↓", r"$\downarrow$").replace(r"↑", r"$\uparrow$")
                     for n in footnotes(table))
    lines += [
        r"    \bottomrule",
        r"  \end{tabular}",
        r"  \par\smallskip",
        rf"  {{\footnotesize {notes}\par",
        rf"  {provenance_line(table.entries, style='latex')}\par}}",
        r"\end{table}",
    ]
    return "\n".join(lines)


def latex_document(tables: Sequence[PaperTable], table2: str | None = None) -> str:
    """Every table, each ready to paste (the preamble needs \\usepackage{booktabs})."""
    parts = ["% Paper-style tables made by fidlens (workflow_scripts/paper_tables.py).",
             r"% Preamble: \usepackage{booktabs}"]
    parts += ["", *(latex_table(t) + "\n" for t in tables)]
    if table2:
        parts.append(table2)
    return "\n".join(parts).rstrip("\n") + "\n"


# ---------------------------------------------------------------- seed 000's Table 2

TABLE2_COLUMNS = ("FID", "FID_Replace", "FID_Delete", "FID_Sub_Good", "FID_Sub_Bad")
TABLE2_KEYS = ("fid", "fid_replace", "fid_delete", "fid_sub_good", "fid_sub_bad")
TABLE2_DECIMALS = 2


def table2_entries(results: Iterable[Mapping], files: Sequence[str] | None = None) -> list[dict]:
    """The rows of seed 000's Table 2 from discard_replace_fids.py documents: Dataset (the
    training set), Model (the generated set), the extractor and its weights, the five FIDs.
    Raises ValueError naming the file when a key is missing."""
    rows = []
    results = list(results)
    for index, result in enumerate(results):
        where = files[index] if files else f"discard/replace result {index}"
        missing = [k for k in ("dataset", "model", "extractor", "weights", *TABLE2_KEYS)
                   if k not in result]
        if missing:
            raise ValueError(f"{where}: no {', '.join(map(repr, missing))} key(s)")
        rows.append({
            "dataset": result["dataset"], "model": result["model"],
            "extractor": result["extractor"], "weights": result["weights"],
            "weights_sha256": result.get("weights_sha256"),
            "weights_origin": result.get("weights_origin"),
            "values": [_float(result[k]) for k in TABLE2_KEYS],
            "n_selected": result.get("n_selected"), "n_generated": result.get("n_generated"),
        })
    return rows


def _table2_weights(rows: Sequence[dict], style: str) -> str:
    first = {}
    for row in rows:
        first.setdefault(row["extractor"], row)
    return "; ".join(
        weights_note(Entry(r["extractor"], r["weights"], r["model"], r["dataset"],
                           DEFAULT_KIND, None, None, {}, r["weights_sha256"],
                           r["weights_origin"]), style)
        for r in first.values())


def table2_markdown(rows: Sequence[dict]) -> str:
    """Seed 000's Table 2 over every extractor (one row per extractor x generated set)."""
    lines = ["### Seed 000 Table 2: discard / replace in w space", ""]
    if any(r["weights"] == RANDOM_INIT for r in rows):
        lines += ["> **⚠ WARNING: rows marked (RANDOM-INIT) come from randomly initialised "
                  "network weights**: they show the workflow running, not what seed 000 "
                  "measured.", ""]
    lines.append("| Dataset | Model | Feature extractor | " + " | ".join(TABLE2_COLUMNS) + " |")
    lines.append("|---|---|---|" + "---:|" * len(TABLE2_COLUMNS))
    for r in rows:
        label = f"{r['extractor']} ({RANDOM_INIT.upper()})" if r["weights"] == RANDOM_INIT \
            else r["extractor"]
        values = [format_measure(Measure(v), TABLE2_DECIMALS) for v in r["values"]]
        lines.append("| " + " | ".join([r["dataset"], r["model"], label, *values]) + " |")
    lines += ["", "FID of each generated set (Model) against its training set (Dataset); "
              "_Replace: the selected images swapped for their replacements; _Delete: dropped; "
              "_Sub_Good: the replacements alone; _Sub_Bad: the selected images alone "
              "(results/tables/discard_replace_{extractor}.md has the selection rule).",
              "", f"*Provenance:* Weights — {_table2_weights(rows, 'markdown')}."]
    return "\n".join(lines)


def table2_latex(rows: Sequence[dict]) -> str:
    """Seed 000's Table 2 as one booktabs `table` environment."""
    lines = [
        "% Seed 000 Table 2: discard / replace in w space",
        r"\begin{table}[t]",
        r"  \centering",
        r"  \caption{Discard / replace in $w$ space (seed 000, Table 2)}",
        r"  \label{tab:discard-replace}",
        r"  \begin{tabular}{lll" + "r" * len(TABLE2_COLUMNS) + "}",
        r"    \toprule",
        "    Dataset & Model & Feature extractor & "
        + " & ".join(latex_escape(c) for c in TABLE2_COLUMNS) + r" \\",
        r"    \midrule",
    ]
    for r in rows:
        label = latex_escape(r["extractor"]) + (
            rf" (\textbf{{{RANDOM_INIT.upper()}}})" if r["weights"] == RANDOM_INIT else "")
        values = [format_measure(Measure(v), TABLE2_DECIMALS, style="latex") for v in r["values"]]
        lines.append("    " + " & ".join([latex_escape(r["dataset"]), latex_escape(r["model"]),
                                          label, *values]) + r" \\")
    lines += [
        r"    \bottomrule",
        r"  \end{tabular}",
        r"  \par\smallskip",
        rf"  {{\footnotesize Weights: {_table2_weights(rows, 'latex')}.\par}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- files (the workflow's edge)


def read_entries(metric_files: Sequence[str],
                 kinds: Mapping[str, str] | None = None) -> list[Entry]:
    """Entries of compute_metrics.py JSON files, in the given order. Raises ValueError
    naming the file that cannot be read or parsed."""
    import json
    from pathlib import Path

    entries = []
    for path in metric_files:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read metric file {path}: {error}") from None
        entries.append(entry_from_document(doc, kinds, metrics_file=str(path)))
    return entries


def write_paper_tables(metric_files: Sequence[str], markdown: str, latex: str,
                       kinds: Mapping[str, str] | None = None,
                       discard_replace_files: Sequence[str] = ()) -> list[PaperTable]:
    """Write every paper table (and seed 000's Table 2 from `discard_replace_files`, the
    discard_replace_fids.py JSONs) as Markdown and LaTeX; returns the seed-001 tables."""
    import json
    from pathlib import Path

    from fidlens.files import write_text_atomic

    tables = paper_tables(read_entries(metric_files, kinds))
    table2_md = table2_tex = None
    if discard_replace_files:
        try:
            results = [json.loads(Path(p).read_text()) for p in discard_replace_files]
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read a discard / replace result: {error}") from None
        rows = table2_entries(results, list(map(str, discard_replace_files)))
        table2_md, table2_tex = table2_markdown(rows), table2_latex(rows)
    write_text_atomic(markdown, markdown_document(tables, table2_md, metric_files))
    write_text_atomic(latex, latex_document(tables, table2_tex))
    return tables
