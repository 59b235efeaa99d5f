"""Inception Score (fidlens.inception_score): a direct numpy computation on given logits, and
torch-fidelity's ISC on the same images through the same random-weights Inception, read from
our cache's unbiased logits (outputs/logits_unbiased)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity
from PIL import Image

from fidlens.cache import FeatureCache, read_features, write_cache
from fidlens.datasets import open_source
from fidlens.experiments.run import inception_score_of_cache
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor
from fidlens.extractors.networks.inception import random_state_dict
from fidlens.inception_score import TORCH_FIDELITY_SEED, inception_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))
import experiment_tables  # noqa: E402

N_IMAGES = 8
SPLITS = 2


def _direct(logits, splits):
    """IS by the definition, one split and one image at a time."""
    scores = []
    for part in np.array_split(np.arange(len(logits)), splits):
        probabilities = [np.exp(row - row.max()) / np.exp(row - row.max()).sum()
                         for row in logits[part]]
        marginal = np.mean(probabilities, axis=0)
        kl = [np.sum(p * np.log(p / marginal)) for p in probabilities]
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores), np.std(scores)


def test_inception_score_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(40, 25))
    for splits in (1, 4, 10):
        result = inception_score(logits, splits=splits)
        mean, std = _direct(logits, splits)
        assert result["mean"] == pytest.approx(mean, rel=1e-12)
        assert result["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert len(result["scores"]) == splits
    shuffled = inception_score(logits, splits=4, shuffle_seed=TORCH_FIDELITY_SEED)
    order = np.random.RandomState(TORCH_FIDELITY_SEED).permutation(40)
    assert shuffled["mean"] == pytest.approx(_direct(logits[order], 4)[0], rel=1e-12)
    # Identical predictions everywhere: p(y|x) = p(y), IS = 1; one-hot over K classes: IS = K.
    assert inception_score(np.zeros((10, 5)), splits=2)["mean"] == pytest.approx(1.0)
    assert inception_score(np.eye(8) * 60.0, splits=1)["mean"] == pytest.approx(8.0, rel=1e-9)
    with pytest.raises(ValueError, match="10 splits need at least 10 images"):
        inception_score(logits[:5], splits=10)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("is-images")
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:64, 0:64] / 64.0
    for i in range(N_IMAGES):
        base = np.stack([xs * rng.uniform(50, 250), ys * rng.uniform(50, 250),
                         (1 - xs * ys) * rng.uniform(50, 250)], axis=2)
        image = (base + rng.normal(0, rng.uniform(5, 40), base.shape)).clip(0, 255)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"img_{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Our seeded random Inception with a last layer scaled up, so that the class
    probabilities are far from uniform (IS well above 1) and the bias matters."""
    state = random_state_dict(0)  # seed 0: computed once per process, shared with other tests
    state["fc.weight"] = state["fc.weight"] * 40.0
    state["fc.bias"] = torch.linspace(-3.0, 3.0, len(state["fc.bias"]))
    path = tmp_path_factory.mktemp("ckpt") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path


def _our_logits(model, folder):
    """Our network's outputs for the images of `folder`, in file order, run as torch-fidelity
    runs its network (contiguous layout: bit-identical to it; the extraction loop's
    channels_last layout moves logits by ~2e-5 relative, see the last assertion)."""
    batch = torch.stack([model.preprocessor()(np.asarray(Image.open(path).convert("RGB")))
                         for path in sorted(folder.glob("*.png"))])
    with torch.inference_mode():
        return {name: value.numpy() for name, value in model.eval()(batch).items()}


