"""Paper-style tables (seed 001 Tables I-IV, seed 000 Table 2), the metrics figure and the report
pages, on metric documents computed here from seeded Gaussian features with fidlens' own metrics
(the same functions compute_metrics.py calls)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from fidlens import paper_figures as figures
from fidlens import paper_tables as pt
from fidlens import report_pages as pages
from fidlens.evaluate import KID_WHOLE_SETS, feature_metrics
from fidlens.experiments.discard_replace import table2_fids
from fidlens.metrics import l2_normalize

N, D = 40, 6
SHA = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
METRICS = ("fid", "kid", "pr")


def features(shift: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (N, D))


def block(source: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> dict:
    """One normalisation's metrics with an interval from the spread of 4 half-subsamples."""
    values = feature_metrics(source, target, METRICS, kid_indices=KID_WHOLE_SETS)
    draws = []
    for _ in range(4):
        i = rng.choice(len(source), len(source) // 2, replace=False)
        j = rng.choice(len(target), len(target) // 2, replace=False)
        draws.append(feature_metrics(source[i], target[j], METRICS, kid_indices=KID_WHOLE_SETS))
    for name in ("fid", "kid_mean", "precision", "recall"):
        sample = np.array([d[name] for d in draws])
        values[f"{name}_ci"] = [float(values[name] - np.std(sample) * 1.5),
                                float(values[name] + np.std(sample) * (1.5 if name != "fid"
                                                                        else 2.5))]
    return values


def document(extractor, source_name, source, target, weights="pretrained", seed=0) -> dict:
    """A metric document in compute_metrics.py's layout."""
    rng = np.random.default_rng(seed)
    origin = "random (seed 7)" if weights == "random-init" else "auto: somewhere"
    return {
        "extractor": extractor, "weights": weights, "source_name": source_name,
        "target_name": "real_t", "n_source": len(source), "n_target": len(target),
        "raw": block(source, target, rng),
        "l2": block(l2_normalize(source), l2_normalize(target), rng),
        "source_weights_sha256": None if weights == "random-init" else SHA,
        "target_weights_sha256": None if weights == "random-init" else SHA,
        "source_weights_origin": origin, "target_weights_origin": origin,
        "interval_level": 0.95, "interval_resamples": 4,
        "package_versions": {"fidlens": "0.1.0", "fidlens_git": "abc", "numpy": np.__version__},
    }


@pytest.fixture(scope="module")
def docs():
    target = features(0.0, 1)
    sets = {"gen_close": features(0.15, 2), "gen_far": features(0.9, 3),
            "real_ctrl": features(0.05, 4)}
    out = []
    for extractor, weights in (("net_a", "pretrained"), ("net_b", "random-init")):
        for name, x in sets.items():
            scale = 1.0 if extractor == "net_a" else 3.0  # another feature space
            out.append(document(extractor, name, x * scale, target * scale, weights))
    return out


KINDS = {"real_ctrl": "real"}


def test_format_measure_shows_each_interval_shape():
    assert pt.format_measure(pt.Measure(4.72134, 4.41134, 5.03134), 3) == "4.721 ± 0.310"
    assert pt.format_measure(pt.Measure(4.72134, 4.40134, 5.02134), 3) == "4.721 +0.300/−0.320"
    assert pt.format_measure(pt.Measure(4.7, 4.8, 5.1), 3) == "4.700 [4.800, 5.100]"
    assert pt.format_measure(pt.Measure(None), 3) == "–"
    assert pt.format_measure(pt.Measure(4.72134), 3, bold=True) == "**4.721**"
    latex = pt.format_measure(pt.Measure(4.72134, 4.40134, 5.02134), 3, True, style="latex")
    assert latex == r"$\mathbf{4.721}^{+0.300}_{-0.320}$"
    # small values keep three significant digits (KID of close sets)
    assert pt.format_measure(pt.Measure(0.0000653), 4) == "0.0000653"
    with pytest.raises(ValueError, match="style"):
        pt.format_measure(pt.Measure(1.0), 3, style="html")


def test_best_flags():
    assert pt.best_flags([3.0, 1.0, 1.0, None], lower_is_better=True) == [False, True, True,
                                                                          False]
    assert pt.best_flags([0.2, 0.9], lower_is_better=False) == [False, True]
    assert pt.best_flags([0.2, None], lower_is_better=False) == [False, False]


def test_tables_i_to_iv_from_computed_metrics(docs):
    entries = [pt.entry_from_document(d, KINDS, f"m{i}.json") for i, d in enumerate(docs)]
    tables = pt.paper_tables(entries)
    assert [(t.number, t.kind, t.normalization) for t in tables] == [
        ("I", "generated", "raw"), ("II", "generated", "l2"),
        ("III", "real", "raw"), ("IV", "real", "l2")]
    table_i, table_ii, table_iii, _ = tables
    # rows = extractor x source; target fixed; generated and real sources kept apart
    assert [(r[0], r[1]) for r in table_i.rows] == [
        ("net_a", "gen_close"), ("net_a", "gen_far"),
        ("net_b (RANDOM-INIT)", "gen_close"), ("net_b (RANDOM-INIT)", "gen_far")]
    assert [r[1] for r in table_iii.rows] == ["real_ctrl", "real_ctrl"]
    by_source = {d["source_name"]: d for d in docs if d["extractor"] == "net_a"}
    close, far = by_source["gen_close"]["raw"], by_source["gen_far"]["raw"]
    assert close["fid"] < far["fid"]  # the data are what the test assumes
    cells = {r[1]: r[2] for r in table_i.rows if r[0] == "net_a"}
    # per extractor and metric the better generated source is bold
    assert cells["gen_close"][0][1] and not cells["gen_far"][0][1]
    better_p = "gen_close" if close["precision"] >= far["precision"] else "gen_far"
    assert cells[better_p][2][1]
    # one source in a table: nothing is bold
    assert not any(bold for _, _, row in table_iii.rows for _, bold in row)
    # Table II: FID and KID x 1000
    l2_close = next(r for r in table_ii.rows if r[:2] == ("net_a", "gen_close"))[2]
    assert l2_close[0][0].value == pytest.approx(1000 * by_source["gen_close"]["l2"]["fid"])
    assert l2_close[0][0].high == pytest.approx(1000 * by_source["gen_close"]["l2"]["fid_ci"][1])
    assert l2_close[2][0].value == pytest.approx(by_source["gen_close"]["l2"]["precision"])


def test_markdown_and_latex_say_the_same(docs):
    entries = [pt.entry_from_document(d, KINDS) for d in docs]
    tables = pt.paper_tables(entries)
    markdown = pt.markdown_table(tables[0])
    latex = pt.latex_table(tables[0])
    fid = next(d for d in docs if d["extractor"] == "net_a" and d["source_name"] == "gen_close")
    shown = f"{fid['raw']['fid']:.3f}"
    assert f"| net_a | gen_close | **{shown}** +" in markdown  # asymmetric interval: +a/−b
    assert "| | gen_far |" in markdown.replace("|  |", "| |")  # extractor on its first row only
    assert "FID ↓ | KID ↓ | P ↑ | R ↑" in markdown
    assert "RANDOM-INIT" in markdown and "WARNING" in markdown
    assert f"net_a: pretrained (sha256 {SHA[:12]}…)" in markdown
    assert "net_b: **⚠ RANDOM-INIT WEIGHTS** (seed 7" in markdown
    # LaTeX: booktabs, escaped names, math-mode numbers, balanced braces, the same bold cells
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrrrr}"):
        assert command in latex
    assert r"gen\_close" in latex and "gen_close" not in latex.replace(r"gen\_close", "")
    assert rf"$\mathbf{{{shown}}}^{{+" in latex
    assert latex.count("{") == latex.count("}") and latex.isascii()  # pastes into any preamble
    n_bold = sum(bold for _, _, row in tables[0].rows for _, bold in row)
    assert n_bold >= 4  # each metric has a better source per extractor
    assert latex.count(r"\mathbf") == n_bold == len(re.findall(r"\*\*-?\d", markdown))
    assert r"\textbf{RANDOM-INIT}" in latex


def test_target_given_as_statistics_keeps_only_its_raw_table(docs):
    doc = {**docs[0], "target_name": "real_stats",
           "raw": {"fid": docs[0]["raw"]["fid"], "kid_mean": None},
           "l2": {"fid": None}}
    tables = pt.paper_tables([pt.entry_from_document(doc)])
    assert [(t.target, t.normalization) for t in tables] == [("real_stats", "raw")]
    assert "–" in pt.markdown_table(tables[0])


def test_entry_errors_name_the_file(docs):
    with pytest.raises(ValueError, match=r"bad\.json: no 'weights'"):
        pt.entry_from_document({k: v for k, v in docs[0].items() if k != "weights"},
                               metrics_file="bad.json")
    with pytest.raises(ValueError, match="kind 'fake'"):
        pt.entry_from_document(docs[0], {"gen_close": "fake"})
    with pytest.raises(ValueError, match="NAME=real"):
        pt.parse_kinds(["gen_close"])
    assert pt.parse_kinds(["a=real", "b=generated"]) == {"a": "real", "b": "generated"}


def test_seed000_table2_from_computed_fids():
    rng = np.random.default_rng(5)
    train = rng.normal(0, 1, (30, 4))
    generated = np.concatenate([rng.normal(0, 1, (24, 4)), rng.normal(3, 1, (6, 4))])
    replacements = rng.normal(0.1, 1, (6, 4))
    fids = table2_fids(generated, train, np.arange(24, 30), replacements)
    result = {"dataset": "train_x", "model": "gen_x", "extractor": "net_a",
              "weights": "pretrained", "weights_sha256": SHA, **fids}
    rows = pt.table2_entries([result])
    markdown, latex = pt.table2_markdown(rows), pt.table2_latex(rows)
    assert "| Dataset | Model | Feature extractor | FID | FID_Replace | FID_Delete | " \
           "FID_Sub_Good | FID_Sub_Bad |" in markdown
    for key in pt.TABLE2_KEYS:
        assert pt.format_measure(pt.Measure(fids[key]), 2) in markdown
    assert fids["fid_sub_good"] < fids["fid_sub_bad"]
    assert r"FID\_Sub\_Good" in latex and r"train\_x" in latex and latex.isascii()
    with pytest.raises(ValueError, match="r0.json: no 'fid_delete'"):
        pt.table2_entries([{k: v for k, v in result.items() if k != "fid_delete"}], ["r0.json"])


def test_write_paper_tables_cli(tmp_path, docs):
    import importlib.util
    from pathlib import Path

    files = []
    for index, doc in enumerate(docs):
        path = tmp_path / f"m{index}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    script = Path(__file__).resolve().parents[1] / "workflow_scripts" / "paper_tables.py"
    spec = importlib.util.spec_from_file_location("paper_tables_cli", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    assert module.main(["--metrics", *files, "--kind", "real_ctrl=real", "--markdown", str(md),
                        "--latex", str(tex)]) == 0
    text = md.read_text()
    assert [m for m in re.findall(r"^### Table (\w+):", text, re.M)] == ["I", "II", "III", "IV"]
    assert tex.read_text().count(r"\begin{table}") == 4
    assert module.main(["--metrics", str(tmp_path / "missing.json"), "--markdown", str(md),
                        "--latex", str(tex)]) == 1


def test_metrics_figure(tmp_path, docs):
    entries = [pt.entry_from_document(d, KINDS) for d in docs]
    rows = figures.figure_rows(entries)
    l2_fid = next(r for r in rows if r["extractor"] == "net_a" and r["source"] == "gen_far"
                  and r["normalization"] == "l2" and r["metric"] == "fid")
    assert l2_fid["value"] == pytest.approx(1000 * docs[1]["l2"]["fid"])
    path = figures.metrics_figure(entries, "real_t", tmp_path / "real_t.png")
    image = np.asarray(Image.open(path).convert("L"), dtype=float)
    # 2 extractor rows x 8 metric panels, wider than tall, and not blank
    assert image.shape[1] > image.shape[0] > 300 and image.std() > 10
    with pytest.raises(ValueError, match="other"):
        figures.metrics_figure([pt.entry_from_document({**docs[0], "target_name": "other"})],
                               "real_t", tmp_path / "x.png")
    with pytest.raises(ValueError, match="no comparison"):
        figures.metrics_figure([], "real_t", tmp_path / "x.png")


def test_report_pages(docs):
    entries = [pt.entry_from_document(d, KINDS) for d in docs]
    markdown = pt.markdown_document(pt.paper_tables(entries))
    page = pages.markdown_page(markdown, "Paper tables", source="results/tables/paper.md")
    assert page.count("<table>") == 4 and "<strong>" in page and "<blockquote>" in page
    assert not re.search(r'(src|href)="https?:', page)  # self-contained
    fragment = pages.summary_fragment(docs, "9.0")
    assert "RANDOM-INIT WEIGHTS: net_b ran" in fragment
    assert f"net_a</code>: pretrained (sha256 {SHA[:12]}" in fragment
    assert f"numpy {np.__version__}" in fragment and "snakemake 9.0" in fragment
    clean = pages.summary_fragment([d for d in docs if d["extractor"] == "net_a"])
    assert "RANDOM-INIT" not in clean and "pretrained weights" in clean
    assert pages.software_versions([{"package_versions": {"x": "1"}},
                                    {"package_versions": {"x": "2"}}]) == {"x": "1 / 2"}
