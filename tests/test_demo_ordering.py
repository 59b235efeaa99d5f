"""The demo measures something: with the pretrained extractors the demo configures
(MobileNetV2 on ImageNet, dlib's face embedding), real vs real scores better than the mild
defects, which score better than the strong ones, on FID and on precision.

Everything comes from config.yaml (the demo's size, seed and strengths, the extractors'
settings) and runs the package's own steps: demo images, extraction into caches, metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fidlens import demo
from fidlens.datasets import open_source
from fidlens.evaluate import compute_metrics
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor, own_settings

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = ("mobilenet_v2_imagenet", "dlib_face")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_metrics(tmp_path_factory):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    spec = config["demo"]
    generated = dict(sorted(spec["generated"].items(), key=lambda item: item[1]))
    assert len(generated) == 2, "the demo has one mild and one strong set"
    root = tmp_path_factory.mktemp("demo")
    sets = demo.make_demo_sets(demo.load_lfw_faces(), spec["size"], spec["seed"], generated)
    demo.write_demo(root, sets, demo.describe_demo(sets, spec["size"], spec["seed"], generated))
    results = {}
    for name in PRETRAINED:
        entry = config["extractors"][name]
        model = build_extractor(entry.get("type", name), name=name, weights=entry["weights"],
                                settings=own_settings(entry))
        assert model.provenance()["weights"] == "pretrained"
        settings = ExtractionSettings(batch_size=entry.get("batch_size", 50), workers=2)
        for dataset in sets:
            extract_features(open_source(root / dataset), model, root / f"{name}-{dataset}.h5",
                             settings, dataset, progress=False)
        results[name] = [
            compute_metrics(root / f"{name}-{source}.h5", root / f"{name}-real_b.h5",
                            metrics=("fid", "pr"), normalize="none")["raw"]
            for source in ("real_a", *generated)  # real vs real, mild, strong
        ]
    return results


@pytest.mark.parametrize("extractor", PRETRAINED)
def test_fid_orders_real_mild_strong(demo_metrics, extractor):
    real, mild, strong = (row["fid"] for row in demo_metrics[extractor])
    assert real < mild < strong, (real, mild, strong)


@pytest.mark.parametrize("extractor", PRETRAINED)
def test_precision_orders_real_mild_strong(demo_metrics, extractor):
    real, mild, strong = (row["precision"] for row in demo_metrics[extractor])
    assert real > mild > strong, (real, mild, strong)
