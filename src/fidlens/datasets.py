"""Datasets: image folders or zips → 8-bit RGB arrays, manifests and cheap fingerprints.

A dataset is a folder (searched recursively) or a `.zip` of images. Images are ordered by
their sorted relative POSIX path. Files without an image extension are ignored and reported,
never silently dropped; a file WITH an image extension that does not decode is a bad image.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fidlens.files import write_text_atomic

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
# Operating-system litter that may carry an image extension but is never an image.
_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_PREFIX = "._"


class BadImageError(ValueError):
    """A file with an image extension that cannot be decoded."""


@dataclass
class ImageSource:
    """The images of one dataset, in their canonical order."""

    root: Path
    kind: str  # "folder" or "zip"
    images: list[str]  # relative POSIX paths, sorted
    ignored: list[str] = field(default_factory=list)  # non-image files, reported in the log
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)
    _zip_pid: int = field(default=-1, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def read_bytes(self, relpath: str) -> bytes:
        if self.kind == "folder":
            return (self.root / relpath).read_bytes()
        # One handle per process: DataLoader workers must not share a file position.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.root)
            self._zip_pid = os.getpid()
        return self._zip.read(relpath)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_zip"], state["_zip_pid"] = None, -1
        return state


def is_image_name(relpath: str) -> bool:
    parts = relpath.split("/")
    if any(part in _JUNK_DIRS for part in parts[:-1]) or parts[-1].startswith(_JUNK_PREFIX):
        return False
    return Path(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def open_source(path: str | os.PathLike, dataset_name: str | None = None) -> ImageSource:
    """List a dataset's images; an empty or missing dataset is an error naming its path."""
    root = Path(path)
    label = f"dataset {dataset_name!r} at {root}" if dataset_name else f"dataset at {root}"
    if root.is_dir():
        kind = "folder"
        names = sorted(
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
        )
    elif root.is_file() and root.suffix.lower() == ".zip":
        kind = "zip"
        try:
            with zipfile.ZipFile(root) as archive:
                names = sorted(info.filename for info in archive.infolist() if not info.is_dir())
        except zipfile.BadZipFile as error:
            raise ValueError(f"{label}: not a readable zip file ({error})") from error
    elif root.exists():
        raise ValueError(f"{label}: expected a folder or a .zip file")
    else:
        raise FileNotFoundError(f"{label}: path does not exist")
    images = [name for name in names if is_image_name(name)]
    ignored = [name for name in names if not is_image_name(name)]
    if not images:
        raise ValueError(
            f"{label} contains no images (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}; "
            f"{len(ignored)} other files ignored)"
        )
    return ImageSource(root=root, kind=kind, images=images, ignored=ignored)


def fingerprint(path: str | os.PathLike) -> str:
    """A cheap hash that changes when a dataset's images are added, removed or modified.

    Folders: relative path, size and mtime of every image file (no reading of contents).
    Zips: name, size and CRC-32 of every image entry, from the central directory.
    Computed when the workflow is parsed, so it must stay fast for 100k files.
    """
    root = Path(path)
    digest = hashlib.sha1()
    if root.is_dir():
        for entry in sorted(_walk_files(root)):
            if is_image_name(entry[0]):
                digest.update(f"{entry[0]}\0{entry[1]}\0{entry[2]}\n".encode())
    elif root.is_file():
        with zipfile.ZipFile(root) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and is_image_name(info.filename):
                    digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
    else:
        raise FileNotFoundError(f"dataset path does not exist: {root}")
    return digest.hexdigest()


def _walk_files(root: Path):
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                else:
                    stat = entry.stat(follow_symlinks=True)
                    rel = Path(entry.path).relative_to(root).as_posix()
                    yield rel, stat.st_size, stat.st_mtime_ns


def decode_rgb(data: bytes, resolution: int | None = None) -> np.ndarray:
    """Decode image bytes to an H x W x 3 uint8 RGB array, EXIF orientation applied.

    Raises BadImageError for zero-byte, truncated or non-image data.
    `resolution` resizes to resolution² with PIL bicubic, re-quantised to uint8.
    """
    if not data:
        raise BadImageError("zero-byte file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode now: truncated files fail here, not later
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb8(image)
    except BadImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise BadImageError(f"{type(error).__name__}: {error}") from error
    if resolution is not None and rgb.shape[:2] != (resolution, resolution):
        resized = Image.fromarray(rgb).resize((resolution, resolution), Image.Resampling.BICUBIC)
        rgb = np.array(resized)
    return np.ascontiguousarray(rgb)


def _to_rgb8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.array(image)
    if mode.startswith("I"):
        # 16-bit (I;16*) and 32-bit integer images: Pillow's convert() would clip at 255.
        # Keep the high byte, as Pillow itself does for 16-bit RGB PNGs.
        values = np.asarray(image).astype(np.int64)
        gray = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise BadImageError("32-bit float images are not supported; save it as 8- or 16-bit")
    if mode in ("P", "PA"):
        image = image.convert("RGBA")  # palette transparency → alpha, dropped below
    # RGBA/LA drop alpha; L, 1, CMYK, YCbCr, LAB, HSV convert by Pillow's colour maths.
    return np.array(image.convert("RGB"))


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def manifest_rows(source: ImageSource) -> list[tuple[str, int, str]]:
    """(relative path, size in bytes, sha1) for every image, in dataset order."""
    rows = []
    for relpath in source.images:
        data = source.read_bytes(relpath)
        rows.append((relpath, len(data), sha1_hex(data)))
    return rows


def write_manifest(rows: list[tuple[str, int, str]], out: str | os.PathLike) -> None:
    lines = ["path\tsize\tsha1", *(f"{path}\t{size}\t{digest}" for path, size, digest in rows)]
    write_text_atomic(out, "\n".join(lines) + "\n")
