"""FID Inception: parity with pytorch-fid, torch-fidelity and clean-fid (each run here on a
random checkpoint in the official layout), strict loading, seeded random init."""

import dataclasses
import logging
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms
from cleanfid.inception_torchscript import InceptionV3W
from cleanfid.resize import make_resizer
from cleanfid.utils import ResizeDataset
from PIL import Image
from pytorch_fid.inception import InceptionV3
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torchvision.models.inception import BasicConv2d

from fidlens.extractors import available, build_extractor
from fidlens.extractors.base import RANDOM_INIT
from fidlens.extractors.networks.inception import (
    ConvReLU,
    FIDInceptionV3,
    build_random_state_dict,
    init_random_weights,
    onednn_fusion_available,
    preprocess_torch_fidelity,
    random_state_dict,
    resize_pil_bicubic_per_channel,
)
from fidlens.weights import (
    WEIGHTS_SPECS,
    WeightsFileError,
    WeightsNotFoundError,
    file_sha256,
)

PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"
# (width, height) of the parity images: smaller, larger, equal and non-square vs 299.
PARITY_SIZES = [(64, 64), (300, 200), (299, 299), (512, 384)]
PARITY_TOLERANCE = 1e-4  # relative to max |feature| of the reference, per image


def _image_like(width: int, height: int, rng: np.random.RandomState) -> np.ndarray:
    """Smooth colour gradients + blocks + noise: exercises resampling at all frequencies."""
    ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([xs, ys, 1 - xs * ys], axis=2) * 200
    block = (rng.uniform(0, 1, (8, 8, 3)) * 55).repeat(-(-height // 8), 0).repeat(-(-width // 8), 1)
    noisy = base + block[:height, :width] + rng.normal(0, 12, (height, width, 3))
    return noisy.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def parity_files(tmp_path_factory):
    """RGB PNGs of different sizes written to disk, and the arrays decoded from them."""
    folder = tmp_path_factory.mktemp("parity-images")
    rng = np.random.RandomState(2024)
    paths, arrays = [], []
    for width, height in PARITY_SIZES:
        path = folder / f"img_{width}x{height}.png"
        Image.fromarray(_image_like(width, height, rng)).save(path)
        paths.append(path)
        arrays.append(np.asarray(Image.open(path).convert("RGB")))
    return paths, arrays


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Our seeded random weights saved as a plain state dict under pytorch-fid's file name."""
    path = tmp_path_factory.mktemp("ckpt") / PYTORCH_FID_NAME
    torch.save(random_state_dict(0), path)
    return path


def _ours(checkpoint, mode: str) -> FIDInceptionV3:
    return build_extractor("inception", weights=str(checkpoint), preprocess=mode)


def _our_outputs(model: FIDInceptionV3, image: np.ndarray) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        outputs = model(model.preprocessor()(image)[None])
    return {name: value[0] for name, value in outputs.items()}


def _assert_close(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Max abs difference relative to max |reference|; asserts it is within the tolerance."""
    assert ours.shape == reference.shape
    relative = ((ours - reference).abs().max() / reference.abs().max()).item()
    assert relative <= PARITY_TOLERANCE, relative
    return relative


def test_registered_with_interface_attributes():
    assert "inception" in available()
    assert FIDInceptionV3.name == "inception"
    assert FIDInceptionV3.feature_layer == "pool3"
    assert (FIDInceptionV3.feature_dim, FIDInceptionV3.logits_dim) == (2048, 1008)
    assert FIDInceptionV3.preprocess_modes == ("clean", "pytorch-fid", "torch-fidelity")


def test_building_leaves_torch_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_extractor("inception", weights="random")
    assert torch.equal(torch.rand(3), expected)


def test_pytorch_fid_parity_with_auto_from_torch_home(
    checkpoint, parity_files, tmp_path, monkeypatch
):
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / PYTORCH_FID_NAME).symlink_to(checkpoint)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(tmp_path / "empty"))
    # `auto` checks the published hash prefix: make it this (random) checkpoint's.
    spec = WEIGHTS_SPECS["inception"]
    files = tuple(
        dataclasses.replace(entry, sha256_prefix=file_sha256(checkpoint)[:8])
        for entry in spec.files
    )
    monkeypatch.setitem(WEIGHTS_SPECS, "inception", dataclasses.replace(spec, files=files))

    ours = build_extractor("inception", weights="auto", preprocess="pytorch-fid")
    assert ours.weights_info.path == str(hub / PYTORCH_FID_NAME)
    assert ours.weights_info.sha256 == file_sha256(checkpoint)
    assert ours.provenance()["weights"] == "pretrained"
    reference = InceptionV3([3], resize_input=True, normalize_input=True).eval()  # loads from hub
    to_tensor = torchvision.transforms.ToTensor()
    for image in parity_files[1]:
        with torch.no_grad():
            expected = reference(to_tensor(image.copy())[None])[0].flatten()
        _assert_close(_our_outputs(ours, image)["features"], expected)


def test_torch_fidelity_parity_features_and_logits(checkpoint, parity_files):
    ours = _ours(checkpoint, "torch-fidelity")
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits"], feature_extractor_weights_path=str(checkpoint)
    )
    for image in parity_files[1]:
        uint8 = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].contiguous()
        # The TF1 resize itself matches exactly: same float32 operations on every pixel.
        their_input = interpolate_bilinear_2d_like_tensorflow1x(
            uint8.float(), size=(299, 299), align_corners=False
        )
        assert torch.equal(preprocess_torch_fidelity(image), ((their_input - 128) / 128)[0])
        with torch.no_grad():
            features, logits = reference(uint8)
        outputs = _our_outputs(ours, image)
        _assert_close(outputs["features"], features[0])
        _assert_close(outputs["logits"], logits[0])  # fc(pool3) with bias


def test_clean_resize_matches_clean_fid_exactly(parity_files):
    resizer = make_resizer("PIL", False, "bicubic", (299, 299))
    for image in parity_files[1]:
        ours = resize_pil_bicubic_per_channel(image)
        assert ours.dtype == np.float32 and ours.shape == (299, 299, 3)
        np.testing.assert_array_equal(ours, resizer(image))


class _FeaturesOnly(torch.nn.Module):
    """Stands in for clean-fid's TorchScript `layers`: our network on its normalised input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["features"]


def test_clean_parity_through_clean_fid_pipeline(checkpoint, parity_files):
    ours = _ours(checkpoint, "clean")
    # clean-fid's own file reading + resize (mode "clean"), and its wrapper's normalisation
    # ((x - 128) / 128, resize_inside=False) around our network in place of its TorchScript.
    dataset = ResizeDataset([str(path) for path in parity_files[0]], mode="clean")
    wrapper = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(wrapper)
    wrapper.layers = _FeaturesOnly(ours)
    wrapper.resize_inside = False
    for index, image in enumerate(parity_files[1]):
        with torch.no_grad():
            expected = wrapper(dataset[index][None])[0]
        assert torch.equal(ours.preprocessor()(image), (dataset[index] - 128) / 128)
        _assert_close(_our_outputs(ours, image)["features"], expected)


def test_strict_loading_names_file_and_bad_keys(tmp_path):
    state = random_state_dict(0)
    del state["fc.bias"]
    state["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    state["Mixed_7c.branch_pool.conv.weight"] = torch.zeros(10, 2048, 1, 1)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(WeightsFileError) as caught:
        build_extractor("inception", weights=str(path))
    message = str(caught.value)
    assert str(path) in message and PYTORCH_FID_NAME in message
    assert "missing key: fc.bias" in message
    assert "unexpected key: AuxLogits.fc.weight" in message
    assert "Mixed_7c.branch_pool.conv.weight: file [10, 2048, 1, 1] vs model [192, 2048, 1, 1]" in (
        message
    )


def test_checkpoint_without_num_batches_tracked_loads(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    trimmed = {key: value for key, value in state.items() if "num_batches_tracked" not in key}
    path = tmp_path / "trimmed.pth"
    torch.save(trimmed, path)
    model = build_extractor("inception", weights=str(path))
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])


def test_fallback_random_builds_marked_model(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsNotFoundError):
        build_extractor("inception", weights="auto", weights_dir=str(tmp_path / "w"))
    with caplog.at_level(logging.WARNING, logger="fidlens"):
        model = build_extractor(
            "inception", weights="auto", fallback="random", weights_dir=str(tmp_path / "w")
        )
    assert any(r.levelno == logging.WARNING and r.name == "fidlens" for r in caplog.records)
    assert model.weights_info.sha256 == RANDOM_INIT
    assert model.weights_info.origin.startswith("random (fallback: official file not found in")
    assert model.provenance()["weights"] == RANDOM_INIT
    assert model.provenance()["weights_path"] == RANDOM_INIT


def test_random_init_is_deterministic_and_seeded(parity_files):
    fresh = build_random_state_dict(0)  # a second, independent calibration
    cached = random_state_dict(0)
    assert fresh.keys() == cached.keys()
    assert all(torch.equal(fresh[key], cached[key]) for key in fresh)

    model = build_extractor("inception", weights="random")
    assert model.weights_info.sha256 == RANDOM_INIT
    again = build_extractor("inception", weights="random")
    image = parity_files[1][0]
    first, second = _our_outputs(model, image), _our_outputs(again, image)
    assert torch.equal(first["features"], second["features"])

    # Different seeds give different weights (checked before calibration, which is the slow part).
    a, b = FIDInceptionV3("clean", model.weights_info), FIDInceptionV3("clean", model.weights_info)
    init_random_weights(a, 1)
    init_random_weights(b, 2)
    assert not torch.equal(a.Conv2d_1a_3x3.conv.weight, b.Conv2d_1a_3x3.conv.weight)


def test_random_features_are_finite_sane_and_informative(parity_files):
    model = build_extractor("inception", weights="random")
    batch = torch.stack([model.preprocessor()(image) for image in parity_files[1]])
    with torch.inference_mode():
        outputs = model(batch)
    features, logits = outputs["features"], outputs["logits"]
    assert features.shape == (4, 2048) and logits.shape == (4, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    assert features.abs().max() < 100  # uncalibrated random BN statistics give ~1e10
    assert (features > 0).float().mean() > 0.5  # few dead channels
    distances = torch.cdist(features, features)
    assert distances[~torch.eye(4, dtype=torch.bool)].min() > 0.01 * features.norm(dim=1).mean()


def test_preprocessor_contract_for_every_mode(parity_files):
    image = parity_files[1][1]  # 300 x 200
    model = build_extractor("inception", weights="random")
    for mode in FIDInceptionV3.preprocess_modes:
        model.preprocess_mode = mode
        transform = pickle.loads(pickle.dumps(model.preprocessor()))  # DataLoader workers
        tensor = transform(image)
        assert tensor.shape == (3, 299, 299) and tensor.dtype == torch.float32
        assert tensor.is_contiguous()
        assert -1.0 <= tensor.min() and tensor.max() <= 1.0
        with pytest.raises(ValueError, match="uint8 RGB"):
            transform(image.astype(np.float32))
        with pytest.raises(ValueError, match="uint8 RGB"):
            transform(image[:, :, 0])
    assert build_extractor("inception", weights="random").preprocess_mode == "clean"
    with pytest.raises(ValueError, match="no preprocessing mode"):
        build_extractor("inception", weights="random", preprocess="tf")


def test_channels_last_inference_matches(parity_files):
    model = build_extractor("inception", weights="random")
    batch = torch.stack([model.preprocessor()(image) for image in parity_files[1][:2]])
    with torch.inference_mode():
        expected = model(batch)["features"]
        model = model.to(memory_format=torch.channels_last)
        got = model(batch.to(memory_format=torch.channels_last))["features"]
    _assert_close(got, expected)


def _batch_through_prepared(model: FIDInceptionV3, images) -> dict[str, torch.Tensor]:
    """Images as the extraction loop runs them: preprocess, `prepare`, `collate`, forward."""
    items = [model.preprocessor()(image).numpy() for image in images]
    prepared = model.prepare(torch.device("cpu"))
    with torch.inference_mode():
        return prepared(prepared.collate(items, torch.device("cpu")))


def test_prepared_network_is_a_fused_copy_with_pytorch_fid_parity(
    checkpoint, parity_files, tmp_path, monkeypatch
):
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / PYTORCH_FID_NAME).symlink_to(checkpoint)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    ours = _ours(checkpoint, "pytorch-fid")
    prepared = ours.prepare(torch.device("cpu"))
    assert prepared is not ours
    assert not any(isinstance(m, BasicConv2d) for m in prepared.modules())
    assert sum(isinstance(m, ConvReLU) for m in prepared.modules()) == 94
    assert all(m.onednn == onednn_fusion_available(torch.device("cpu"))
               for m in prepared.modules() if isinstance(m, ConvReLU))
    # The extractor keeps its unfused layers (and its checkpoint keys); hooks find the blocks.
    assert isinstance(ours.Mixed_7c.branch_pool, BasicConv2d)
    assert "Mixed_7c.branch_pool.bn.running_var" in ours.state_dict()
    assert prepared.get_submodule("Mixed_7c") is not ours.Mixed_7c

    images = parity_files[1]
    fused = _batch_through_prepared(ours, images)
    reference = InceptionV3([3], resize_input=True, normalize_input=True).eval()
    to_tensor = torchvision.transforms.ToTensor()
    for row, image in enumerate(images):
        with torch.no_grad():
            expected = reference(to_tensor(image.copy())[None])[0].flatten()
        _assert_close(fused["features"][row], expected)
        unfused = _our_outputs(ours, image)
        for name in ("features", "logits", "logits_unbiased"):
            _assert_close(fused[name][row], unfused[name])


def test_conv_relu_equals_conv_batch_norm_relu_on_both_paths():
    torch.manual_seed(0)
    basic = BasicConv2d(16, 24, kernel_size=(1, 3), padding=(0, 1)).eval()
    with torch.no_grad():
        basic.bn.running_mean.uniform_(-1, 1)
        basic.bn.running_var.uniform_(0.5, 2)
        basic.bn.weight.uniform_(0.5, 2)
        basic.bn.bias.uniform_(-1, 1)
    basic = basic.to(memory_format=torch.channels_last)
    for onednn in (False, onednn_fusion_available(torch.device("cpu"))):
        fused = ConvReLU(basic, onednn)
        for batch in (3, 2, 3):  # a new input shape re-packs the weights
            x = torch.randn(batch, 16, 9, 11).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                expected, got = basic(x), fused(x)
            assert got.is_contiguous(memory_format=torch.channels_last)
            _assert_close(got, expected)


def test_prepared_network_keeps_gradients_to_its_input(checkpoint, parity_files):
    """Under autograd the fused layers fall back to differentiable F.conv2d."""
    ours = _ours(checkpoint, "pytorch-fid")
    prepared = ours.prepare(torch.device("cpu"))
    x = ours.preprocessor()(parity_files[1][0])[None].contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode():
        expected = prepared(x)["features"]
    x.requires_grad_(True)
    features = prepared(x)["features"]
    features.sum().backward()
    _assert_close(features.detach(), expected)
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    assert all(parameter.grad is None for parameter in ours.parameters())  # folded: no history
