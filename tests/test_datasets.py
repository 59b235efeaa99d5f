"""Datasets: listing, conversion of every image kind to RGB uint8, bad inputs, fingerprints."""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from imagefiles import png16
from PIL import Image

from fidlens.datasets import (
    BadImageError,
    DatasetError,
    content_digest,
    decode_rgb,
    fingerprint,
    list_dataset,
    manifest_rows,
    open_source,
    read_manifest,
    write_manifest,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_rgb_png_roundtrips_exactly():
    assert np.array_equal(decode_rgb(encode(Image.fromarray(RGB), "PNG")), RGB)


def test_grayscale_becomes_three_equal_channels():
    gray = RGB[..., 0]
    out = decode_rgb(encode(Image.fromarray(gray, "L"), "PNG"))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    for channel in range(3):
        assert np.array_equal(out[..., channel], gray)


def test_palette_with_transparency_uses_palette_colours():
    palette_image = Image.fromarray(RGB).quantize(colors=16)
    palette_image.info["transparency"] = 0
    expected = np.asarray(palette_image.convert("RGB"))
    assert np.array_equal(decode_rgb(encode(palette_image, "PNG", transparency=0)), expected)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_dropped_not_composited(mode):
    base = Image.fromarray(RGB).convert(mode[:-1])
    alpha = Image.fromarray(RNG.integers(0, 256, size=(12, 16), dtype=np.uint8))
    with_alpha = base.copy()
    with_alpha.putalpha(alpha)
    out = decode_rgb(encode(with_alpha, "PNG"))
    assert np.array_equal(out, np.asarray(base.convert("RGB")))


def test_cmyk_jpeg_converted_to_rgb():
    cmyk = Image.fromarray(RGB).convert("CMYK")
    out = decode_rgb(encode(cmyk, "JPEG", quality=100))
    assert out.shape == (12, 16, 3)
    # JPEG is lossy; the colours must still be close to the original RGB.
    assert np.abs(out.astype(int) - RGB.astype(int)).mean() < 12


def test_sixteen_bit_gray_png_keeps_full_range():
    gray8 = RGB[..., 1]
    out = decode_rgb(png16(gray8.astype(np.uint16) * 257))
    assert np.array_equal(out[..., 0], gray8)  # Pillow's own convert() would clip at 255
    assert np.array_equal(out[..., 2], gray8)


def test_sixteen_bit_rgb_png():
    assert np.array_equal(decode_rgb(png16(RGB.astype(np.uint16) * 257)), RGB)


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(Image.fromarray(RGB), "JPEG", quality=95, exif=exif.tobytes())
    out = decode_rgb(data)
    assert out.shape == (16, 12, 3)
    stored = Image.open(io.BytesIO(data)).convert("RGB")  # pixels as stored, not rotated
    assert np.array_equal(out, np.rot90(np.asarray(stored), k=-1))


def test_one_bit_and_webp_and_bmp_and_tiff():
    bilevel = Image.fromarray(RGB[..., 0] > 128)
    assert set(np.unique(decode_rgb(encode(bilevel, "PNG")))) <= {0, 255}
    for fmt in ("WEBP", "BMP", "TIFF"):
        kwargs = {"lossless": True} if fmt == "WEBP" else {}
        assert np.array_equal(decode_rgb(encode(Image.fromarray(RGB), fmt, **kwargs)), RGB)


def test_working_resolution_is_pil_bicubic_uint8():
    out = decode_rgb(encode(Image.fromarray(RGB), "PNG"), resolution=8)
    expected = np.asarray(Image.fromarray(RGB).resize((8, 8), Image.Resampling.BICUBIC))
    assert out.dtype == np.uint8 and np.array_equal(out, expected)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"this is not an image",
        encode(Image.fromarray(RGB), "PNG")[:60],
        encode(Image.fromarray(RGB), "JPEG")[:300],
    ],
    ids=["zero-byte", "text", "truncated-png", "truncated-jpeg"],
)
def test_bad_images_raise(data):
    with pytest.raises(BadImageError):
        decode_rgb(data)


def make_folder(root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(Image.fromarray(RGB), "PNG"))
    return root


def test_folder_listing_is_recursive_sorted_and_reports_ignored(tmp_path):
    make_folder(tmp_path, ["b.png", "a/c.PNG", "a/b.JpG", "z.tiff", "__MACOSX/a/._c.png"])
    (tmp_path / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "notes.txt").write_text("hello")
    source = open_source(tmp_path)
    assert source.images == ["a/b.JpG", "a/c.PNG", "b.png", "z.tiff"]
    assert source.ignored == ["notes.txt"]
    assert source.hidden == [".DS_Store", "__MACOSX/a/._c.png"]


def test_zip_listing_and_reading(tmp_path):
    data = encode(Image.fromarray(RGB), "PNG")
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("sub/x.png", data)
        handle.writestr("a.png", data)
        handle.writestr("readme.md", "text")
        handle.writestr("__MACOSX/sub/._x.png", b"junk")
    source = open_source(archive)
    assert source.kind == "zip"
    assert source.images == ["a.png", "sub/x.png"]
    assert source.ignored == ["readme.md"]
    assert source.hidden == ["__MACOSX/sub/._x.png"]
    assert np.array_equal(decode_rgb(source.read_bytes("sub/x.png")), RGB)


