"""Datasets: listing, conversion of every image kind to RGB uint8, bad inputs, fingerprints."""

import hashlib
import io
import zipfile

import numpy as np
import pytest
from imagefiles import png16
from PIL import Image

from fidlens.datasets import (
    BadImageError,
    decode_rgb,
    fingerprint,
    manifest_rows,
    open_source,
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
    assert source.ignored == [".DS_Store", "__MACOSX/a/._c.png", "notes.txt"]


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
    assert source.ignored == ["__MACOSX/sub/._x.png", "readme.md"]
    assert np.array_equal(decode_rgb(source.read_bytes("sub/x.png")), RGB)


def test_empty_and_missing_datasets_name_their_path(tmp_path):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(ValueError, match=f"'faces' at {tmp_path}.*no images"):
        open_source(tmp_path, "faces")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        open_source(tmp_path / "does-not-exist", "faces")
    (tmp_path / "x.tar").write_text("x")
    with pytest.raises(ValueError, match="folder or a .zip"):
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
