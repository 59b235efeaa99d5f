"""Extraction loop: batching, bad-image policy, cache contents, atomic output, resume.

A small real convolutional extractor keeps these fast; the real InceptionV3 goes through the
same loop in test_extract_cli.py.
"""

import functools

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from fidlens import extract as extract_module
from fidlens.cache import CorruptCacheError, read_features
from fidlens.datasets import BadImageError, manifest_rows, open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors.base import Extractor, WeightsInfo


def _small_input(image: np.ndarray, size: int) -> torch.Tensor:
    tensor = torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0) / 255
    return torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear")[0]


class TinyExtractor(Extractor):
    name = "tiny"
    feature_layer = "pool"
    feature_dim = 8
    logits_dim = 3
    preprocess_modes = ("bilinear",)

    def __init__(self, fail_after_batches: int | None = None):
        super().__init__("bilinear", WeightsInfo(None, "random-init", "test"))
        generator = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 3)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.calls, self.fail_after_batches = 0, fail_after_batches

    def preprocessor(self):
        return functools.partial(_small_input, size=16)

    def forward(self, batch):
        self.calls += 1
        if self.fail_after_batches is not None and self.calls > self.fail_after_batches:
            raise KeyboardInterrupt("simulated crash")
        features = torch.relu(self.conv(batch)).mean(dim=(2, 3))
        return {"features": features, "logits": self.fc(features)}


