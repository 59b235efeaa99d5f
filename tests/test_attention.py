"""Grad-CAM of FID (fidlens.attention): maps against an independent autograd Grad-CAM on the
same networks, pooled features against the cache, the exact influence against direct FIDs,
good/bad pairs, the pictures, the pair-file schema, and the workflow stage end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from test_workflow import BASE_CONFIG, make_workdir, planning_error, run_ok, write_config

from fidlens import attention as at
from fidlens.datasets import open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor
from fidlens.metrics import feature_statistics, fid_from_features, l2_normalize
from fidlens.metrics.fid_gradient import FIDGradient
from fidlens.pairs import Pair, PairFileError, pair_problems, read_pairs, write_pairs
from fidlens.plots_attention import draw_comparison, draw_pairs, sample_indices

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def mobilenet():
    return at.prepare_for_attention(build_extractor("mobilenet_v2_imagenet", weights="auto"), CPU)


def _images(count: int, seed: int, size=(40, 48), brightness: int = 120) -> list[np.ndarray]:
    """Image-like test pictures: a smooth colour ramp with a bright blob and noise."""
    rng = np.random.default_rng(seed)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    pictures = []
    for _ in range(count):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 0.02)[..., None]
        base = np.stack([xs, ys, 1 - xs * ys], axis=2) * brightness + 120 * blob
        pictures.append((base + rng.normal(0, 20, base.shape)).clip(0, 255).astype(np.uint8))
    return pictures


def _batch(model, images):
    prepared = [np.asarray(model.preprocessor()(image)) for image in images]
    return model.collate(prepared, CPU)


def reference_gradcam(model, layer_name, batch, gradients, weighting="abs", normalize="none",
                      prefix_tokens=0):
    """Grad-CAM written out independently: the whole graph from the input (which requires
    grad), the layer's output kept by a plain hook, autograd of <output, g> to it."""
    layer = at.attention_module(model, layer_name)
    kept = {}

    def hook(module, inputs, output):
        kept["a"] = output

    handle = layer.register_forward_hook(hook)
    try:
        batch = batch.clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(batch)["features"]
            if normalize == "l2":
                out = torch.nn.functional.normalize(out.double(), dim=1)
            g = torch.as_tensor(gradients, dtype=out.dtype)
            (grad,) = torch.autograd.grad((out * g).sum(), kept["a"])
    finally:
        handle.remove()
    a = kept["a"].detach()
    if a.dim() == 3:  # tokens: B x T x C -> B x C x side x side
        side = int(round((a.shape[1] - prefix_tokens) ** 0.5))
        a = a[:, prefix_tokens:].reshape(len(a), side, side, -1).permute(0, 3, 1, 2)
        grad = grad[:, prefix_tokens:].reshape(len(a), side, side, -1).permute(0, 3, 1, 2)
    if weighting == "abs":
        alpha = grad.abs().mean(dim=(2, 3))
    else:
        alpha = (grad**2).mean(dim=(2, 3))
    return (alpha.double()[:, :, None, None] * a.double()).sum(dim=1).numpy()


# ---------------------------------------------------------------- maps against autograd


@pytest.mark.parametrize("weighting", ["abs", "squared"])
def test_mobilenet_maps_equal_an_independent_gradcam(mobilenet, weighting):
    images = _images(3, seed=1)
    batch = _batch(mobilenet, images)
    gradients = np.random.default_rng(2).normal(size=(3, mobilenet.feature_dim))
    layer = at.attention_module(mobilenet, "features.18")
    maps, features = at.gradcam_batch(mobilenet, layer, batch, gradients, weighting=weighting)
    expected = reference_gradcam(mobilenet, "features.18", batch, gradients, weighting)
    assert maps.shape == (3, 7, 7)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    with torch.no_grad():
        pooled = mobilenet(batch)["features"].numpy()
    np.testing.assert_allclose(features, pooled, rtol=0, atol=1e-6 * np.abs(pooled).max())


