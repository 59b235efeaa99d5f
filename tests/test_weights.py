"""Weights specs: `auto` search order and errors, fallback, strict key checks, verified fetch."""

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fidlens.extractors.base import RANDOM_INIT
from fidlens.weights import (
    WEIGHTS_SPECS,
    WeightsFileError,
    WeightsNotFoundError,
    candidate_paths,
    load_checked_state_dict,
    resolve_weights,
    state_dict_mismatches,
)
from fidlens.weights_fetch import (
    HashMismatchError,
    fetch_all,
    fetch_verified,
    sha256_prefix_from_name,
)

SPEC = WEIGHTS_SPECS["inception"]
PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_NAME = "weights-inception-2015-12-05-6726825d.pth"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty weights folder (via $FIDLENS_WEIGHTS_DIR) and torch hub cache (via $TORCH_HOME)."""
    weights_dir = tmp_path / "fidlens-weights"
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    monkeypatch.setenv("FIDLENS_WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return weights_dir, hub


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_auto_search_order_is_weights_dir_then_torch_hub_names(places):
    weights_dir, hub = places
    assert candidate_paths(SPEC) == [
        weights_dir / PYTORCH_FID_NAME,
        weights_dir / TORCH_FIDELITY_NAME,
        hub / PYTORCH_FID_NAME,
        hub / TORCH_FIDELITY_NAME,
    ]
    _write(hub / TORCH_FIDELITY_NAME, b"torch-fidelity")
    found = resolve_weights(SPEC, "auto")
    assert found.path == hub / TORCH_FIDELITY_NAME
    _write(hub / PYTORCH_FID_NAME, b"pytorch-fid")
    assert resolve_weights(SPEC, "auto").path == hub / PYTORCH_FID_NAME
    _write(weights_dir / TORCH_FIDELITY_NAME, b"ours")
    found = resolve_weights(SPEC, "auto")
    assert found.path == weights_dir / TORCH_FIDELITY_NAME
    assert found.info.sha256 == hashlib.sha256(b"ours").hexdigest()
    assert found.info.origin == f"auto: {weights_dir / TORCH_FIDELITY_NAME}"
    assert not found.info.random_init


def test_explicit_weights_dir_overrides_environment(places, tmp_path):
    other = tmp_path / "other"
    _write(other / PYTORCH_FID_NAME, b"x")
    assert resolve_weights(SPEC, "auto", weights_dir=other).path == other / PYTORCH_FID_NAME


def test_auto_not_found_names_every_place_and_how_to_get_it(places):
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve_weights(SPEC, "auto")
    message = str(caught.value)
    for path in candidate_paths(SPEC):
        assert str(path) in message
    assert "make weights" in message
    assert SPEC.url in message


def test_auto_never_silently_becomes_random(places, caplog):
    for fallback in (None, "none"):
        with pytest.raises(WeightsNotFoundError):
            resolve_weights(SPEC, "auto", fallback=fallback)
    assert not caplog.records


def test_fallback_random_warns_and_marks_random_init(places, caplog):
    with caplog.at_level(logging.WARNING, logger="fidlens"):
        resolved = resolve_weights(SPEC, "auto", fallback="random")
    assert resolved.path is None and resolved.seed == 0
    assert resolved.info.sha256 == RANDOM_INIT
    assert resolved.info.origin.startswith("random (fallback: official file not found in ")
    assert str(candidate_paths(SPEC)[-1]) in resolved.info.origin
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "fidlens"]
    assert len(warnings) == 1 and "RANDOM" in warnings[0].getMessage()
    assert resolved.info.as_attrs()["weights"] == RANDOM_INIT


def test_fallback_does_not_hide_a_found_file(places):
    weights_dir, _ = places
    _write(weights_dir / PYTORCH_FID_NAME, b"x")
    assert resolve_weights(SPEC, "auto", fallback="random").path == weights_dir / PYTORCH_FID_NAME


def test_random_specs_and_bad_values(places, tmp_path):
    assert resolve_weights(SPEC, "random").seed == 0
    assert resolve_weights(SPEC, "random:7").seed == 7
    assert resolve_weights(SPEC, "random:7").info.sha256 == RANDOM_INIT
    with pytest.raises(ValueError, match="seed"):
        resolve_weights(SPEC, "random:x")
    with pytest.raises(ValueError, match="fallback"):
        resolve_weights(SPEC, "auto", fallback="zeros")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_weights(SPEC, str(tmp_path / "missing.pth"))
    path = _write(tmp_path / "given.pth", b"given")
    given = resolve_weights(SPEC, str(path))
    assert given.path == path and given.info.origin == "config path"
    assert given.info.sha256 == hashlib.sha256(b"given").hexdigest()


def test_state_dict_mismatches_names_keys_and_shapes():
    expected = {"a.weight": torch.Size([2, 3]), "b.bias": torch.Size([4]),
                "bn.num_batches_tracked": torch.Size([])}
    found = {"a.weight": torch.zeros(3, 2), "c.weight": torch.zeros(1)}
    missing, unexpected, shapes = state_dict_mismatches(expected, found)
    # num_batches_tracked is optional (absent from some converted checkpoints)
    assert missing == ["b.bias"]
    assert unexpected == ["c.weight"]
    assert shapes == ["a.weight: file [3, 2] vs model [2, 3]"]


def test_load_checked_state_dict_errors_name_the_file(tmp_path):
    expected = {"a.weight": torch.Size([2, 3]), "b.bias": torch.Size([4])}
    path = tmp_path / "wrong.pth"
    torch.save({"a.weight": torch.zeros(2, 2), "extra": torch.zeros(1)}, path)
    with pytest.raises(WeightsFileError) as caught:
        load_checked_state_dict(path, expected, "the test layout")
    message = str(caught.value)
    for part in (str(path), "the test layout", "1 missing key: b.bias", "1 unexpected key: extra",
                 "1 shape mismatch: a.weight: file [2, 2] vs model [2, 3]"):
        assert part in message

    garbage = _write(tmp_path / "garbage.pth", b"not a checkpoint")
    with pytest.raises(WeightsFileError, match="cannot read weights file .*garbage.pth"):
        load_checked_state_dict(garbage, expected, "the test layout")

    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"a.weight": torch.zeros(2, 3)}}, nested)
    with pytest.raises(WeightsFileError, match="not a plain state dict"):
        load_checked_state_dict(nested, expected, "the test layout")

    good = tmp_path / "good.pth"
    torch.save({"a.weight": torch.ones(2, 3), "b.bias": torch.ones(4)}, good)
    assert set(load_checked_state_dict(good, expected, "x")) == {"a.weight", "b.bias"}


# ---------------------------------------------------------------- verified fetch


def _served_file(tmp_path: Path, content: bytes) -> str:
    source = _write(tmp_path / "server" / "file.bin", content)
    return source.as_uri()


def test_hash_prefix_comes_from_the_file_name():
    assert sha256_prefix_from_name(PYTORCH_FID_NAME) == "6726825d"
    assert sha256_prefix_from_name(TORCH_FIDELITY_NAME) == "6726825d"
    assert sha256_prefix_from_name("ViT-B-32.pt") is None


def test_fetch_from_file_url_verifies_prefix_and_records_sha256(tmp_path):
    content = b"pretend weights" * 1000
    digest = hashlib.sha256(content).hexdigest()
    url = _served_file(tmp_path, content)
    destination = tmp_path / "weights" / f"model-{digest[:8]}.pth"  # prefix read from the name

    result = fetch_verified(url, destination)
    assert result.downloaded and result.sha256 == digest
    assert destination.read_bytes() == content
    assert (tmp_path / "weights" / f"{destination.name}.sha256").read_text().split()[0] == digest
    assert sorted(p.name for p in destination.parent.iterdir()) == [
        destination.name, destination.name + ".sha256"]  # no temp file left

    def must_not_download(url):
        raise AssertionError("a valid file was downloaded again")

    again = fetch_verified(url, destination, opener=must_not_download)
    assert not again.downloaded and again.sha256 == digest


def test_fetch_rejects_wrong_hash_prefix_and_deletes_download(tmp_path):
    url = _served_file(tmp_path, b"tampered")
    destination = tmp_path / "weights" / "model-00000000.pth"
    with pytest.raises(HashMismatchError, match="00000000"):
        fetch_verified(url, destination)
    assert list(destination.parent.iterdir()) == []


def test_fetch_replaces_an_invalid_present_file(tmp_path):
    content = b"good"
    digest = hashlib.sha256(content).hexdigest()
    destination = _write(tmp_path / "weights" / "model.pth", b"corrupt")
    result = fetch_verified(_served_file(tmp_path, content), destination, sha256=digest)
    assert result.downloaded and destination.read_bytes() == content


def test_fetch_all_uses_the_inception_spec_and_rejects_a_wrong_file(tmp_path):
    served = _write(tmp_path / "server" / PYTORCH_FID_NAME, b"not the official file")
    requested = []

    def opener(url):
        requested.append(url)
        return served.open("rb")

    with pytest.raises(HashMismatchError, match="6726825d"):
        fetch_all(["inception"], tmp_path / "weights", opener=opener, report=lambda _: None)
    assert requested == [SPEC.url]
    assert not (tmp_path / "weights" / PYTORCH_FID_NAME).exists()


def test_fetch_script_help_runs():
    completed = subprocess.run(
        [sys.executable, str(REPO / "workflow_scripts" / "fetch_weights.py"), "--help"],
        capture_output=True, text=True, check=True,
    )
    assert "--weights-dir" in completed.stdout


def test_failed_download_names_url_and_leaves_nothing(tmp_path):
    def offline(url):
        raise OSError("Name or service not known")

    destination = tmp_path / "weights" / "model-00000000.pth"
    with pytest.raises(OSError, match="cannot download https://example.org/m.pth"):
        fetch_verified("https://example.org/m.pth", destination, opener=offline)
    assert list(destination.parent.iterdir()) == []
