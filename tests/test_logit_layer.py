"""`layer: pool | logits`: FID (and every metric) in a classifier's logit space, read from the
same caches: the setting flows config -> compute_metrics rule params -> `--layer` -> the
`layer` argument of compute_metrics, and switching it reruns the metrics, never an extraction."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_workflow import BASE_CONFIG, config_error, make_workdir, run_ok, write_config

from fidlens.cache import FeatureCache, write_cache
from fidlens.evaluate import compute_metrics, feature_metrics
from fidlens.extractors import get_type, instance_problems

SCRIPT = Path(__file__).resolve().parents[1] / "workflow_scripts" / "compute_metrics.py"
ATTRS = {"extractor": "resnet50", "extractor_type": "resnet50", "feature_layer": "pool",
         "preprocess": "imagenet", "weights": "pretrained", "weights_sha256": "ab" * 32}


@pytest.fixture
def caches(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, shift, count in (("gen", 0.3, 40), ("real", 0.0, 30)):
        features = (rng.standard_normal((count, 16)) + shift).astype(np.float32)
        logits = (rng.standard_normal((count, 10)) - shift).astype(np.float32)
        path = tmp_path / f"{name}.h5"
        write_cache(path, FeatureCache(features=features, logits=logits, attrs=ATTRS))
        paths.append(path)
    return paths


def _arrays(path):
    from fidlens.cache import read_features

    cache = read_features(path, with_logits=True)
    return cache.features, cache.logits


def test_logits_layer_computes_the_metrics_on_the_cached_logits(caches):
    source, target = caches
    (x_pool, x_logits), (y_pool, y_logits) = _arrays(source), _arrays(target)
    pool = compute_metrics(source, target, metrics="fid,pr", normalize="none")
    logits = compute_metrics(source, target, metrics="fid,pr", normalize="none", layer="logits")
    assert pool["raw"] == feature_metrics(x_pool, y_pool, "fid,pr")
    assert logits["raw"] == feature_metrics(x_logits, y_logits, "fid,pr")
    assert (pool["layer"], pool["feature_layer"], pool["feature_dim"]) == ("pool", "pool", 16)
    assert (logits["layer"], logits["feature_layer"], logits["feature_dim"]) == (
        "logits", "logits", 10)


def test_logits_of_a_cache_without_them_is_a_clear_error(tmp_path, caches):
    plain = tmp_path / "plain.h5"
    write_cache(plain, FeatureCache(features=np.zeros((30, 4), np.float32),
                                    attrs={**ATTRS, "extractor_type": "clip_vitb32"}))
    with pytest.raises(ValueError, match=r"plain.h5 has no 'logits' \(clip_vitb32 is not a"):
        compute_metrics(caches[0], plain, metrics="fid", layer="logits")
    with pytest.raises(ValueError, match="layer must be one of pool, logits"):
        compute_metrics(caches[0], caches[1], metrics="fid", layer="fc")


def test_the_cli_flag(caches, tmp_path):
    out = tmp_path / "m.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--source", str(caches[0]), "--target", str(caches[1]),
         "--metrics", "fid", "--layer", "logits", "--out", str(out)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["layer"] == "logits" and result["feature_dim"] == 10


def test_only_classifiers_take_layer_logits():
    for name in ("inception", "mobilenet_v2_imagenet", "resnet50", "vgg16"):
        assert get_type(name).logits_dim is not None
        assert instance_problems("x", {"type": name, "weights": "random", "layer": "logits"}) == []
    [problem] = instance_problems("x", {"type": "swav_resnet50", "weights": "random",
                                        "layer": "logits"})
    assert problem.startswith("extractors.x.layer: swav_resnet50 has no classifier logits")
    assert "inception" in problem and "resnet50" in problem and "vgg16" in problem


CONFIG = {
    **BASE_CONFIG,
    "extractors": {"mobilenet_v2_imagenet": {"weights": "random", "batch_size": 8, "threads": 1,
                                             "layer": "logits"}},
}
METRICS = "results/metrics/mobilenet_v2_imagenet/gen1__real.json"


@pytest.mark.slow
def test_switching_the_layer_reruns_the_metrics_and_no_extraction(tmp_path):
    make_workdir(tmp_path, CONFIG)
    output = run_ok(tmp_path, "--printshellcmds", METRICS)
    assert "--layer logits" in output
    result = json.loads((tmp_path / METRICS).read_text())
    assert (result["layer"], result["feature_dim"]) == ("logits", 1000)
    write_config(tmp_path, {**CONFIG, "extractors": {"mobilenet_v2_imagenet": {
        **CONFIG["extractors"]["mobilenet_v2_imagenet"], "layer": "pool"}}})
    planned = run_ok(tmp_path, "--dry-run", METRICS)
    # the metrics and both sets' statistics (the layer is theirs too); no extraction
    assert sorted(re.findall(r"^(?:local)?rule (\w+):$", planned, re.M)) == [
        "compute_metrics", "dataset_statistics", "dataset_statistics"]
    run_ok(tmp_path, METRICS)
    result = json.loads((tmp_path / METRICS).read_text())
    assert (result["layer"], result["feature_layer"], result["feature_dim"]) == (
        "pool", "pool", 1280)


@pytest.mark.slow
def test_layer_logits_of_a_network_without_logits_stops_before_any_job(tmp_path):
    config = {**BASE_CONFIG, "extractors": {"dino": {"type": "dinov2_vitb14_reg",
                                                     "weights": "random", "layer": "logits"}}}
    message = config_error(tmp_path, config)
    assert "extractors.dino.layer: dinov2_vitb14_reg has no classifier logits" in message