def test_empty_and_missing_datasets_name_their_path(tmp_path):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(ValueError, match=f"'faces' at {tmp_path}.*no images"):
        open_source(tmp_path, "faces")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        open_source(tmp_path / "does-not-exist", "faces")
    (tmp_path / "x.tar").write_text("x")
    with pytest.raises(ValueError, match=r"x\.tar: expected a folder of images or a \.zip"):
        open_source(tmp_path / "x.tar")


def test_fingerprint_tracks_images_only(tmp_path):
    make_folder(tmp_path, ["a.png", "sub/b.png"])
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "notes.txt").write_text("not an image")
    assert fingerprint(tmp_path) == first
    (tmp_path / "sub" / "b.png").write_bytes(encode(Image.fromarray(RGB[::-1]), "PNG") + b"x")
    modified = fingerprint(tmp_path)
    assert modified != first
    make_folder(tmp_path, ["c.png"])
    added = fingerprint(tmp_path)
    assert added != modified
    (tmp_path / "c.png").unlink()
    assert fingerprint(tmp_path) == modified


def test_zip_fingerprint_follows_content(tmp_path):
    def write_zip(path, payload):
        with zipfile.ZipFile(path, "w") as handle:
            handle.writestr("a.png", payload)

    write_zip(tmp_path / "one.zip", b"first")
    write_zip(tmp_path / "two.zip", b"second")
    assert fingerprint(tmp_path / "one.zip") != fingerprint(tmp_path / "two.zip")


def test_manifest_records_path_size_sha1(tmp_path):
    make_folder(tmp_path / "images", ["b.png", "a/x.png"])
    rows = manifest_rows(open_source(tmp_path / "images"))
    data = (tmp_path / "images" / "b.png").read_bytes()
    assert rows[1] == ("b.png", len(data), hashlib.sha1(data).hexdigest())
    write_manifest(rows, tmp_path / "out" / "m.tsv")
    lines = (tmp_path / "out" / "m.tsv").read_text().splitlines()
    assert lines[0] == "path\tsize\tsha1"
    assert lines[1].split("\t")[0] == "a/x.png" and len(lines[1].split("\t")[2]) == 40


# ---------------------------------------------------------------- symbolic links


def test_symlinked_folders_are_listed_and_fingerprinted_alike(tmp_path):
    shards = make_folder(tmp_path / "shards", ["s0/a.png", "s1/b.png"])
    dataset = make_folder(tmp_path / "dataset", ["top.png"])
    (dataset / "s0").symlink_to(shards / "s0", target_is_directory=True)
    (dataset / "s1").symlink_to(shards / "s1", target_is_directory=True)
    (dataset / "linked.png").symlink_to(dataset / "top.png")
    source = open_source(dataset)
    assert source.images == ["linked.png", "s0/a.png", "s1/b.png", "top.png"]
    assert source.ignored == []
    before = fingerprint(dataset)
    (shards / "s1" / "b.png").write_bytes(encode(Image.fromarray(RGB[::-1]), "PNG") + b"x")
    assert fingerprint(dataset) != before  # the walk behind the fingerprint enters links too


def test_symlink_loop_is_not_followed_twice(tmp_path):
    dataset = make_folder(tmp_path / "dataset", ["sub/a.png"])
    (dataset / "sub" / "back").symlink_to(dataset, target_is_directory=True)
    (dataset / "again").symlink_to(dataset / "sub", target_is_directory=True)
    source = open_source(dataset)
    assert len(source.images) == 1 and source.images[0] in ("sub/a.png", "again/a.png")
    assert len(source.ignored) == 2
    assert all("not entered" in entry for entry in source.ignored)
    assert fingerprint(dataset)  # terminates


def test_broken_symlink_is_listed_as_broken_not_an_image(tmp_path):
    dataset = make_folder(tmp_path / "dataset", ["a.png"])
    (dataset / "gone.png").symlink_to(tmp_path / "nowhere.png")
    source = open_source(dataset)
    assert source.images == ["a.png"]
    assert len(source.broken) == 1 and source.broken[0].startswith("gone.png: broken symbolic")
    assert "nowhere.png" in source.broken[0]
    before = fingerprint(dataset)
    (tmp_path / "nowhere.png").write_bytes((dataset / "a.png").read_bytes())
    assert fingerprint(dataset) != before  # the link was mended: the listing changes
    assert open_source(dataset).images == ["a.png", "gone.png"]


def test_manifest_reads_back(tmp_path):
    make_folder(tmp_path / "images", ["b.png", "a/x.png"])
    rows = manifest_rows(open_source(tmp_path / "images"))
    write_manifest(rows, tmp_path / "m.tsv")
    assert read_manifest(tmp_path / "m.tsv") == rows
    (tmp_path / "bad.tsv").write_text("path\tsize\tsha1\nx.png\t12\n")
    with pytest.raises(ValueError, match=r"bad\.tsv, line 2"):
        read_manifest(tmp_path / "bad.tsv")


