"""Datasets: image folders or zips → 8-bit RGB arrays, manifests and cheap fingerprints.

A dataset is a folder (searched recursively, through symbolic links) or a `.zip` of images.
Images are ordered by their sorted relative POSIX path. Nothing is dropped silently: files
without an image extension are ignored and reported; hidden files and folders (a name starting
with '.', e.g. `.ipynb_checkpoints/`, `.thumbnails/`) are left out unless asked for, and
reported; a broken symbolic link is a bad image (an error, or skipped and listed); a file WITH
an image extension that does not decode is a bad image.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from fidlens.files import write_text_atomic

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
# Operating-system litter that may carry an image extension but is never an image.
_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_PREFIX = "._"
# Largest image decoded (width x height), far above photographs, scans and panoramas: a
# 14,000 x 13,000 scan has 182 M. The limit only guards against absurd (malicious) headers.
DEFAULT_MAX_PIXELS = 1_000_000_000


class BadImageError(ValueError):
    """A file with an image extension that cannot be decoded."""


class DatasetError(ValueError):
    """A dataset path that is not a readable folder or zip of images."""


@dataclass
class ImageSource:
    """The images of one dataset, in their canonical order, and what was left out."""

    root: Path
    kind: str  # "folder" or "zip"
    images: list[str]  # relative POSIX paths, sorted
    ignored: list[str] = field(default_factory=list)  # non-image files
    hidden: list[str] = field(default_factory=list)  # under a name starting with '.'
    broken: list[str] = field(default_factory=list)  # "path: reason" of dangling links
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)
    _zip_pid: int = field(default=-1, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def left_out(self) -> list[tuple[str, str]]:
        """(path, reason) of every file that is not among `images`."""
        return (
            [(path, "hidden") for path in self.hidden]
            + [(path, "not an image") for path in self.ignored]
            + [(entry.split(": ", 1)[0], "broken link") for entry in self.broken]
        )

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


def is_hidden(relpath: str) -> bool:
    """A file or one of its folders has a name starting with '.' (shell and file-manager
    convention: notebook checkpoints, thumbnails, `.DS_Store`)."""
    return any(part.startswith(".") for part in relpath.split("/"))


@dataclass(frozen=True)
class FolderEntry:
    relpath: str  # POSIX path relative to the dataset root, through symlinked folders
    size: int
    mtime_ns: int
    broken_target: str | None = None  # where a dangling symbolic link points


@dataclass
class Listing:
    """Every file of a dataset, sorted into what counts as an image and what does not."""

    root: Path
    kind: str
    entries: list[FolderEntry]  # images (and broken links with image names), sorted
    ignored: list[str]
    hidden: list[str]

    @property
    def images(self) -> list[str]:
        return [e.relpath for e in self.entries if e.broken_target is None]

    @property
    def broken(self) -> list[str]:
        return [
            f"{e.relpath}: broken symbolic link (points to {e.broken_target}, which does not "
            "exist)"
            for e in self.entries
            if e.broken_target is not None
        ]


def list_dataset(path: str | os.PathLike, include_hidden: bool = False) -> Listing:
    """List a dataset without reading any image: one walk behind `open_source` and
    `fingerprint`, so the two always agree.

    Raises FileNotFoundError (missing path) and DatasetError (neither a folder nor a readable
    .zip), with the path and what to do.
    """
    root = Path(path)
    if root.is_dir():
        kind = "folder"
        not_followed: list[str] = []
        found = list(walk_folder(root, not_followed))
    elif root.is_file() and root.suffix.lower() == ".zip":
        kind = "zip"
        not_followed = []
        try:
            with zipfile.ZipFile(root) as archive:
                found = [
                    FolderEntry(info.filename, info.file_size, info.CRC)
                    for info in archive.infolist()
                    if not info.is_dir()
                ]
        except (zipfile.BadZipFile, OSError) as error:
            raise DatasetError(
                f"{root}: not a readable zip file ({error}); an interrupted download or copy? "
                "Make the zip again, or give the folder of images instead"
            ) from error
    elif root.exists():
        raise DatasetError(
            f"{root}: expected a folder of images or a .zip file (unpack other archives, "
            "e.g. tar -xf, and give the folder)"
        )
    else:
        raise FileNotFoundError(f"{root}: path does not exist")
    entries, ignored, hidden = [], list(not_followed), []
    for entry in sorted(found, key=lambda e: e.relpath):
        if not include_hidden and is_hidden(entry.relpath):
            hidden.append(entry.relpath)
        elif is_image_name(entry.relpath):
            entries.append(entry)
        else:
            ignored.append(entry.relpath)
    return Listing(root=root, kind=kind, entries=entries, ignored=sorted(ignored), hidden=hidden)


def open_source(
    path: str | os.PathLike, dataset_name: str | None = None, include_hidden: bool = False
) -> ImageSource:
    """List a dataset's images; an empty or missing dataset is an error naming its path."""
    root = Path(path)
    label = f"dataset {dataset_name!r} at {root}" if dataset_name else f"dataset at {root}"
    try:
        listing = list_dataset(root, include_hidden)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{label}: path does not exist") from error
    except DatasetError as error:
        if dataset_name is None:
            raise
        raise DatasetError(f"dataset {dataset_name!r}: {error}") from error
    images = listing.images
    if not images:
        raise ValueError(
            f"{label} contains no images (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}; "
            f"{len(listing.ignored)} other files ignored, {len(listing.hidden)} hidden files "
            f"left out, {len(listing.broken)} broken links)"
        )
    return ImageSource(
        root=root,
        kind=listing.kind,
        images=images,
        ignored=listing.ignored,
        hidden=listing.hidden,
        broken=listing.broken,
    )


