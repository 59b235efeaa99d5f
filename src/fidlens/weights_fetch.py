"""Verified download of official weights files into our weights folder (needs internet).

This is the only fidlens module that opens URLs. A download goes to a temporary file beside
the destination, is hashed while streaming, and replaces the destination only if the hash
matches what the publisher gives: the full sha256 where published, otherwise the hash prefix
embedded in the file name (pytorch-fid's `-6726825d`). A mismatch deletes the download. The
full sha256 is always printed and recorded next to the file (`<name>.sha256`, sha256sum format).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# weight_specs, not weights: fetching hashes files and needs no torch.
from fidlens.weight_specs import (
    WEIGHTS_SPECS,
    WeightsSpec,
    default_weights_dir,
    file_sha256,
    how_to_get,
)

log = logging.getLogger("fidlens")

# torch.hub's convention: the hex after the last '-' of the stem is a sha256 prefix.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$")
DOWNLOAD_TIMEOUT_S = 60

Opener = Callable[[str], BinaryIO]


class HashMismatchError(RuntimeError):
    """A downloaded (or present) file whose sha256 is not the published one."""


@dataclass(frozen=True)
class FetchResult:
    path: Path
    sha256: str
    downloaded: bool  # False: a valid file was already there


def sha256_prefix_from_name(name: str) -> str | None:
    match = _HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def digest_matches(digest: str, *, sha256: str | None, sha256_prefix: str | None) -> bool:
    """Whether a hex digest is the published one; with nothing published, anything matches."""
    if sha256 is not None:
        return digest == sha256.lower()
    if sha256_prefix is not None:
        return digest.startswith(sha256_prefix.lower())
    return True


def _expected_text(sha256: str | None, sha256_prefix: str | None) -> str:
    if sha256 is not None:
        return f"sha256 {sha256}"
    return f"a sha256 starting with {sha256_prefix}"


def open_url(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)


def _download_hashing(opener: Opener, url: str, destination: Path) -> tuple[Path, str]:
    """Stream url into a temporary file beside destination; return (temp path, sha256)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=destination.parent, prefix=destination.name + ".", suffix=".part", delete=False
    )
    temp_path = Path(handle.name)
    digest = hashlib.sha256()
    try:
        with handle, opener(url) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                handle.write(block)
    except OSError as error:
        temp_path.unlink(missing_ok=True)
        raise OSError(f"cannot download {url}: {error}") from error
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return temp_path, digest.hexdigest()


def fetch_verified(
    url: str,
    destination: str | os.PathLike,
    *,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    opener: Opener = open_url,
) -> FetchResult:
    """Download url to destination unless a valid file is there; verify before keeping it.

    sha256_prefix defaults to the hex suffix in the destination's name (e.g. `-6726825d.pth`).
    Raises HashMismatchError (and deletes the download) when the hash is not the published one.
    """
    destination = Path(destination)
    if sha256 is None and sha256_prefix is None:
        sha256_prefix = sha256_prefix_from_name(destination.name)
    if destination.is_file():
        present = file_sha256(destination)
        if digest_matches(present, sha256=sha256, sha256_prefix=sha256_prefix):
            _record_digest(destination, present)
            return FetchResult(destination, present, downloaded=False)
        log.warning(
            "%s has sha256 %s, expected %s; downloading it again",
            destination,
            present,
            _expected_text(sha256, sha256_prefix),
        )
    temp_path, digest = _download_hashing(opener, url, destination)
    if not digest_matches(digest, sha256=sha256, sha256_prefix=sha256_prefix):
        temp_path.unlink(missing_ok=True)
        raise HashMismatchError(
            f"download of {url} has sha256 {digest}, expected "
            f"{_expected_text(sha256, sha256_prefix)}; the download was deleted"
        )
    os.replace(temp_path, destination)
    _record_digest(destination, digest)
    return FetchResult(destination, digest, downloaded=True)


def _record_digest(path: Path, digest: str) -> None:
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def fetch_spec(
    spec: WeightsSpec,
    weights_dir: str | os.PathLike | None = None,
    *,
    opener: Opener = open_url,
) -> FetchResult | None:
    """Fetch one extractor's official file into the weights folder; None if no URL is known."""
    if spec.url is None:
        return None
    folder = Path(weights_dir).expanduser() if weights_dir else default_weights_dir()
    return fetch_verified(
        spec.url,
        folder / spec.file_name,
        sha256=spec.sha256,
        sha256_prefix=spec.sha256_prefix,
        opener=opener,
    )


def fetch_all(
    extractors: Iterable[str] | None = None,
    weights_dir: str | os.PathLike | None = None,
    *,
    opener: Opener = open_url,
    report: Callable[[str], None] = print,
) -> list[FetchResult]:
    """Fetch every named extractor's weights (default: all known); report what happened."""
    names = list(extractors) if extractors else sorted(WEIGHTS_SPECS)
    unknown = [name for name in names if name not in WEIGHTS_SPECS]
    if unknown:
        raise ValueError(f"no weights spec for {unknown}; known: {sorted(WEIGHTS_SPECS)}")
    results = []
    for name in names:
        spec = WEIGHTS_SPECS[name]
        result = fetch_spec(spec, weights_dir, opener=opener)
        if result is None:
            report(f"{name}: cannot be downloaded by script. {how_to_get(spec, weights_dir)}")
            continue
        published = spec.sha256 or spec.sha256_prefix or sha256_prefix_from_name(spec.file_name)
        if not published:  # the publisher gives no hash: the one got is recorded beside the file
            action = "downloaded" if result.downloaded else "already present"
            action += " (no published hash to check it against; its sha256 is recorded)"
        elif result.downloaded:
            action = "downloaded and verified"
        else:
            action = "already present and valid"
        report(f"{name}: {result.path} {action}; sha256 {result.sha256}")
        results.append(result)
    return results
