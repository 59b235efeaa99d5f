"""extract_features.py end to end with the real InceptionV3 (seeded random weights):
every kind of input image, bad inputs, and a kill -9 in the middle of a run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from imagefiles import png16
from PIL import Image

from fidlens.cache import read_features
from fidlens.extractors.networks.inception import random_state_dict

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow_scripts" / "extract_features.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Seeded random weights saved in the official layout: loading a file is much faster than
    calibrating random weights in every run."""
    path = tmp_path_factory.mktemp("weights") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(random_state_dict(0), path)
    return path


def run_cli(*args, weights="random", check=True):
    command = [sys.executable, str(SCRIPT), "--extractor", "inception", "--weights", str(weights),
               "--threads", "2", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def save(image: Image.Image, path: Path, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """One image of every kind the issue lists, plus files that must be ignored."""
    folder = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    save(Image.fromarray(rgb), folder / "rgb.png")
    save(Image.fromarray(rgb[..., 0]), folder / "gray.png")
    save(Image.fromarray(rgb).quantize(16), folder / "palette.PNG")
    save(Image.fromarray(rgb).convert("RGBA"), folder / "sub" / "rgba.png")
    save(Image.fromarray(rgb).convert("LA"), folder / "sub" / "la.png")
    save(Image.fromarray(rgb).convert("CMYK"), folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    save(Image.fromarray(rgb), folder / "rotated.jpeg", exif=exif.tobytes())
    (folder / "gray16.png").write_bytes(png16(rgb[..., 0].astype(np.uint16) * 257))
    save(Image.fromarray(rgb), folder / "x.webp")
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_every_image_kind_is_extracted(mixed_folder, tmp_path):
    out = tmp_path / "mixed.h5"
    result = run_cli("--images", mixed_folder, "--dataset-name", "mixed", "--out", out,
                     "--batch-size", "4", "--workers", "1")
    cache = read_features(out, with_logits=True)
    assert cache.features.shape == (9, 2048) and cache.logits.shape == (9, 1008)
    assert np.isfinite(cache.features).all()
    assert cache.paths[0] == "cmyk.jpg" and "sub/rgba.png" in cache.paths
    assert cache.attrs["weights"] == "random-init" and cache.attrs["preprocess"] == "clean"
    assert ".DS_Store" in result.stderr and "notes.txt" in result.stderr  # listed in the log
    # Gray and 16-bit gray of the same picture are the same 8-bit image.
    gray, gray16 = cache.paths.index("gray.png"), cache.paths.index("gray16.png")
    assert not np.array_equal(cache.features[gray], cache.features[cache.paths.index("rgb.png")])
    np.testing.assert_array_equal(cache.features[gray], cache.features[gray16])


def test_bad_images_stop_the_run_or_are_skipped_and_listed(mixed_folder, tmp_path, checkpoint):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes((mixed_folder / "rgb.png").read_bytes())
    (folder / "b_truncated.jpg").write_bytes((mixed_folder / "cmyk.jpg").read_bytes()[:400])
    (folder / "c_zero.png").write_bytes(b"")
    (folder / "d_text.png").write_bytes(b"hello")
    out = tmp_path / "c.h5"
    result = run_cli("--images", folder, "--dataset-name", "gen_x", "--out", out,
                     weights=checkpoint, check=False)
    assert result.returncode == 1 and not out.exists()
    assert "'gen_x'" in result.stderr and "b_truncated.jpg" in result.stderr

    result = run_cli("--images", folder, "--dataset-name", "gen_x", "--out", out,
                     "--on-bad-image", "skip", weights=checkpoint)
    cache = read_features(out)
    assert cache.paths == ["a.png"]
    assert [s.split(":")[0] for s in cache.skipped] == ["b_truncated.jpg", "c_zero.png",
                                                        "d_text.png"]
    assert all(name in result.stderr for name in ("b_truncated.jpg", "c_zero.png", "d_text.png"))


def test_empty_dataset_is_an_error(tmp_path, checkpoint):
    (tmp_path / "empty").mkdir()
    result = run_cli("--images", tmp_path / "empty", "--dataset-name", "nothing", "--out",
                     tmp_path / "c.h5", weights=checkpoint, check=False)
    assert result.returncode == 1 and "no images" in result.stderr and "empty" in result.stderr


def test_kill_9_then_rerun_gives_the_uninterrupted_cache(tmp_path, checkpoint):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(14):
        pixels = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    common = ("--images", folder, "--batch-size", "3", "--workers", "1")
    run_cli(*common, "--out", tmp_path / "full.h5", weights=checkpoint)

    out = tmp_path / "resumed.h5"
    partial = tmp_path / ".resumed.h5.partial"
    command = [sys.executable, str(SCRIPT), "--extractor", "inception", "--weights",
               str(checkpoint), "--threads", "2", *map(str, common), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(partial.glob("batch_*.npz"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "finished before it could be killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list(partial.glob("batch_*.npz")))
    assert 2 <= done < 5 and not out.exists()

    result = run_cli(*common, "--out", out, weights=checkpoint)
    assert f"{done} of 5 batches already done" in result.stderr
    full, resumed = read_features(tmp_path / "full.h5", True), read_features(out, True)
    assert np.array_equal(full.features, resumed.features)
    assert np.array_equal(full.logits, resumed.logits)
    assert full.paths == resumed.paths and full.sha1 == resumed.sha1
    assert not partial.exists()


def _can_mount_private_tmpfs() -> bool:
    probe = ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_mount_private_tmpfs(),
                    reason="needs root and `unshare -m` to give the run a small /dev/shm")
def test_small_dev_shm_neither_hangs_nor_fails(tmp_path, checkpoint):
    """Docker's default /dev/shm is 64 MB; here 4 MB, below one batch of 299² float images
    (10 x 1 MB): decoded images must not travel through shared memory."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            images / f"{i:02d}.png")
    out = tmp_path / "c.h5"
    extract = (f"{sys.executable} {SCRIPT} --extractor inception --weights {checkpoint}"
               f" --images {images} --batch-size 10 --workers 2 --threads 2 --out {out}")
    shell = f"mount -t tmpfs -o size=4m tmpfs /dev/shm && {extract}"
    result = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_features(out).features.shape == (20, 2048)