def test_equals_torch_fidelity_isc_on_the_same_images(images, checkpoint, tmp_path):
    model = build_extractor("inception", weights=str(checkpoint), preprocess="torch-fidelity")
    outputs = _our_logits(model, images)
    # The unbiased logits are the biased ones less the last layer's bias.
    bias = torch.load(checkpoint, weights_only=True)["fc.bias"].numpy()
    np.testing.assert_allclose(outputs["logits_unbiased"] + bias, outputs["logits"],
                               atol=1e-5 * np.abs(outputs["logits"]).max())
    cache_path = tmp_path / "inception.h5"
    write_cache(cache_path, FeatureCache(
        features=outputs["features"], logits=outputs["logits"],
        outputs={"logits_unbiased": outputs["logits_unbiased"]},
        attrs={"extractor": "inception", "extractor_type": "inception", "dataset": "images",
               **model.weights_info.as_attrs()},
    ))
    ours = inception_score_of_cache(cache_path, splits=SPLITS, logits="unbiased",
                                    shuffle_seed=TORCH_FIDELITY_SEED)
    assert ours["logits_used"].startswith("logits_unbiased")
    theirs = torch_fidelity.calculate_metrics(
        input1=str(images), isc=True, isc_splits=SPLITS, cuda=False, cache=False,
        verbose=False, batch_size=N_IMAGES, save_cpu_ram=True,  # no worker processes
        feature_extractor_weights_path=str(checkpoint),
        samples_shuffle=True, rng_seed=TORCH_FIDELITY_SEED,
    )
    assert theirs["inception_score_mean"] > 1.5  # far from the trivial IS of 1
    assert ours["inception_score_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours["inception_score_std"] == pytest.approx(theirs["inception_score_std"],
                                                        rel=1e-6, abs=1e-9)
    # Asking for the biased logits gives another number, computed from `logits`.
    biased = inception_score_of_cache(cache_path, splits=SPLITS, logits="biased",
                                      shuffle_seed=TORCH_FIDELITY_SEED)
    expected = inception_score(outputs["logits"], SPLITS, TORCH_FIDELITY_SEED)["mean"]
    assert biased["inception_score_mean"] == pytest.approx(expected, rel=1e-12)
    assert abs(biased["inception_score_mean"] - ours["inception_score_mean"]) > 1e-3
    json.dumps(ours)  # JSON-ready

    # The extraction loop stores the unbiased logits in the cache; its channels_last layout
    # (another convolution algorithm) moves them, and the score, slightly.
    extracted = tmp_path / "extracted.h5"
    extract_features(open_source(images), model, extracted,
                     ExtractionSettings(batch_size=N_IMAGES, workers=0, device="cpu"),
                     progress=False)
    cache = read_features(extracted, with_logits=True, with_outputs=True)
    np.testing.assert_allclose(cache.outputs["logits_unbiased"], outputs["logits_unbiased"],
                               atol=1e-4 * np.abs(outputs["logits_unbiased"]).max())
    from_loop = inception_score_of_cache(extracted, splits=SPLITS,
                                         shuffle_seed=TORCH_FIDELITY_SEED)
    assert from_loop["inception_score_mean"] == pytest.approx(
        theirs["inception_score_mean"], rel=1e-4)


def test_a_classifier_without_unbiased_logits_uses_its_logits_and_says_so(tmp_path):
    logits = np.random.default_rng(2).normal(scale=4.0, size=(20, 1000)).astype(np.float32)
    cache_path = tmp_path / "mobilenet.h5"
    write_cache(cache_path, FeatureCache(
        features=np.zeros((20, 4), np.float32), logits=logits,
        attrs={"extractor": "mobilenet", "extractor_type": "mobilenet_v2_imagenet",
               "weights": "pretrained", "dataset": "set"},
    ))
    result = inception_score_of_cache(cache_path, splits=2, logits="unbiased")
    assert result["classes"] == 1000 and "provides no bias-free logits" in result["logits_used"]
    assert result["inception_score_mean"] == pytest.approx(
        inception_score(logits, 2)["mean"], rel=1e-12)
    assert (result["dataset"], result["extractor"], result["n"]) == ("set", "mobilenet", 20)
    # The table script: one row per JSON, saying which logits.
    (tmp_path / "is.json").write_text(json.dumps(result))
    assert experiment_tables.main([
        "--kind", "inception_score", "--results", str(tmp_path / "is.json"),
        "--csv", str(tmp_path / "is.csv"), "--markdown", str(tmp_path / "is.md"),
    ]) == 0
    markdown = (tmp_path / "is.md").read_text()
    assert "| mobilenet | set | logits | 20 | 2 |" in markdown and "Sets of 20 images" in markdown


def test_an_inception_cache_without_unbiased_logits_is_an_error(tmp_path):
    cache_path = tmp_path / "old.h5"
    write_cache(cache_path, FeatureCache(
        features=np.zeros((4, 2), np.float32), logits=np.zeros((4, 1008), np.float32),
        attrs={"extractor": "inception", "extractor_type": "inception"},
    ))
    with pytest.raises(ValueError, match="no outputs/logits_unbiased.*Rebuild"):
        inception_score_of_cache(cache_path, splits=2)
    biased = inception_score_of_cache(cache_path, splits=2, logits="biased")
    assert biased["inception_score_mean"] == pytest.approx(1.0)