def test_squared_weighting_differs_from_abs_and_l2_passes_through_the_normalisation(mobilenet):
    batch = _batch(mobilenet, _images(2, seed=3))
    gradients = np.random.default_rng(4).normal(size=(2, mobilenet.feature_dim))
    layer = at.attention_module(mobilenet, "features.18")
    absolute, _ = at.gradcam_batch(mobilenet, layer, batch, gradients, weighting="abs")
    squared, _ = at.gradcam_batch(mobilenet, layer, batch, gradients, weighting="squared")
    assert not np.allclose(at.normalised(absolute), at.normalised(squared), atol=1e-3)
    l2, _ = at.gradcam_batch(mobilenet, layer, batch, gradients, normalize="l2")
    expected = reference_gradcam(mobilenet, "features.18", batch, gradients, normalize="l2")
    np.testing.assert_allclose(l2, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert not np.allclose(at.normalised(l2), at.normalised(absolute), atol=1e-3)


def test_vit_maps_use_the_patch_grid_without_the_class_token():
    model = at.prepare_for_attention(build_extractor("clip_vitb32", weights="random"), CPU)
    layer_name = model.declared["attention_layer"]  # transformer.resblocks.10
    batch = _batch(model, _images(2, seed=5, size=(32, 32)))
    gradients = np.random.default_rng(6).normal(size=(2, model.feature_dim))
    maps, _ = at.gradcam_batch(model, at.attention_module(model, layer_name), batch, gradients)
    expected = reference_gradcam(model, layer_name, batch, gradients, prefix_tokens=1)
    assert maps.shape == (2, 7, 7)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert np.ptp(maps[0]) > 0


def test_input_region_follows_the_crop_of_the_preprocessing(mobilenet):
    # torchvision's ImageNet transform: shorter side to 256, centre crop 224.
    region, exact = at.input_region(mobilenet.preprocessor(), 128, 128)
    assert exact
    np.testing.assert_allclose(region, (8, 8, 112, 112), atol=0.5)
    region, exact = at.input_region(mobilenet.preprocessor(), 48, 40)
    np.testing.assert_allclose(region, (6.5, 2.5, 35, 35), atol=0.5)
    # Resized whole: the map covers the image.
    from fidlens.extractors.networks.dinov2 import DgmEvalPreprocessor

    region, exact = at.input_region(DgmEvalPreprocessor(), 48, 40)
    assert exact
    np.testing.assert_allclose(region, (0, 0, 48, 40), atol=0.5)
    placed = at.image_map(np.arange(49.0).reshape(7, 7), (128, 128), (8, 8, 112, 112))
    assert np.isnan(placed[:8]).all() and np.isnan(placed[:, 120:]).all()
    assert np.isfinite(placed[8:120, 8:120]).all()


# ---------------------------------------------------------------- a comparison from caches


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, mobilenet):
    """Three small datasets (source, target, good) with MobileNetV2 caches and statistics."""
    from fidlens.statistics import compute_statistics, write_statistics

    root = tmp_path_factory.mktemp("attention")
    paths = {}
    for index, name in enumerate(("gen", "real", "good")):
        folder = root / name
        folder.mkdir()
        for i, image in enumerate(_images(6, seed=10 * index, brightness=90 + 30 * index)):
            Image.fromarray(image).save(folder / f"{i}.png")
        cache = root / f"{name}.h5"
        extract_features(open_source(folder), mobilenet,
                         cache, ExtractionSettings(batch_size=6, workers=0), name,
                         progress=False)
        statistics = root / f"{name}_stats.h5"
        write_statistics(statistics, compute_statistics(cache))
        paths[name] = (str(folder), str(cache), str(statistics))
    return root, paths


def _sides(paths, settings):
    gen = at.read_side("gen", paths["gen"][1], paths["gen"][2], settings)
    real = at.read_side("real", paths["real"][1], paths["real"][2], settings)
    return gen, real


@pytest.fixture(scope="module")
def sides(comparison):
    """The comparison's sides (raw features) and its FIDGradient, made once."""
    _, paths = comparison
    gen, real = _sides(paths, at.AttentionSettings())
    return gen, real, FIDGradient(real.mean, real.covariance, gen.mean, gen.covariance, gen.n)


