"""Tables from hand-made metric documents (the layout compute_metrics.py writes)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fidlens import tables

REPO = Path(__file__).resolve().parents[1]


def metric_doc(source, weights="pretrained", extractor="inception", fid=12.5, l2=True):
    doc = {
        "source_name": source,
        "target_name": "real",
        "extractor": extractor,
        "weights": weights,
        "feature_layer": "pool3",
        "preprocess": "clean",
        "source_weights_sha256": "abc" if weights == "pretrained" else "random-init",
        "target_weights_sha256": "abc" if weights == "pretrained" else "random-init",
        "n_source": 40,
        "n_target": 50,
        "seed": 0,
        "kid_subsets": 100,
        "kid_subset_size": 40,
        "k_precision_recall": 3,
        "k_density_coverage": 5,
        "package_versions": {"fidlens": "0.1.0"},
        "raw": {
            "fid": fid,
            "kid_mean": 0.0123456,
            "kid_std": 0.001,
            "precision": 0.75,
            "recall": 0.5,
            "density": 1.0625,
            "coverage": 0.8,
        },
    }
    if l2:
        doc["l2"] = {"fid": 0.04321, "kid_mean": 0.0000456, "kid_std": 0.00001}
    return doc


@pytest.fixture
def long():
    rows = tables.metric_rows(metric_doc("gen_a"), "m/a.json")
    rows += tables.metric_rows(metric_doc("gen_b", weights="random-init", fid=99.0), "m/b.json")
    return tables.long_table(rows)


def test_long_table_has_one_row_per_number_with_provenance(long):
    assert list(long.columns) == tables.LONG_COLUMNS
    assert len(long) == 2 * (7 + 3)
    first = long[long["source"] == "gen_a"]
    assert first["metric"].tolist()[:7] == list(tables.METRIC_ORDER)
    assert first["normalization"].tolist() == ["raw"] * 7 + ["l2"] * 3
    row = first.iloc[0]
    assert (row["extractor"], row["weights"], row["target"]) == ("inception", "pretrained", "real")
    assert (row["n_source"], row["n_target"], row["metrics_file"]) == (40, 50, "m/a.json")
    assert row["weights_sha256"] == "abc" and row["fidlens_version"] == "0.1.0"
    value = long.query("source == 'gen_b' and metric == 'fid' and normalization == 'raw'")
    assert value["value"].item() == 99.0


def test_table_one_layout(long):
    frame = tables.wide_table(long, "raw", tables.TABLE_1)
    assert list(frame.columns) == [
        "Extractor",
        "Source",
        "Target",
        "N",
        "FID",
        "KID",
        "P",
        "R",
        "D",
        "C",
    ]
    assert frame["Extractor"].tolist() == ["inception", "inception (random-init)"]
    assert frame["N"].tolist() == ["40/50", "40/50"]
    assert frame.loc[0, "FID"] == 12.5 and frame.loc[0, "KID"] == pytest.approx(0.0123456)


def test_normalised_table_scales_fid_and_kid_by_1000(long):
    frame = tables.wide_table(long, "l2", tables.TABLE_2)
    assert list(frame.columns) == ["Extractor", "Source", "Target", "N", "FID×10³", "KID×10³"]
    assert frame.loc[0, "KID×10³"] == pytest.approx(0.0456)
    assert frame.loc[0, "FID×10³"] == pytest.approx(43.21)


def test_markdown_marks_random_init_and_formats_numbers(long):
    text = tables.markdown_report(long, sources=["m/a.json", "m/b.json"])
    lines = text.splitlines()
    assert "| Extractor | Source | Target | N | FID | KID | P | R | D | C |" in lines
    assert "|---|---|---|---|---:|---:|---:|---:|---:|---:|" in lines
    assert (
        "| inception | gen_a | real | 40/50 | 12.50 | 0.0123 | 0.750 | 0.500 | 1.062 | 0.800 |"
        in (lines)
    )
    assert "| inception (random-init) | gen_b | real | 40/50 | 99.00 |" in text
    assert "| inception | gen_a | real | 40/50 | 43.21 | 0.0456 |" in lines  # both x 1000
    # The warning stands above the first table holding random-init rows.
    warning = next(i for i, line in enumerate(lines) if "Warning: rows marked" in line)
    assert warning < lines.index("| Extractor | Source | Target | N | FID | KID | P | R | D | C |")
    assert "from 2 metric files" in text


def test_no_warning_without_random_init_rows():
    long = tables.long_table(tables.metric_rows(metric_doc("gen_a")))
    text = tables.markdown_report(long)
    assert "random-init" not in text and "Warning" not in text


def test_missing_metrics_and_normalisations_are_shown_not_invented():
    doc = metric_doc("gen_a", l2=False)
    del doc["raw"]["density"], doc["raw"]["coverage"]
    long = tables.long_table(tables.metric_rows(doc))
    text = tables.markdown_report(long)
    assert "| 0.750 | 0.500 | – | – |" in text  # D and C were not computed
    assert "Table 2" not in text  # no L2 numbers, no L2 table


def test_a_document_without_numbers_or_names_is_an_error():
    doc = metric_doc("gen_a")
    del doc["raw"], doc["l2"]
    with pytest.raises(ValueError, match="x.json: holds no raw or l2 metrics"):
        tables.metric_rows(doc, "x.json")
    with pytest.raises(ValueError, match="no 'source_name' key"):
        tables.metric_rows({"raw": {}}, "y.json")


def run_make_tables(metric_files, csv, markdown):
    script = REPO / "workflow_scripts/make_tables.py"
    command = [sys.executable, str(script), "--metrics", *map(str, metric_files),
               "--csv", str(csv), "--markdown", str(markdown)]
    return subprocess.run(command, capture_output=True, text=True)


def test_script_writes_csv_and_markdown(tmp_path):
    paths = []
    for name, weights in (("gen_a", "pretrained"), ("gen_b", "random-init")):
        path = tmp_path / f"{name}__real.json"
        path.write_text(json.dumps(metric_doc(name, weights)))
        paths.append(str(path))
    csv, markdown = tmp_path / "out/metrics.csv", tmp_path / "out/metrics.md"
    result = run_make_tables(paths, csv, markdown)
    assert result.returncode == 0, result.stderr
    assert "10 of 20 numbers come from random-init weights" in result.stderr
    frame = pd.read_csv(csv)
    assert frame["source"].unique().tolist() == ["gen_a", "gen_b"]  # input order kept
    assert "inception (random-init)" in markdown.read_text()

    (tmp_path / "bad.json").write_text("{not json")
    result = run_make_tables([str(tmp_path / "bad.json")], csv, markdown)
    assert result.returncode == 1 and "bad.json" in result.stderr


def test_undefined_kid_std_is_an_empty_cell_and_a_dash(tmp_path):
    # KID as one estimate on the whole sets (small sets) has no std: null in the JSON.
    doc = metric_doc("gen_a")
    doc |= {"kid_method": "whole sets", "kid_subsets": 1, "kid_subset_size": None}
    doc["raw"]["kid_std"] = doc["l2"]["kid_std"] = None
    path = tmp_path / "gen_a__real.json"
    path.write_text(json.dumps(doc))
    rows = tables.metric_rows(json.loads(path.read_text()), str(path))
    assert [row["value"] for row in rows if row["metric"] == "kid_std"] == [None, None]
    long = tables.long_table(rows)
    assert long["kid_method"].unique().tolist() == ["whole sets"]
    kid_std_line = next(
        line for line in long.to_csv(index=False).splitlines() if ",kid_std," in line
    )
    assert ",raw,kid_std,,40,50," in kid_std_line  # empty value, then n_source, n_target
    columns = {"kid_mean": ("KID", 1.0, 4), "kid_std": ("±", 1.0, 4)}
    text = tables.markdown_table(tables.wide_table(long, "raw", columns), {"KID": 4, "±": 4})
    assert text.splitlines()[-1].endswith("| 0.0123 | – |")
    assert "| 12.50 | 0.0123 | 0.750 |" in tables.markdown_report(long)
    # The script that writes metrics.csv and metrics.md takes such files too.
    csv, markdown = tmp_path / "metrics.csv", tmp_path / "metrics.md"
    result = run_make_tables([path], csv, markdown)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(csv)
    assert written.query("metric == 'kid_std'")["value"].isna().all()
    assert written.query("metric == 'kid_mean'")["kid_method"].tolist() == ["whole sets"] * 2


def test_small_values_keep_three_significant_digits():
    from fidlens.tables import _format

    assert (_format(0.1403, 2), _format(0.1422, 2)) == ("0.140", "0.142")
    assert _format(30.6123, 2) == "30.61" and _format(0.00012, 4) == "0.000120"
    assert _format(0.0, 2) == "0.00" and _format(None, 2) == "–"