def test_hidden_files_and_folders_are_left_out_and_reported(tmp_path):
    """Notebook checkpoints, thumbnails and dot-files are not samples (n = 8, not 13)."""
    names = [f"img_{i}.png" for i in range(8)]
    names += [f".ipynb_checkpoints/img_{i}-checkpoint.png" for i in range(3)]
    names += [".thumbnails/thumb.png", ".hidden.png"]
    dataset = make_folder(tmp_path / "d", names)
    source = open_source(dataset)
    assert len(source) == 8
    assert len(source.hidden) == 5 and ".hidden.png" in source.hidden
    before = fingerprint(dataset)
    make_folder(dataset, [".thumbnails/thumb2.png"])
    assert fingerprint(dataset) == before  # hidden files are no part of the dataset
    with_hidden = open_source(dataset, include_hidden=True)
    assert len(with_hidden) == 14 and with_hidden.hidden == []
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in names:
            handle.write(dataset / name, name)
    assert len(open_source(archive)) == 8 and len(open_source(archive).hidden) == 5


def test_manifest_lists_what_was_left_out_as_comments(tmp_path):
    dataset = make_folder(tmp_path / "d", ["a.png", ".hidden.png"])
    (dataset / "README.md").write_text("x")
    (dataset / "gone.png").symlink_to(tmp_path / "nowhere.png")
    source = open_source(dataset)
    write_manifest(manifest_rows(source), tmp_path / "m.tsv", source.left_out())
    text = (tmp_path / "m.tsv").read_text()
    assert "# left out\thidden\t.hidden.png" in text
    assert "# left out\tnot an image\tREADME.md" in text
    assert "# left out\tbroken link\tgone.png" in text
    assert [row.path for row in read_manifest(tmp_path / "m.tsv")] == ["a.png"]


def test_archives_other_than_zip_and_truncated_zips_are_clear_errors(tmp_path):
    (tmp_path / "set.tar.gz").write_bytes(b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(DatasetError, match=r"expected a folder of images or a \.zip"):
        open_source(tmp_path / "set.tar.gz", "gen")
    make_folder(tmp_path / "imgs", ["a.png", "b.png"])
    shutil.make_archive(str(tmp_path / "whole"), "zip", tmp_path / "imgs")
    data = (tmp_path / "whole.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"'gen'.*cut\.zip.*not a readable zip"):
        open_source(tmp_path / "cut.zip", "gen")
    with pytest.raises(DatasetError, match="not a readable zip"):
        fingerprint(tmp_path / "cut.zip")


def test_large_valid_images_decode_and_the_limit_is_a_setting():
    """182 megapixels, like a large scan: Pillow's own guard would call it a bomb."""
    big = Image.new("RGB", (14_000, 13_000), (200, 30, 30))
    data = encode(big, "JPEG", quality=50)
    del big
    rgb = decode_rgb(data, resolution=64)
    assert rgb.shape == (64, 64, 3) and abs(int(rgb[0, 0, 0]) - 200) < 4
    with pytest.raises(BadImageError, match=r"max_image_pixels = 100,000,000"):
        decode_rgb(data, max_pixels=100_000_000)


def test_content_digest_follows_content_and_rereads_only_changed_files(tmp_path, monkeypatch):
    dataset = make_folder(tmp_path / "d", ["a.png", "sub/b.png"])
    cache = tmp_path / "hashes.tsv"
    first = content_digest(list_dataset(dataset), cache)
    assert cache.is_file()
    reads = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real_read(self))
    assert content_digest(list_dataset(dataset), cache) == first and reads == []
    (dataset / "README.md").write_text("x")
    for image in dataset.rglob("*.png"):  # a copy that lost the timestamps
        os.utime(image, ns=(0, image.stat().st_mtime_ns + 10**9))
    assert content_digest(list_dataset(dataset), cache) == first
    assert sorted(reads) == ["a.png", "b.png"]
    reads.clear()
    (dataset / "a.png").write_bytes(encode(Image.fromarray(RGB[::-1]), "PNG"))
    assert content_digest(list_dataset(dataset), cache) != first and reads == ["a.png"]
    assert content_digest(list_dataset(dataset)) == content_digest(list_dataset(dataset), cache)


def test_manifest_cli_counts_visible_images_and_logs_what_it_left_out(tmp_path):
    names = [f"img_{i}.png" for i in range(8)]
    names += [f".ipynb_checkpoints/img_{i}-checkpoint.png" for i in range(3)]
    names += [".thumbnails/thumb.png", ".hidden.png"]
    dataset = make_folder(tmp_path / "d", names)
    script = Path(__file__).resolve().parents[1] / "workflow_scripts" / "make_manifest.py"
    result = subprocess.run(
        [sys.executable, str(script), "--images", str(dataset), "--out", str(tmp_path / "m.tsv")],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert len(read_manifest(tmp_path / "m.tsv")) == 8
    assert "5 hidden files left out" in result.stderr
    for name in names[8:]:
        assert name in result.stderr
