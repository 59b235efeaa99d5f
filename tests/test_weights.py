"""Weights specs: parsing, `auto` search order, published-hash checks and errors, fallback,
strict key checks, verified fetch, and a workflow parse that imports no torch."""

import ast
import dataclasses
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fidlens import weight_specs
from fidlens.extractors import build_extractor
from fidlens.provenance import RANDOM_INIT
from fidlens.weights import (
    WEIGHTS_SPECS,
    WeightsFileError,
    WeightsHashError,
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


def _published(spec, prefix):
    """The spec with every file's published prefix replaced (None: nothing published)."""
    files = tuple(dataclasses.replace(entry, sha256_prefix=prefix) for entry in spec.files)
    return dataclasses.replace(spec, files=files)


def _fake_digest(content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    assert not digest.startswith("6726825d")  # a fake file never has the official hash
    return digest


# ---------------------------------------------------------------- parsing a spec


@pytest.mark.parametrize(
    ("text", "kind", "seed", "path"),
    [
        ("auto", "auto", None, None),
        ("random", "random", 0, None),
        ("random:7", "random", 7, None),
        ("randomly_trained/x.pth", "file", None, "randomly_trained/x.pth"),
        ("random/x.pth", "file", None, "random/x.pth"),
        ("/w/pt_inception-2015-12-05-6726825d.pth", "file", None,
         "/w/pt_inception-2015-12-05-6726825d.pth"),
    ],
)  # fmt: skip
def test_parse_weights_kinds(text, kind, seed, path):
    parsed = weight_specs.parse_weights(text)
    assert (parsed.kind, parsed.seed, parsed.path) == (kind, seed, path)
    assert weight_specs.parse_random_seed(text) == seed


@pytest.mark.parametrize("text", ["random:x", "random:", "random:-1", ""])
def test_parse_weights_rejects_bad_values(text):
    with pytest.raises(ValueError, match="weights spec"):
        weight_specs.parse_weights(text)


def test_a_path_starting_with_random_is_a_file(places, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="randomly_trained"):
        resolve_weights(SPEC, str(tmp_path / "randomly_trained" / "x.pth"))


def test_every_accepted_file_says_whether_its_hash_is_verified():
    by_name = {entry.name: entry for entry in SPEC.files}
    assert by_name[PYTORCH_FID_NAME].hash_verified is True
    assert by_name[TORCH_FIDELITY_NAME].hash_verified is False
    assert {entry.sha256_prefix for entry in SPEC.files} == {"6726825d"}
    assert SPEC.file_names == (PYTORCH_FID_NAME, TORCH_FIDELITY_NAME)
    assert SPEC.sha256_prefix == "6726825d" and SPEC.file("other.pth") is None


# ---------------------------------------------------------------- auto


def test_auto_search_order_is_weights_dir_then_torch_hub_names(places):
    weights_dir, hub = places
    assert candidate_paths(SPEC) == [
        weights_dir / PYTORCH_FID_NAME,
        weights_dir / TORCH_FIDELITY_NAME,
        hub / PYTORCH_FID_NAME,
        hub / TORCH_FIDELITY_NAME,
    ]
    unhashed = _published(SPEC, None)  # fake files: the order alone
    _write(hub / TORCH_FIDELITY_NAME, b"torch-fidelity")
    found = resolve_weights(unhashed, "auto")
    assert found.path == hub / TORCH_FIDELITY_NAME
    _write(hub / PYTORCH_FID_NAME, b"pytorch-fid")
    assert resolve_weights(unhashed, "auto").path == hub / PYTORCH_FID_NAME
    _write(weights_dir / TORCH_FIDELITY_NAME, b"ours")
    found = resolve_weights(unhashed, "auto")
    assert found.path == weights_dir / TORCH_FIDELITY_NAME
    assert found.info.sha256 == hashlib.sha256(b"ours").hexdigest()
    assert found.info.origin.startswith(f"auto: {weights_dir / TORCH_FIDELITY_NAME} (")
    assert not found.info.random_init


def test_explicit_weights_dir_overrides_environment(places, tmp_path):
    other = tmp_path / "other"
    _write(other / PYTORCH_FID_NAME, b"x")
    found = resolve_weights(_published(SPEC, None), "auto", weights_dir=other)
    assert found.path == other / PYTORCH_FID_NAME


def test_auto_rejects_a_pytorch_fid_file_without_the_published_hash(places):
    _, hub = places
    path = _write(hub / PYTORCH_FID_NAME, b"not the official file")
    digest = _fake_digest(b"not the official file")
    with pytest.raises(WeightsHashError) as caught:
        resolve_weights(SPEC, "auto")
    message = str(caught.value)
    for part in (str(path), "6726825d", digest, "make weights", "not the official file",
                 "extractors.inception.weights to its path"):
        assert part in message
    with pytest.raises(WeightsHashError):  # through the extractor too (it is a ValueError)
        build_extractor("inception", weights="auto")


def test_auto_warns_about_and_stamps_an_unverified_torch_fidelity_file(places, caplog):
    _, hub = places
    path = _write(hub / TORCH_FIDELITY_NAME, b"maybe the official file")
    digest = _fake_digest(b"maybe the official file")
    with caplog.at_level(logging.WARNING, logger="fidlens"):
        found = resolve_weights(SPEC, "auto")
    assert found.path == path and found.info.sha256 == digest
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "fidlens"]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage() and digest in warnings[0].getMessage()
    attrs = found.info.as_attrs()
    assert attrs["weights"] == "pretrained"
    assert "UNVERIFIED" in attrs["weights_origin"] and "6726825d" in attrs["weights_origin"]
    assert "does NOT match" in attrs["weights_origin"]


@pytest.mark.parametrize("name", [PYTORCH_FID_NAME, TORCH_FIDELITY_NAME])
def test_auto_accepts_a_file_with_the_published_prefix(places, monkeypatch, caplog, name):
    _, hub = places
    content = b"pretend official file"
    path = _write(hub / name, content)
    prefix = hashlib.sha256(content).hexdigest()[:8]
    monkeypatch.setitem(WEIGHTS_SPECS, "inception", _published(SPEC, prefix))
    with caplog.at_level(logging.WARNING, logger="fidlens"):
        found = resolve_weights(WEIGHTS_SPECS["inception"], "auto")
    assert found.path == path and not caplog.records
    assert found.info.origin == (
        f"auto: {path} (sha256 matches the published sha256 prefix {prefix} of {name})"
    )


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
    found = resolve_weights(_published(SPEC, None), "auto", fallback="random")
    assert found.path == weights_dir / PYTORCH_FID_NAME
    with pytest.raises(WeightsHashError):  # nor a wrong file: that is no missing file
        resolve_weights(SPEC, "auto", fallback="random")


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
    assert given.path == path and given.info.origin.startswith("config path (")
    assert given.info.sha256 == hashlib.sha256(b"given").hexdigest()


def test_configured_path_records_whether_it_is_the_official_file(places, tmp_path, monkeypatch):
    # A configured file is used as given, even under the official name with another hash.
    content = b"my own inception"
    path = _write(tmp_path / "mine" / PYTORCH_FID_NAME, content)
    given = resolve_weights(SPEC, str(path))
    assert given.info.sha256 == _fake_digest(content)
    assert given.info.origin == (
        "config path (sha256 does NOT match the published sha256 prefix 6726825d of "
        f"pytorch-fid's {PYTORCH_FID_NAME})"
    )
    other = resolve_weights(SPEC, str(_write(tmp_path / "other.pth", content)))
    assert "does NOT match the published sha256 prefix 6726825d" in other.info.origin
    prefix = hashlib.sha256(content).hexdigest()[:8]
    monkeypatch.setitem(WEIGHTS_SPECS, "inception", _published(SPEC, prefix))
    matched = resolve_weights(WEIGHTS_SPECS["inception"], str(path))
    assert matched.info.origin == (
        f"config path (sha256 matches the published sha256 prefix {prefix} of {PYTORCH_FID_NAME})"
    )


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


# ---------------------------------------------------------------- the workflow's parse


def _common_smk_imports() -> str:
    """The import statements at the top of rules/common.smk (what the workflow parse imports)."""
    text = (REPO / "rules" / "common.smk").read_text()
    header = text[: text.index("\ndef ")]
    tree = ast.parse(header)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert any(getattr(node, "module", "") == "fidlens.extractors" for node in imports)
    return "\n".join(ast.unparse(node) for node in imports)


def test_the_workflow_parse_imports_no_torch():
    """Snakemake parses the workflow for every command (even `-n`): torch must not load."""
    code = (
        _common_smk_imports()
        + "\nimport sys\nfrom fidlens.extractors import available"
        + "\nfor name in available():"
        + "\n    assert isinstance(instance_problems(name, {'weights': 'auto'}), list)"
        + "\n    files_state(name, {'weights': 'auto'})"
        + "\nheavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))"
        + "\nprint(heavy)\nassert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unknown_extractor_is_named_with_the_available_ones():
    with pytest.raises(ValueError, match="unknown extractor 'inceptoin'; available: .*inception"):
        build_extractor("inceptoin")