def log_left_out(source: ImageSource, log) -> None:
    """Name every file that is not one of the dataset's images, by reason, in the job log."""
    groups = (
        ("hidden files left out (include_hidden: true counts them)", source.hidden),
        ("non-image files ignored", source.ignored),
        ("broken symbolic links", source.broken),
    )
    for what, names in groups:
        if names:
            log.info("%s: %d %s:\n  %s", source.root, len(names), what, "\n  ".join(names))


def fingerprint(dataset: Listing | str | os.PathLike) -> str:
    """A cheap hash that changes when a dataset's images are added, removed or modified
    (or their mtimes change): relative path, size and mtime of every image file, no reading.
    Zips: name, size and CRC-32 of every image entry, from the central directory."""
    listing = dataset if isinstance(dataset, Listing) else list_dataset(dataset)
    digest = hashlib.sha1()
    for entry in listing.entries:
        digest.update(f"{entry.relpath}\0{entry.size}\0{entry.mtime_ns}\n".encode())
    return digest.hexdigest()


def content_digest(listing: Listing, hash_cache: str | os.PathLike | None = None) -> str:
    """sha256 of the dataset's image list and contents: what its manifest and caches depend
    on, and nothing else (not mtimes, not the other files of the folder).

    Zips: names, sizes and CRC-32s from the central directory (the CRC is of the content).
    Folders: sha1 of every image file; `hash_cache` (a TSV of path, size, mtime_ns, sha1)
    keeps the sha1 of files whose size and mtime have not changed since they were hashed, so
    only new or modified files are read. Broken links enter with their target. Computed when
    the workflow is parsed: a no-op parse only stats files.
    """
    if listing.kind == "zip":
        return "zip:" + fingerprint(listing)
    known = _read_hash_cache(hash_cache)
    digest = hashlib.sha256()
    fresh: dict[str, tuple[int, int, str]] = {}
    for entry in listing.entries:
        if entry.broken_target is not None:
            digest.update(f"{entry.relpath}\0broken link to {entry.broken_target}\n".encode())
            continue
        cached = known.get(entry.relpath)
        if cached and cached[:2] == (entry.size, entry.mtime_ns):
            sha1 = cached[2]
        else:
            sha1 = sha1_hex((listing.root / entry.relpath).read_bytes())
        fresh[entry.relpath] = (entry.size, entry.mtime_ns, sha1)
        digest.update(f"{entry.relpath}\0{sha1}\n".encode())
    if hash_cache is not None and fresh != known:
        lines = [f"{path}\t{size}\t{mtime}\t{sha1}" for path, (size, mtime, sha1) in fresh.items()]
        write_text_atomic(hash_cache, "".join(line + "\n" for line in lines))
    return digest.hexdigest()


