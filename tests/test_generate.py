"""Generated datasets and seed 000 §3.1's inspection loop: seed ranges, determinism (same
seeds -> identical images and codes), extending the seed range draws only the new seeds,
probes around bad seeds, the contact sheets, the pair conversion into the pair-file schema
both readers accept, Table 1, and a small workflow run of the whole loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fidlens import pairs as attention_pairs
from fidlens.datasets import list_dataset
from fidlens.generators import dataset as gd
from fidlens.generators import inspection as gi
from fidlens.generators.latents import read_latents
from fidlens.generators.procedural import ProceduralFaces, is_defective

SPEC = {"adapter": "procedural", "resolution": 32, "batch_size": 4}


def generate(root: Path, seeds: str, **changes) -> dict:
    return gd.generate_dataset(root / "gen", root / "gen_latents.h5",
                               {**SPEC, "seeds": seeds, **changes}, "gen", device="cpu",
                               progress=False)


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


def test_seed_ranges_parse_as_nvlabs_seeds_and_format_back():
    assert gd.parse_seeds("0-3,7, 5") == [0, 1, 2, 3, 5, 7]
    assert gd.parse_seeds([9, "2-3"]) == [2, 3, 9] and gd.parse_seeds(4) == [4]
    assert gd.format_seeds([7, 0, 1, 2, 5, 1]) == "0-2,5,7"
    assert gd.parse_seeds(gd.format_seeds(range(10, 20))) == list(range(10, 20))
    for bad, message in (("5-2", "runs backwards"), ("a-b", "neither a seed"),
                         ("0-4294967296", r"\[0, 2\*\*32\)"), ([], "no seeds")):
        with pytest.raises(ValueError, match=message):
            gd.parse_seeds(bad, "datasets.g.generator.seeds")
    assert gd.image_name(7) == "seed0007.png" and gd.image_name(12345) == "seed12345.png"


def test_same_seeds_give_identical_images_and_codes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    summary = generate(first, "0-5")
    generate(second, "0-5")
    assert summary["generated"] == 6 and summary["kept"] == 0
    names = sorted(p.name for p in (first / "gen").glob("*.png"))
    assert names == [f"seed{s:04d}.png" for s in range(6)]
    for name in names:  # byte-identical PNGs (pixels and the generation tag)
        assert (first / "gen" / name).read_bytes() == (second / "gen" / name).read_bytes()
    a, b = read_latents(first / "gen_latents.h5"), read_latents(second / "gen_latents.h5")
    assert a.paths == names and np.array_equal(a.seeds, np.arange(6))
    assert np.array_equal(a.z, b.z) and np.array_equal(a.w, b.w)
    # z as NVlabs' gen_images.py draws it; the images are the generator's of that w
    assert np.array_equal(a.z[3], np.random.RandomState(3).randn(32))
    generator = ProceduralFaces(32, device="cpu")
    pixels = np.asarray(Image.open(first / "gen" / "seed0003.png").convert("RGB"))
    assert np.array_equal(pixels, generator.synthesis(a.w[3:4])[0])
    assert np.array_equal(a.extra["defective"], is_defective(a.w))
    assert json.loads(a.attrs["generator"])["adapter"] == "procedural"
    assert a.attrs["seeds"] == "0-5" and len(a.attrs["settings_sha256"]) == 64
    assert gd.read_tag(first / "gen" / "seed0003.png") == {
        "settings": a.attrs["settings_sha256"], "seed": 3}


def test_extending_the_seed_range_draws_only_the_new_seeds(tmp_path):
    generate(tmp_path, "0-5")
    before = mtimes(tmp_path / "gen")
    summary = generate(tmp_path, "0-9")
    after = mtimes(tmp_path / "gen")
    assert (summary["kept"], summary["generated"], summary["removed"]) == (6, 4, 0)
    rewritten = sorted(name for name in after if before.get(name) != after[name])
    assert rewritten == [f"seed{s:04d}.png" for s in range(6, 10)]  # only the new ones
    # ... and the result is what one run of the whole range gives
    generate(tmp_path / "fresh", "0-9")
    for name in after:
        assert (tmp_path / "gen" / name).read_bytes() == (
            tmp_path / "fresh" / "gen" / name).read_bytes()
    extended, fresh = (read_latents(p / "gen_latents.h5") for p in (tmp_path,
                                                                     tmp_path / "fresh"))
    assert np.array_equal(extended.w, fresh.w) and np.array_equal(extended.z, fresh.z)
    # shrinking removes the generator's images of the dropped seeds, keeps the others
    summary = generate(tmp_path, "3-9")
    assert (summary["kept"], summary["generated"], summary["removed"]) == (7, 0, 3)
    assert list_dataset(tmp_path / "gen").images == [f"seed{s:04d}.png" for s in range(3, 10)]
    # other settings redraw every image; an image fidlens did not write is an error
    assert generate(tmp_path, "3-9", truncation_psi=0.7)["generated"] == 7
    Image.new("RGB", (8, 8)).save(tmp_path / "gen" / "mine.png")
    with pytest.raises(ValueError, match="images fidlens did not generate: mine.png"):
        generate(tmp_path, "3-9")


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    """A run killed mid-way leaves whole PNGs only (atomic writes); the next run keeps them."""
    generate(tmp_path, "0-7")
    (tmp_path / "gen_latents.h5").unlink()  # as if killed before the latents file
    for s in (5, 6, 7):
        (tmp_path / "gen" / f"seed{s:04d}.png").unlink()
    (tmp_path / "gen" / ".seed0005.png.tmp-1234").write_bytes(b"half")
    summary = generate(tmp_path, "0-7")
    assert (summary["kept"], summary["generated"]) == (5, 3)
    assert not list((tmp_path / "gen").glob(".*tmp*"))


def test_bad_seeds_files_in_yaml_and_csv(tmp_path):
    files = {"list.yaml": "[17, 3, 3]\n", "notes.yaml": "- {seed: 3, note: 'eye, mouth'}\n"
             "- {seed: 17}\n", "key.yaml": "bad_seeds: [17, 3]\n",
             "seeds.csv": "seed,note\n17,blotch\n3,\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert gi.read_bad_seeds(tmp_path / name) == [3, 17], name
    for name, text, message in (("x.yaml", "{seeds: [1]}", "expected a list"),
                                ("y.yaml", "[1, seven]", "'seven' is not a seed"),
                                ("z.csv", "id\n1\n", "needs a 'seed' column"),
                                ("e.yaml", "[]", "records no bad seed")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            gi.read_bad_seeds(tmp_path / name)


def test_ball_offsets_are_uniform_in_the_ball_and_do_not_depend_on_m():
    offsets = gi.ball_offsets(32, 2.5, 0, 17, range(1, 401))
    norms = np.linalg.norm(offsets, axis=1)
    assert norms.max() <= 2.5 and norms.min() > 0
    # uniform in the 32-ball: P(|x| <= r t) = t^32, so the median radius is 2.5 * 0.5^(1/32)
    assert np.median(norms) == pytest.approx(2.5 * 0.5 ** (1 / 32), abs=0.02)
    assert np.abs(offsets.mean(axis=0)).max() < 0.15  # no preferred direction
    assert np.array_equal(gi.ball_offsets(32, 2.5, 0, 17, [5]), offsets[4:5])
    assert not np.array_equal(gi.ball_offsets(32, 2.5, 1, 17, [5]), offsets[4:5])


def _probes(tmp_path: Path, space: str = "z", samples: int = 3) -> dict:
    (tmp_path / "bad.yaml").write_text("[1, 11]\n")
    return gi.generate_probes(tmp_path / f"probes_{space}", tmp_path / f"probes_{space}.h5",
                              tmp_path / "gen_latents.h5", {**SPEC, "seeds": "0-15"},
                              {"of": "gen", "bad_seeds": tmp_path / "bad.yaml",
                               "samples": samples, "radius": 2.5, "space": space},
                              "probes", device="cpu", progress=False)


def test_probes_surround_each_bad_seed_and_probe_0_is_the_seed(tmp_path):
    generate(tmp_path, "0-15")
    summary = _probes(tmp_path)
    assert summary["images"] == 8 and summary["bad_seeds"] == [1, 11]
    probes, gen = read_latents(tmp_path / "probes_z.h5"), read_latents(tmp_path / "gen_latents.h5")
    assert probes.paths[:4] == ["seed0001_p000.png", "seed0001_p001.png", "seed0001_p002.png",
                                "seed0001_p003.png"]
    assert list(probes.extra["centre_seed"]) == [1] * 4 + [11] * 4
    assert list(probes.extra["probe_index"]) == [0, 1, 2, 3] * 2
    assert np.array_equal(probes.w[0], gen.w[1]) and np.array_equal(probes.z[4], gen.z[11])
    pixels = [np.asarray(Image.open(p)) for p in (tmp_path / "probes_z" / "seed0011_p000.png",
                                                    tmp_path / "gen" / "seed0011.png")]
    assert np.array_equal(*pixels)
    distance = np.linalg.norm(probes.z[1:4] - gen.z[1], axis=1)
    assert (distance <= 2.5).all() and (distance > 0).all()
    # more samples keep the probes already drawn; w-space probes lie in a w-ball
    assert _probes(tmp_path, samples=5)["kept"] == 8
    _probes(tmp_path, space="w")
    in_w = read_latents(tmp_path / "probes_w.h5")
    assert in_w.z is None and np.linalg.norm(in_w.w[1:4] - gen.w[1], axis=1).max() <= 2.5
    (tmp_path / "bad.yaml").write_text("[1, 99]\n")
    with pytest.raises(ValueError, match=r"bad seeds \[99\] are not seeds of gen"):
        gi.generate_probes(tmp_path / "p", tmp_path / "p.h5", tmp_path / "gen_latents.h5",
                           {**SPEC, "seeds": "0-15"},
                           {"of": "gen", "bad_seeds": tmp_path / "bad.yaml", "samples": 2},
                           "probes", device="cpu", progress=False)


def test_sheets_show_every_image_with_its_seed_or_probe_id(tmp_path):
    generate(tmp_path, "0-15")
    _probes(tmp_path)
    pages = gi.sample_sheets(tmp_path / "gen_latents.h5", tmp_path / "gen", tmp_path / "s",
                             "gen", first=10, per_page=6, columns=3)
    assert [p.name for p in pages] == ["sheet_001.png", "sheet_002.png"]
    seeds = pd.read_csv(tmp_path / "s" / "seeds.csv")
    assert list(seeds.seed) == list(range(10)) and list(seeds.page) == [1] * 6 + [2] * 4
    probes = gi.probe_sheets(tmp_path / "probes_z.h5", tmp_path / "probes_z", tmp_path / "p",
                             "probes", columns=4)
    assert [p.name for p in probes] == ["seed0001.png", "seed0011.png"]
    for sheet in pages + probes:
        image = np.asarray(Image.open(sheet).convert("L"), dtype=np.float64)
        assert image.shape[0] > 150 and image.shape[1] >= 300
        assert image.std() > 20  # images and labels, not a blank page


def _pair_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.csv"
    path.write_text(text)
    return path


def test_probe_pairs_convert_to_the_pair_file_schema_both_readers_accept(tmp_path):
    generate(tmp_path, "0-15")
    _probes(tmp_path)
    path = _pair_file(tmp_path, "good_probe,bad_probe,note\n1-2,1-0,eye back\n"
                      "11-3,11-1,stripes gone\n\n6,4,latent rows\n")
    pairs = gi.convert_pairs(path, "gen", "probes", [1, 11], 3)
    assert [p.as_row() for p in pairs] == [
        {"good_dataset": "probes", "good_path": "seed0001_p002.png",
         "bad_dataset": "gen", "bad_path": "seed0001.png"},
        {"good_dataset": "probes", "good_path": "seed0011_p003.png",
         "bad_dataset": "probes", "bad_path": "seed0011_p001.png"},
        {"good_dataset": "probes", "good_path": "seed0011_p002.png",
         "bad_dataset": "gen", "bad_path": "seed0011.png"},  # rows 6 and 4
    ]
    assert [p.row for p in pairs] == [2, 3, 5]
    about = gi.write_inspection_pairs(path, tmp_path / "pairs.csv", tmp_path / "pairs.json",
                                      "gen", tmp_path / "gen_latents.h5", "probes",
                                      tmp_path / "probes_z.h5", first=16)
    assert about["pairs"] == 3 and about["format"] == "probes"
    # the pair-file reader of attention and discard / replace reads it without conversion
    assert attention_pairs.read_pairs(tmp_path / "pairs.csv") == [
        attention_pairs.Pair(*p.as_row().values(), row=k + 2) for k, p in enumerate(pairs)]
    listings = {"gen": list_dataset(tmp_path / "gen").images,
                "probes": list_dataset(tmp_path / "probes_z").images}
    assert attention_pairs.pair_problems(attention_pairs.read_pairs(tmp_path / "pairs.csv"),
                                         listings, "attention.pairs") == []
    # the pair-file schema passes through; mistakes name the file, line and probe
    standard = _pair_file(tmp_path, "good_dataset,good_path,bad_dataset,bad_path\n"
                          "gen,seed0002.png,gen,seed0001.png\n")
    assert gi.convert_pairs(standard, "gen")[0].good_path == "seed0002.png"
    for text, message in (("good_probe,bad_probe\n1-2,5-0\n", "seed 5, which is not a recorded"),
                          ("good_probe,bad_probe\n1-9,1-0\n", "seed 1 has probes 0..3"),
                          ("good_probe,bad_probe\n1-2,8\n", "past the probes' 8 rows"),
                          ("good_probe,bad_probe\n1-2,1-2\n", "line 2: the good and the bad"),
                          ("good_probe,bad_probe\n1-x,1-0\n", "neither a probe id"),
                          ("good_probe,bad_probe\n", "holds no pairs"),
                          ("good,bad\n1-1,1-0\n", "line 1 must name the columns")):
        with pytest.raises(attention_pairs.PairFileError, match=message):
            gi.convert_pairs(_pair_file(tmp_path, text), "gen", "probes", [1, 11], 3)


def test_table1_has_seed_000s_columns_and_the_loops_counts(tmp_path):
    generate(tmp_path, "0-15")
    _probes(tmp_path)
    path = _pair_file(tmp_path, "good_probe,bad_probe\n1-2,1-0\n11-3,11-0\n")
    about = gi.write_inspection_pairs(path, tmp_path / "pairs.csv", tmp_path / "pairs.json",
                                      "gen", tmp_path / "gen_latents.h5", "probes",
                                      tmp_path / "probes_z.h5", model="procedural",
                                      dataset_label="demo faces", first=64)
    assert json.loads((tmp_path / "pairs.json").read_text())["pairs"] == 2
    assert about["samples_inspected"] == 16  # the set has 16 seeds
    latents = read_latents(tmp_path / "probes_z.h5")
    bad_inside = int(latents.extra["defective"][[0, 4]].sum())
    assert about["ground_truth"]["bad_in_defective_region"] == bad_inside
    markdown = gi.table1_markdown([about])
    assert "| Model | Dataset | PKL | Num Seed Pairs |" in markdown
    row = ("| procedural | demo faces | built-in (procedural) | 2 | 16 | 2 | 3 (z-ball, radius "
           "2.5) |")
    assert row in markdown
    csv = gi.table1_csv([about]).splitlines()
    assert csv[0].startswith("Model,Dataset,PKL,Num Seed Pairs") and len(csv) == 2


# ---------------------------------------------------------------- the workflow


@pytest.mark.slow
def test_workflow_runs_the_loop_and_extends_the_seed_range(tmp_path):
    """Generate, sheets, probes, pairs, Table 1 and the discard / replace selection from the
    converted pairs; then a longer seed range draws only the new seeds; and the attention
    stage plans its pair sheets from the same converted file."""
    from test_workflow import planned, read_logs, run_ok, write_config

    config = {
        "demo": {"enabled": False},
        "datasets": {
            "gen": {"generator": {"seeds": "0-29", "resolution": 32}},
            "probes": {"probes": {"of": "gen", "bad_seeds": "bad.yaml", "samples": 4}},
            "train": {"path": "train"},
        },
        "extractors": {"inception": {"weights": "random", "batch_size": 8, "threads": 1}},
        "comparisons": [{"source": "gen", "target": "train"}],
        "metrics": {"names": ["fid"]},
        "inspection": {"enabled": True, "sheets": {"first": 12, "per_page": 12, "columns": 6},
                       "datasets": {"gen": {"probes": "probes", "pairs": "mine.csv"}}},
        "discard_replace": {"enabled": True, "fraction": 0.1,
                            "datasets": {"gen": {"train": "train",
                                                 "pairs": "results/inspection/gen/pairs.csv"}}},
    }
    generator = ProceduralFaces(32, device="cpu")
    w = generator.mapping(generator.z_from_seeds(range(30)), batch_size=1)
    bad = [int(s) for s in np.flatnonzero(is_defective(w))[:2]]
    (tmp_path / "bad.yaml").write_text(f"{bad}\n")
    (tmp_path / "mine.csv").write_text(f"good_probe,bad_probe\n{bad[0]}-1,{bad[0]}-0\n"
                                       f"{bad[1]}-2,{bad[1]}-0\n")
    (tmp_path / "train").mkdir()
    for seed in range(8):
        Image.fromarray(generator.synthesis(w[seed : seed + 1])[0]).save(
            tmp_path / "train" / f"{seed}.png")
    write_config(tmp_path, config)
    targets = ("results/tables/inspection_pairs.md", "results/inspection/gen/samples",
               "results/inspection/probes/probes", "results/discard_replace/gen/selection.csv")
    run_ok(tmp_path, *targets)
    assert sorted(p.name for p in (tmp_path / "results/inspection/gen/samples").glob("[!.]*")) == [
        "seeds.csv", "sheet_001.png"]
    assert len(list((tmp_path / "results/inspection/probes/probes").glob("*.png"))) == 2
    assert "| 2 | 12 | 2 | 4 (z-ball, radius 2) |" in (
        tmp_path / "results/tables/inspection_pairs.md").read_text()
    selection = pd.read_csv(tmp_path / "results/discard_replace/gen/selection.csv")
    assert len(selection) == 30 and selection.selected.sum() == 3
    about = json.loads((tmp_path / "results/discard_replace/gen/selection.json").read_text())
    assert about["n_pairs"] == 2 and about["pair_latents"] == {
        "probes": "results/generated/probes_latents.h5"}
    before = mtimes(tmp_path / "results/generated/gen")
    config["datasets"]["gen"]["generator"]["seeds"] = "0-39"
    write_config(tmp_path, config)
    run_ok(tmp_path, "results/generated/gen_latents.h5")
    assert "30 kept, 10 drawn, 0 removed" in read_logs(tmp_path)
    after = mtimes(tmp_path / "results/generated/gen")
    assert len(after) == 40 and all(after[name] == before[name] for name in before)
    # attention reads the converted pairs too: gen's pair sheet is planned from them
    config["attention"] = {"enabled": True, "pairs": "results/inspection/gen/pairs.csv"}
    write_config(tmp_path, config)
    jobs = planned(tmp_path)
    assert "results/attention/inception/gen__train/pairs.csv" in " ".join(
        jobs["attention_pairs"])
    assert any("results/features/inception/probes.h5" in out for out in jobs["extract_features"])


@pytest.mark.slow
def test_mistakes_in_the_loop_stop_before_any_job_naming_the_key(tmp_path):
    from test_workflow import planning_error, write_config

    (tmp_path / "bad.yaml").write_text("[3, 99]\n")
    (tmp_path / "mine.csv").write_text("good_probe,bad_probe\n3-1,3-0\n3-50,3-0\n")
    write_config(tmp_path, {
        "demo": {"enabled": False},
        "datasets": {
            "gen": {"path": "somewhere", "generator": {"seeds": "0-9", "class_label": 2}},
            "net": {"generator": {"adapter": "stylegan", "network": "net.pkl", "seeds": "5-1"}},
            "probes": {"probes": {"of": "gen", "bad_seeds": "bad.yaml", "samples": 4}},
        },
        "comparisons": [{"source": "gen", "target": "net"}],
        "inspection": {"enabled": True, "datasets": {
            "gen": {"probes": "probes", "pairs": "mine.csv"}, "probes": {}}},
    })
    message = planning_error(tmp_path)
    for expected in (
        "datasets.gen.path: a generated dataset is written to results/generated/gen",
        "datasets.gen.generator.class_label: the procedural generator is unconditional",
        "datasets.net.generator.seeds: range 5-1 runs backwards",
        "datasets.net.generator.network: the stylegan adapter needs an NVlabs network pickle",
        "datasets.net.generator.trust_pickle: unpickling net.pkl runs code",
        "datasets.probes.probes.bad_seeds: bad.yaml: seeds [99] are not seeds of gen",
        "inspection.datasets.probes: 'probes' is not a dataset declared by a generator",
        "inspection.datasets.gen.pairs: mine.csv line 3 (good_probe): probe '3-50': seed 3 has "
        "probes 0..4",
    ):
        assert expected in message, expected