def test_comparison_maps_influence_and_parity(comparison, sides, mobilenet):
    root, paths = comparison
    gen, real, gradient = sides
    settings = at.AttentionSettings(batch_size=4)
    result = at.comparison_attention(mobilenet, gen, real, paths["gen"][0], settings, CPU,
                                     progress=False, gradient=gradient)
    features = gen.rows
    assert result.maps.grids.shape == (6, 7, 7) and result.paths == gen.cache.paths
    assert result.fid == pytest.approx(fid_from_features(features, real.rows), rel=1e-9)
    for i in range(6):  # the exact FID of the set without each image
        without = fid_from_features(np.delete(features, i, axis=0), real.rows)
        assert result.fid_without[i] == pytest.approx(without, rel=1e-8)
    assert result.ranks()[np.argmin(result.fid_change)] == 1
    # The maps are Grad-CAM of the closed-form gradient, batch by batch as cached.
    member = gradient.member_gradients(features)
    np.testing.assert_allclose(result.gradient_norm, np.linalg.norm(member, axis=1), rtol=1e-12)
    images = [np.asarray(Image.open(f"{paths['gen'][0]}/{p}").convert("RGB"))
              for p in gen.cache.paths]
    expected = reference_gradcam(mobilenet, "features.18", _batch(mobilenet, images[:4]),
                                 member[:4])
    np.testing.assert_allclose(result.maps.grids[:4], expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
    # A cache that does not hold these features is an error naming the image and the cache.
    wrong = dataclasses.replace(gen, cached=gen.cached * 1.01)
    with pytest.raises(ValueError, match=r"gen/0\.png: the network's features differ .*gen\.h5"):
        at.gradcam_images(mobilenet, at.image_refs(wrong, paths["gen"][0], [0, 1]),
                          lambda rows: member[rows], layer="features.18", progress=False)
    # Files: the HDF5 round trip, the influence CSV, the pictures.
    at.write_maps(root / "maps.h5", result)
    again = at.read_maps(root / "maps.h5")
    np.testing.assert_allclose(again.maps.grids, result.maps.grids, rtol=1e-6)
    assert again.attrs["weighting"] == "abs" and again.attrs["relu"] is False
    assert again.attrs["weights"] == "pretrained"
    assert again.attrs["attention_layer"] == "features.18"
    at.write_influence(root / "influence.csv", result)
    rows = (root / "influence.csv").read_text().splitlines()
    assert rows[0].startswith("rank,path,fid_without,fid_change,gradient_norm")
    assert rows[1].startswith(f"1,{result.paths[int(np.argmin(result.fid_change))]},")
    out = {name: root / "pictures" / name for name in
           ("heatmaps", "overlays", "average.png", "sheet.png", "influence.png")}
    counts = draw_comparison(root / "maps.h5", paths["gen"][0], sample=3, top_k=2, progress=False,
                             **{name.split(".")[0]: path for name, path in out.items()})
    assert counts == {"images": 6, "pngs": 6, "top_k": 2}
    for folder in ("heatmaps", "overlays"):
        pngs = sorted(out[folder].glob("*.png"))
        assert [p.name for p in pngs] == ["0.png", "2.png", "5.png"]  # spread over the order
        for png in pngs:
            picture = np.asarray(Image.open(png))
            assert picture.shape == (40, 48, 3) and picture.std() > 5  # image size, not blank
    for name in ("average.png", "sheet.png", "influence.png"):
        picture = np.asarray(Image.open(out[name]).convert("L"), np.float64)
        assert min(picture.shape) > 200 and picture.std() > 10


def test_pairs_swap_fid_is_exact_and_each_pair_gets_two_maps(comparison, sides, mobilenet,
                                                             tmp_path):
    _, paths = comparison
    gen, real, gradient = sides
    settings = at.AttentionSettings(batch_size=4)
    good = at.read_side("good", paths["good"][1], None, settings, statistics=False)
    images = {"gen": paths["gen"][0], "good": paths["good"][0]}
    missing = [Pair("good", "1.png", "gen", "0.png", row=2),
               Pair("good", "1.png", "gen", "nope.png", row=7)]
    with pytest.raises(ValueError, match=r"line 7: bad image 'nope.png' has no row"):
        at.pair_attention(mobilenet, missing, gen, real, {"good": good}, images, settings, CPU)
    pairs = [Pair("good", "4.png", "gen", "3.png", row=2)]
    result = at.pair_attention(mobilenet, pairs, gen, real, {"good": good}, images, settings, CPU,
                               progress=False, gradient=gradient)
    swapped = gen.rows.copy()
    swapped[gen.index_of("3.png")] = good.rows[good.index_of("4.png")]
    assert result.fid_swapped[0] == pytest.approx(fid_from_features(swapped, real.rows), rel=1e-8)
    assert result.good.grids.shape == result.bad.grids.shape == (1, 7, 7)
    assert not np.allclose(result.good.grids, result.bad.grids)
    at.write_pair_maps(tmp_path / "pairs.h5", result)
    assert draw_pairs(tmp_path / "pairs.h5", images, tmp_path / "pairs.png") == 1
    assert np.asarray(Image.open(tmp_path / "pairs.png").convert("L")).std() > 10


def test_l2_statistics_are_those_of_the_normalised_rows(comparison):
    _, paths = comparison
    gen, _ = _sides(paths, at.AttentionSettings(normalize="l2"))
    np.testing.assert_allclose(np.linalg.norm(gen.rows, axis=1), 1.0, rtol=1e-12)
    mean, covariance = feature_statistics(l2_normalize(gen.cached))
    np.testing.assert_allclose(gen.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(gen.covariance, covariance, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- the pair file and sampling


def test_pair_file_errors_name_the_line(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("good,bad\nx,y\n")
    with pytest.raises(PairFileError, match="missing good_dataset, good_path"):
        read_pairs(path)
    path.write_text("good_dataset,good_path,bad_dataset,bad_path,note\n"
                    "real,a.png,gen,a.png,fine\n\nreal,,gen,b.png,\n")
    with pytest.raises(PairFileError, match="line 4 has no good_path"):
        read_pairs(path)
    write_pairs(path, [Pair("real", "a.png", "gen", "a.png"),
                       Pair("real", "b.png", "gen", "c.png")])
    pairs = read_pairs(path)
    assert [(p.good_path, p.row) for p in pairs] == [("a.png", 2), ("b.png", 3)]
    problems = pair_problems(pairs, {"real": ["a.png", "b.png"], "gen": ["a.png"], "x": None},
                             "attention.pairs")
    assert problems == ["attention.pairs line 3: bad_path 'c.png' is not an image of dataset "
                        "'gen' (paths are relative to the dataset's folder or zip)"]
    assert pair_problems(pairs, {"gen": None}, "p")[0].startswith(
        "p line 2: good_dataset 'real' is not a configured dataset")


def test_sample_is_spread_over_the_cache_order():
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(3, 16).tolist() == [0, 1, 2]
    assert sample_indices(5, "all").tolist() == list(range(5))
    assert sample_indices(5, 0).tolist() == []


# ---------------------------------------------------------------- the workflow stage

WORKFLOW_CONFIG = {
    **BASE_CONFIG,
    "extractors": {"mobilenet_v2_imagenet": {"batch_size": 8, "threads": 1}},
    # One comparison (a zip at working resolution 48); gen1 holds the pairs' good images.
    "comparisons": [{"source": "gen2", "target": "real"}],
    "metrics": {"names": ["fid"]},
    "attention": {"enabled": True, "sample": 2, "top_k": 2, "pairs": "pairs.csv",
                  "batch_size": 4},
}
PAIRS = ("good_dataset,good_path,bad_dataset,bad_path\n"
         "gen1,0.png,gen2,1.png\ngen1,2.png,gen2,3.png\n")


@pytest.mark.slow
def test_pair_file_problems_stop_the_workflow_before_any_job(tmp_path):
    make_workdir(tmp_path, WORKFLOW_CONFIG)
    (tmp_path / "pairs.csv").write_text(PAIRS + "nope,0.png,gen2,1.png\ngen1,9.png,gen2,1.png\n")
    message = planning_error(tmp_path)
    assert "attention.pairs (pairs.csv) line 4: good_dataset 'nope' is not a configured" in message
    assert "line 5: good_path '9.png' is not an image of dataset 'gen1'" in message
    write_config(tmp_path, {**WORKFLOW_CONFIG, "attention": {
        "enabled": True, "extractors": ["face"]}, "extractors": {
        **WORKFLOW_CONFIG["extractors"], "face": {"type": "dlib_face", "face_box": "whole_image"}}})
    assert "attention.extractors: 'face' (dlib_face) declares no attention layer" in (
        planning_error(tmp_path))


@pytest.mark.slow
def test_workflow_draws_maps_influence_pairs_and_figures(tmp_path):
    make_workdir(tmp_path, WORKFLOW_CONFIG)
    (tmp_path / "pairs.csv").write_text(PAIRS)
    # The attention stage's outputs only (the metrics and tables are other tests').
    names = ("average.png", "sheet.png", "influence.png", "influence.csv", "pairs.png",
             "pairs.csv")
    run_ok(tmp_path, *(f"results/attention/mobilenet_v2_imagenet/gen2__real/{name}"
                       for name in names), "results/attention/gen2__real.png")
    results = tmp_path / "results/attention"
    folder = results / "mobilenet_v2_imagenet" / "gen2__real"
    maps = at.read_maps(folder / "maps.h5")
    assert maps.maps.grids.shape == (8, 7, 7)
    assert maps.attrs["comparison"] == "gen2__real" and maps.attrs["normalize"] == "none"
    assert maps.attrs["weights"] == "pretrained" and maps.attrs["resolution"] == "48"
    assert len((folder / "influence.csv").read_text().splitlines()) == 9
    for kind in ("heatmaps", "overlays"):
        pictures = sorted((folder / kind).glob("*.png"))
        assert [p.name for p in pictures] == ["0.png", "7.png"]
        # gen2 is a zip at working resolution 48: the pictures have that size.
        assert all(Image.open(p).size == (48, 48) for p in pictures)
    for name in ("average.png", "sheet.png", "influence.png", "pairs.png"):
        assert np.asarray(Image.open(folder / name).convert("L")).std() > 10
    assert (results / "gen2__real.png").stat().st_size > 10_000
    pairs = (folder / "pairs.csv").read_text().splitlines()
    assert len(pairs) == 3 and pairs[1].startswith("gen1,0.png,gen2,1.png,")
    assert not (results / "mobilenet_v2_imagenet" / "gen1__real").exists()