def _read_hash_cache(path) -> dict[str, tuple[int, int, str]]:
    if path is None or not os.path.isfile(path):
        return {}
    known = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
            known[parts[0]] = (int(parts[1]), int(parts[2]), parts[3])
    return known  # an unreadable line only costs hashing that file again


def walk_folder(root: str | os.PathLike, not_followed: list[str] | None = None):
    """Every file under `root`, following symbolic links to folders and files.

    A folder reached a second time (a symlink loop, or two links to one folder) is not entered
    again: its relative path is appended to `not_followed` with the reason. A dangling link is
    yielded with `broken_target` set.
    """
    root = Path(root)
    seen = {_folder_id(root)}
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(root).as_posix()
                try:
                    stat = entry.stat(follow_symlinks=True)
                except FileNotFoundError:
                    yield FolderEntry(rel, -1, -1, broken_target=os.readlink(entry.path))
                    continue
                if entry.is_dir(follow_symlinks=True):
                    folder_id = (stat.st_dev, stat.st_ino)
                    if folder_id in seen:
                        if not_followed is not None:
                            not_followed.append(f"{rel}/ (folder already listed, not entered)")
                        continue
                    seen.add(folder_id)
                    stack.append(Path(entry.path))
                else:
                    yield FolderEntry(rel, stat.st_size, stat.st_mtime_ns)


def _folder_id(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def decode_rgb(
    data: bytes, resolution: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode image bytes to an H x W x 3 uint8 RGB array, EXIF orientation applied.

    Raises BadImageError for zero-byte, truncated or non-image data, and for images of more
    than `max_pixels` pixels (read from the header, before decoding; replaces Pillow's own
    decompression-bomb guard, whose 179 M limit stops valid scans).
    `resolution` resizes to resolution² with PIL bicubic, re-quantised to uint8.
    """
    if not data:
        raise BadImageError("zero-byte file")
    try:
        with _own_pixel_guard(), Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise BadImageError(
                    f"{width} x {height} = {width * height:,} pixels is more than the limit "
                    f"max_image_pixels = {max_pixels:,}; raise max_image_pixels in config.yaml "
                    "(--max-image-pixels) if this image is meant to be used"
                )
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


@contextmanager
def _own_pixel_guard():
    """Pillow's global guard off while `decode_rgb` applies its own, configurable limit."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


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


class ManifestRow(NamedTuple):
    path: str  # relative POSIX path in the dataset
    size: int  # bytes
    sha1: str  # hex digest of the file's bytes


MANIFEST_HEADER = "path\tsize\tsha1"


def manifest_rows(source: ImageSource) -> list[ManifestRow]:
    """(relative path, size in bytes, sha1) for every image, in dataset order."""
    rows = []
    for relpath in source.images:
        data = source.read_bytes(relpath)
        rows.append(ManifestRow(relpath, len(data), sha1_hex(data)))
    return rows


def write_manifest(
    rows: list[ManifestRow],
    out: str | os.PathLike,
    left_out: list[tuple[str, str]] = (),
) -> None:
    """TSV: the header, one row per image, then one `# left out<TAB>reason<TAB>path` comment
    line per file that is not an image of the dataset (hidden, not an image, broken link)."""
    lines = [MANIFEST_HEADER, *(f"{path}\t{size}\t{digest}" for path, size, digest in rows)]
    lines += [f"{MANIFEST_COMMENT}left out\t{reason}\t{path}" for path, reason in left_out]
    write_text_atomic(out, "\n".join(lines) + "\n")


MANIFEST_COMMENT = "# "


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Rows of a manifest written by `write_manifest`; ValueError names a malformed line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != MANIFEST_HEADER:
        raise ValueError(f"{path}: not a manifest (first line must be {MANIFEST_HEADER!r})")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith(MANIFEST_COMMENT):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 40:
            raise ValueError(f"{path}, line {number}: expected path, size and sha1: {line!r}")
        rows.append(ManifestRow(parts[0], int(parts[1]), parts[2]))
    return rows