def write_images(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = (20 + i % 3, 24)
        pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
    return folder


SETTINGS = ExtractionSettings(batch_size=4, workers=0)


def test_cache_holds_features_logits_paths_hashes_and_provenance(tmp_path):
    source = open_source(write_images(tmp_path / "images", 10), "faces")
    out = tmp_path / "cache.h5"
    extract_features(source, TinyExtractor(), out, SETTINGS, "faces", progress=False)
    cache = read_features(out, with_logits=True)
    assert cache.features.shape == (10, 8) and cache.features.dtype == np.float32
    assert cache.logits.shape == (10, 3)
    assert cache.paths == [f"img_{i:03d}.png" for i in range(10)]
    assert all(len(s) == 40 for s in cache.sha1)
    assert cache.attrs["extractor"] == "tiny" and cache.attrs["weights"] == "random-init"
    assert cache.attrs["dataset"] == "faces" and cache.attrs["n_images"] == 10
    assert "torch" in cache.attrs["package_versions"]
    # The loop is a plain batched forward pass: compare with one done by hand.
    model = TinyExtractor()
    expected = model(torch.stack([model.preprocessor()(np.array(Image.open(
        tmp_path / "images" / p).convert("RGB"))) for p in cache.paths]))["features"]
    np.testing.assert_allclose(cache.features, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob(".cache.h5.partial"))  # progress folder cleaned up


def test_workers_give_the_same_cache(tmp_path):
    source = open_source(write_images(tmp_path / "images", 9))
    extract_features(source, TinyExtractor(), tmp_path / "a.h5", SETTINGS, progress=False)
    with_workers = ExtractionSettings(batch_size=4, workers=2)
    extract_features(source, TinyExtractor(), tmp_path / "b.h5", with_workers, progress=False)
    assert np.array_equal(read_features(tmp_path / "a.h5").features,
                          read_features(tmp_path / "b.h5").features)


def test_bad_image_stops_with_file_and_dataset_named(tmp_path):
    images = write_images(tmp_path / "images", 6)
    (images / "img_002.png").write_bytes(b"")
    out = tmp_path / "cache.h5"
    with pytest.raises(BadImageError, match=r"'faces'.*img_002\.png.*zero-byte"):
        extract_features(open_source(images, "faces"), TinyExtractor(), out, SETTINGS, "faces",
                         progress=False)
    assert not out.exists()


def test_skip_lists_bad_images_and_keeps_the_rest(tmp_path):
    images = write_images(tmp_path / "images", 7)
    (images / "img_001.png").write_bytes(b"not a png")
    (images / "img_005.png").write_bytes((images / "img_004.png").read_bytes()[:50])
    skip = ExtractionSettings(batch_size=4, workers=0, on_bad_image="skip")
    out = tmp_path / "cache.h5"
    cache = extract_features(open_source(images), TinyExtractor(), out, skip, progress=False)
    assert cache.paths == ["img_000.png", "img_002.png", "img_003.png", "img_004.png",
                           "img_006.png"]
    assert [s.split(":")[0] for s in cache.skipped] == ["img_001.png", "img_005.png"]
    stored = read_features(out)
    assert stored.skipped == cache.skipped and stored.attrs["n_skipped"] == 2
    with h5py.File(out) as handle:
        assert handle["features"].shape == (5, 8)


def test_all_images_bad_is_an_error(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.jpg"):
        (images / name).write_text("text")
    skip = ExtractionSettings(batch_size=4, workers=0, on_bad_image="skip")
    with pytest.raises(BadImageError, match="none of its 2 images"):
        extract_features(open_source(images, "x"), TinyExtractor(), tmp_path / "c.h5", skip, "x",
                         progress=False)


def test_resume_after_crash_gives_identical_cache(tmp_path):
    source = open_source(write_images(tmp_path / "images", 11))
    full = tmp_path / "full.h5"
    extract_features(source, TinyExtractor(), full, SETTINGS, progress=False)

    resumed = tmp_path / "resumed.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(source, TinyExtractor(fail_after_batches=2), resumed, SETTINGS,
                         progress=False)
    partial = tmp_path / ".resumed.h5.partial"
    assert len(list(partial.glob("batch_*.npz"))) == 2 and not resumed.exists()
    second = TinyExtractor()
    extract_features(source, second, resumed, SETTINGS, progress=False)
    assert second.calls == 1  # only the last of 3 batches was computed again
    assert np.array_equal(read_features(full).features, read_features(resumed).features)
    assert read_features(full).paths == read_features(resumed).paths
    assert not partial.exists()


def test_stale_progress_from_other_settings_is_discarded(tmp_path):
    source = open_source(write_images(tmp_path / "images", 8))
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(source, TinyExtractor(fail_after_batches=1), out, SETTINGS,
                         progress=False)
    other = ExtractionSettings(batch_size=4, workers=0, resolution=12)
    model = TinyExtractor()
    extract_features(source, model, out, other, progress=False)
    assert model.calls == 2  # nothing reused: the working resolution changed
    assert read_features(out).attrs["resolution"] == 12


def test_resume_discards_batches_whose_images_were_regenerated(tmp_path):
    """A sample folder regenerated under the same names after a crash: nothing of the old
    content may reach the new cache."""
    images = tmp_path / "images"
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(open_source(write_images(images, 10, seed=0)),
                         TinyExtractor(fail_after_batches=2), out, SETTINGS, progress=False)
    write_images(images, 10, seed=1)  # same names, same count, new pixels
    regenerated = open_source(images)
    model = TinyExtractor()
    extract_features(regenerated, model, out, SETTINGS, progress=False)
    assert model.calls == 3  # both saved batches were stale
    fresh = tmp_path / "fresh.h5"
    extract_features(regenerated, TinyExtractor(), fresh, SETTINGS, progress=False)
    assert np.array_equal(read_features(out).features, read_features(fresh).features)
    assert read_features(out).sha1 == read_features(fresh).sha1


def test_resume_checks_saved_batches_against_the_manifest(tmp_path):
    images = write_images(tmp_path / "images", 10, seed=0)
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(open_source(images), TinyExtractor(fail_after_batches=2), out,
                         SETTINGS, progress=False, manifest=manifest_rows(open_source(images)))
    # Only the second batch's images change; the first saved batch stays valid.
    for i in (4, 5):
        (images / f"img_{i:03d}.png").unlink()
    write_images(tmp_path / "new", 10, seed=3)
    for i in (4, 5):
        (tmp_path / "new" / f"img_{i:03d}.png").rename(images / f"img_{i:03d}.png")
    source = open_source(images)
    model = TinyExtractor()
    extract_features(source, model, out, SETTINGS, progress=False, manifest=manifest_rows(source))
    assert model.calls == 2
    fresh = tmp_path / "fresh.h5"
    extract_features(source, TinyExtractor(), fresh, SETTINGS, progress=False)
    assert np.array_equal(read_features(out).features, read_features(fresh).features)


def test_manifest_that_disagrees_with_the_images_is_an_error(tmp_path):
    images = write_images(tmp_path / "images", 6)
    source = open_source(images, "faces")
    rows = manifest_rows(source)
    with pytest.raises(ValueError, match="does not list the images"):
        extract_features(source, TinyExtractor(), tmp_path / "a.h5", SETTINGS, "faces",
                         progress=False, manifest=rows[:-1])
    write_images(tmp_path / "other", 6, seed=5)
    (tmp_path / "other" / "img_003.png").replace(images / "img_003.png")
    with pytest.raises(ValueError, match=r"img_003\.png' changed after its manifest"):
        extract_features(source, TinyExtractor(), tmp_path / "b.h5", SETTINGS, "faces",
                         progress=False, manifest=rows)
    assert not (tmp_path / "b.h5").exists()


def test_device_and_numeric_modes_are_recorded_and_key_the_resume(tmp_path, monkeypatch):
    source = open_source(write_images(tmp_path / "images", 8))
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(source, TinyExtractor(fail_after_batches=1), out, SETTINGS,
                         progress=False)
    real = extract_module.device_provenance
    monkeypatch.setattr(extract_module, "device_provenance",
                        lambda device: {**real(device), "device_name": "another CPU"})
    model = TinyExtractor()
    extract_features(source, model, out, SETTINGS, progress=False)
    assert model.calls == 2  # the batch from other hardware was not reused
    attrs = read_features(out).attrs
    assert attrs["device_type"] == "cpu" and attrs["device_name"] == "another CPU"
    assert attrs["tf32_matmul"] in (True, False) and "cudnn_benchmark" in attrs


def test_cuda_numerics_default_to_ieee_float32():
    # torch.backends.cuda.matmul is a module whose attributes monkeypatch cannot restore.
    flags = ((torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32"),
             (torch.backends.cudnn, "benchmark"))
    saved = [getattr(owner, name) for owner, name in flags]
    try:
        for owner, name in flags:
            setattr(owner, name, True)
        extract_module.set_exact_numerics(torch.device("cpu"))
        assert all(getattr(owner, name) for owner, name in flags)  # the CPU changes nothing
        extract_module.set_exact_numerics(torch.device("cuda"))
        assert not any(getattr(owner, name) for owner, name in flags)
    finally:
        for (owner, name), value in zip(flags, saved, strict=True):
            setattr(owner, name, value)


def test_broken_link_is_a_bad_image(tmp_path):
    images = write_images(tmp_path / "images", 5)
    (images / "img_009.png").symlink_to(tmp_path / "moved.png")
    source = open_source(images, "faces")
    with pytest.raises(BadImageError, match=r"img_009\.png: broken symbolic link"):
        extract_features(source, TinyExtractor(), tmp_path / "a.h5", SETTINGS, "faces",
                         progress=False)
    skip = ExtractionSettings(batch_size=4, workers=0, on_bad_image="skip")
    cache = extract_features(source, TinyExtractor(), tmp_path / "b.h5", skip, progress=False)
    assert len(cache.paths) == 5 and cache.skipped[0].startswith("img_009.png: broken")
    assert read_features(tmp_path / "b.h5").attrs["n_skipped"] == 1


def test_cpu_thread_count_is_recorded_and_keys_the_resume(tmp_path):
    """Convolutions split their sums by thread count (features differ by ~1e-5 relative), so
    a resume under another thread count starts over instead of mixing batches."""
    source = open_source(write_images(tmp_path / "images", 8))
    out = tmp_path / "c.h5"
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(KeyboardInterrupt):
            extract_features(source, TinyExtractor(fail_after_batches=1), out, SETTINGS,
                             progress=False)
        torch.set_num_threads(2)
        model = TinyExtractor()
        extract_features(source, model, out, SETTINGS, progress=False)
    finally:
        torch.set_num_threads(before)
    assert model.calls == 2
    assert read_features(out).attrs["cpu_threads"] == 2


def test_damaged_cache_is_an_error_naming_the_file_and_the_rebuild(tmp_path):
    source = open_source(write_images(tmp_path / "images", 40))
    out = tmp_path / "c.h5"
    extract_features(source, TinyExtractor(), out, SETTINGS, progress=False)
    with h5py.File(out) as handle:  # flip 64 bytes inside the stored features
        offset = handle["features"].id.get_offset()
    data = bytearray(out.read_bytes())
    data[offset + 64 : offset + 128] = bytes(b ^ 0xFF for b in data[offset + 64 : offset + 128])
    out.write_bytes(bytes(data))
    with pytest.raises(CorruptCacheError, match=r"c\.h5: dataset 'features' does not match"):
        read_features(out)
    out.write_bytes(bytes(data[: len(data) // 2]))  # truncated by half
    with pytest.raises(CorruptCacheError, match=r"snakemake --forcerun .*c\.h5"):
        read_features(out)
