"""Seed 000 §3.2's discard / replace: d_i and the selection rule, the replacements, the five FIDs,
the selection on the procedural demo generator (it must find the known defective region), and
a small workflow run that writes Table 2 and the sheet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_workflow import make_workdir, run_ok, write_config

from fidlens.experiments import discard_replace as dr
from fidlens.generators.demo import pick_pairs
from fidlens.generators.latents import Latents
from fidlens.generators.procedural import ProceduralFaces, is_defective
from fidlens.metrics import fid_from_features
from fidlens.pairs import Pair, write_pairs


def test_d_is_distance_to_bad_minus_distance_to_good_and_the_smallest_are_selected():
    rng = np.random.default_rng(0)
    w, w_bad, w_good = rng.normal(size=(30, 5)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    d, to_bad, to_good = dr.distance_differences(w, w_bad, w_good)
    for i in (0, 17):
        bad = np.sqrt(((w[i] - w_bad.sum(axis=0) / 4) ** 2).sum())
        good = np.sqrt(((w[i] - w_good.sum(axis=0) / 3) ** 2).sum())
        assert d[i] == pytest.approx(bad - good, rel=1e-12)
    np.testing.assert_allclose(d, to_bad - to_good)
    # A code at the bad mean has the smallest d; one at the good mean the largest.
    d_ends, _, _ = dr.distance_differences([w_bad.mean(0), w_good.mean(0)], w_bad, w_good)
    assert d_ends[0] < 0 < d_ends[1]
    chosen = dr.select_smallest(d, 5)
    assert set(chosen) == set(np.argsort(d)[:5]) and np.all(np.diff(d[chosen]) >= 0)
    assert list(dr.select_smallest([1.0, 0.0, 0.0, 2.0], 2)) == [1, 2]  # ties: dataset order
    moved = dr.replacement_codes(w[:2], w_bad, w_good)
    np.testing.assert_allclose(moved - w[:2], np.broadcast_to(
        w_good.mean(0) - w_bad.mean(0), (2, 5)))


def test_selection_count_rounds_and_keeps_a_few():
    assert dr.selection_count(50_000, 0.015) == 750  # seed 000
    assert dr.selection_count(200, 0.1) == 20
    assert dr.selection_count(30, 0.05) == 2  # round(1.5) = 2
    assert dr.selection_count(10, 0.01) == 2  # at least two for a covariance
    with pytest.raises(ValueError, match="fraction"):
        dr.selection_count(100, 0)
    with pytest.raises(ValueError, match="at least 4"):
        dr.selection_count(3, 0.5)


def test_the_five_fids_are_fids_of_the_right_sets():
    rng = np.random.default_rng(1)
    generated, train = rng.normal(size=(40, 6)), rng.normal(0.3, 1, size=(50, 6))
    replacements, selected = rng.normal(0.1, 1, size=(5, 6)), np.array([3, 9, 1, 30, 22])
    fids = dr.table2_fids(generated, train, selected, replacements)
    keep = np.setdiff1d(np.arange(40), selected)
    assert fids["fid"] == fid_from_features(generated, train)
    assert fids["fid_delete"] == fid_from_features(generated[keep], train)
    assert fids["fid_replace"] == pytest.approx(
        fid_from_features(np.vstack([generated[keep], replacements]), train), rel=1e-12)
    assert fids["fid_sub_good"] == fid_from_features(replacements, train)
    assert fids["fid_sub_bad"] == pytest.approx(
        fid_from_features(generated[selected], train), rel=1e-12)


def _procedural_set(n: int):
    generator = ProceduralFaces(64, device="cpu")
    w = generator.mapping(generator.z_from_seeds(range(n)))
    paths = [f"seed{i:04d}.png" for i in range(n)]
    latents = Latents(paths=paths, w=w, seeds=np.arange(n),
                      attrs={"generator": json.dumps(generator.provenance())})
    return generator, w, paths, latents


def test_selection_finds_the_defective_region_and_replacements_leave_it():
    generator, w, paths, latents = _procedural_set(200)
    defective = is_defective(w)
    pairs = [Pair("gen", paths[good], "gen", paths[bad])
             for good, bad in pick_pairs(w, defective, 16)]
    result = dr.select_and_replace(paths, latents, pairs, generator, 0.1, "gen")
    selected = result["selected"]
    assert len(selected) == 20 and defective.mean() < 0.2
    assert defective[selected].mean() >= 0.6  # most selected lie in the defective region
    assert is_defective(result["w_replacement"]).mean() <= 0.1  # and their replacements don't
    assert result["images"].shape == (20, 64, 64, 3)
    truth = result["summary"]["ground_truth"]
    assert truth["selected_in_defective_region"] == int(defective[selected].sum())
    assert "SMALLEST d_i" in result["summary"]["rule"]
    rows = result["rows"]
    assert [row["rank"] for row in rows if row["selected"]] != []
    assert sorted(r["rank"] for r in rows if r["selected"]) == list(range(1, 21))
    with pytest.raises(ValueError, match="no latent codes are known for dataset 'other'"):
        dr.select_and_replace(paths, latents, [Pair("other", "x.png", "gen", paths[0])],
                              generator, 0.1, "gen")


def test_replacements_must_come_from_the_generator_that_drew_the_set():
    recorded = {"adapter": "procedural", "w_dim": 32, "resolution": 64}
    dr.check_same_generator(recorded, {**recorded, "device": "cuda"}, "l.h5", "gen")
    with pytest.raises(ValueError, match="resolution 64.*resolution 128"):
        dr.check_same_generator(recorded, {**recorded, "resolution": 128}, "l.h5",
                                "discard_replace.datasets.g.generator")


@pytest.mark.slow
def test_workflow_writes_table2_and_the_sheet_and_repair_scores_better(tmp_path):
    """A small procedural demo through the workflow with MobileNetV2's real weights: the
    replacements' FID against the training set beats the selected images'."""
    config = {
        "demo": {"enabled": True, "out_dir": "demo",
                 "procedural": {"train": 40, "resolution": 48}},
        # generator-declared (rules/generate.smk): its latents and generator are its own
        "datasets": {"gen_procedural": {"generator": {"seeds": "0-59", "resolution": 48}},
                     "train_procedural": {"path": "demo/train_procedural"}},
        "extractors": {"mobilenet_v2_imagenet": {"batch_size": 50, "threads": 1}},
        "comparisons": [{"source": "gen_procedural", "target": "train_procedural"}],
        "metrics": {"names": ["fid"]},
        "face_detection": {"enabled": False},
        "discard_replace": {
            "enabled": True, "fraction": 0.1,
            "datasets": {"gen_procedural": {"train": "train_procedural",
                                            "pairs": "pairs.csv"}},
        },
    }
    tmp_path.mkdir(exist_ok=True)
    write_config(tmp_path, config)
    # The first 6 defective seeds, each with its nearest clean seed in w (pick_pairs).
    generator = ProceduralFaces(48, device="cpu")
    w = generator.mapping(generator.z_from_seeds(range(60)), batch_size=1)
    write_pairs(tmp_path / "pairs.csv", [
        Pair("gen_procedural", f"seed{good:04d}.png", "gen_procedural", f"seed{bad:04d}.png")
        for good, bad in pick_pairs(w, is_defective(w), 6)])
    run_ok(tmp_path, "results/tables/discard_replace_mobilenet_v2_imagenet.md",
           "results/discard_replace/gen_procedural/sheet.png")
    table = pd.read_csv(tmp_path / "results/tables/discard_replace_mobilenet_v2_imagenet.csv")
    assert list(table.columns[:7]) == ["Dataset", "Model", "FID", "FID_Replace", "FID_Delete",
                                       "FID_Sub_Good", "FID_Sub_Bad"]
    row = table.iloc[0]
    assert (row.Dataset, row.Model, row.weights, row.n_selected) == (
        "train_procedural", "gen_procedural", "pretrained", 6)
    assert row.FID_Sub_Good < row.FID_Sub_Bad
    markdown = (tmp_path / "results/tables/discard_replace_mobilenet_v2_imagenet.md").read_text()
    assert "SMALLEST d_i" in markdown and "not real photographs" in markdown
    result = json.loads(
        (tmp_path / "results/discard_replace/gen_procedural/fids/mobilenet_v2_imagenet.json")
        .read_text())
    assert result["ground_truth"]["selected_in_defective_region"] >= 3  # half, on 60 images
    assert result["package_versions"]["torch"]
    selection = pd.read_csv(tmp_path / "results/discard_replace/gen_procedural/selection.csv")
    assert len(selection) == 60 and selection.selected.sum() == 6
    replacements = tmp_path / "results/discard_replace/gen_procedural/replacements"
    assert sorted(p.name for p in replacements.glob("*.png")) == sorted(
        selection.replacement_path[selection.selected])
    sheet = np.asarray(Image.open(tmp_path / "results/discard_replace/gen_procedural/sheet.png"))
    assert sheet.shape[0] > 300 and sheet.shape[1] > 800 and sheet.std() > 20


def test_stylegan_without_trust_stops_before_any_job(tmp_path):
    from test_workflow import BASE_CONFIG, planning_error

    make_workdir(tmp_path, {
        **BASE_CONFIG,
        "discard_replace": {"enabled": True, "datasets": {"gen1": {
            "train": "real", "pairs": "pairs.csv", "latents": "missing.h5",
            "generator": {"adapter": "stylegan", "network": "net.pkl"}}}},
    })
    (tmp_path / "pairs.csv").write_text("good_dataset,good_path,bad_dataset,bad_path\n")
    (tmp_path / "net.pkl").write_bytes(b"not opened")
    message = planning_error(tmp_path)
    assert "discard_replace.datasets.gen1.generator.trust_pickle: unpickling net.pkl" in message
    assert "dnnlib, torch_utils" in message
    assert "discard_replace.datasets.gen1.latents: missing.h5 does not exist" in message
