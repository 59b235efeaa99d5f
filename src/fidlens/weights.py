"""Find, identify and strictly load extractor weights files, without touching the network.

A weights spec from the config is one of:
- a file path: used as given;
- "auto": the official file, searched in our weights folder first, then in the extractor's
  standard places (where the reference tools cache it);
- "random" (or "random:<seed>"): our own seeded initialisation, marked `random-init` downstream.

What differs between extractors (file names, standard places, download URL, published hash) is
data in `WEIGHTS_SPECS`, so a new extractor adds an entry here rather than code.
Downloading lives in `fidlens.weights_fetch` (the only module allowed to reach the network).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from fidlens.extractors.base import RANDOM_INIT, WeightsInfo

log = logging.getLogger("fidlens")

DEFAULT_RANDOM_SEED = 0
# BatchNorm's step counter is irrelevant at inference and absent from some converted files.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)


@dataclass(frozen=True)
class WeightsSpec:
    """Where one extractor's official weights live and how to get them.

    places: folder templates searched after our weights folder, in order; `{torch_home}` and
    `{home}` are expanded at search time (see `expand_place`).
    """

    extractor: str
    file_names: tuple[str, ...]  # accepted names, preferred (downloaded) name first
    places: tuple[str, ...] = ()
    url: str | None = None
    sha256: str | None = None  # full digest, where the publisher gives one
    sha256_prefix: str | None = None  # where only a prefix is published (in the file name)
    manual_instructions: str | None = None  # for files no script can download

    @property
    def file_name(self) -> str:
        return self.file_names[0]


WEIGHTS_SPECS: dict[str, WeightsSpec] = {
    "inception": WeightsSpec(
        extractor="inception",
        file_names=(
            "pt_inception-2015-12-05-6726825d.pth",  # pytorch-fid
            "weights-inception-2015-12-05-6726825d.pth",  # torch-fidelity, same key layout
        ),
        places=("{torch_home}/hub/checkpoints",),
        url=(
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth"
        ),
        sha256_prefix="6726825d",
    ),
}


class WeightsNotFoundError(FileNotFoundError):
    """`auto` found no official file (or a configured path does not exist)."""


class WeightsFileError(ValueError):
    """A weights file that cannot be read or does not fit the extractor."""


@dataclass(frozen=True)
class ResolvedWeights:
    """What to load: a file (path set) or our seeded random init (seed set)."""

    info: WeightsInfo
    path: Path | None = None
    seed: int | None = None


# ---------------------------------------------------------------- places


def default_weights_dir() -> Path:
    """Our weights folder: $FIDLENS_WEIGHTS_DIR, else ~/.cache/fidlens/weights."""
    configured = os.environ.get("FIDLENS_WEIGHTS_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "fidlens" / "weights"


def torch_home() -> Path:
    """Where torch.hub (and so pytorch-fid and torch-fidelity) caches downloads."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser() / "torch"


def expand_place(template: str) -> Path:
    return Path(template.format(torch_home=torch_home(), home=Path.home())).expanduser()


def candidate_paths(spec: WeightsSpec, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every file `auto` looks at, in search order: our folder first, then the standard places."""
    folders = [Path(weights_dir).expanduser() if weights_dir else default_weights_dir()]
    folders += [expand_place(place) for place in spec.places]
    candidates: list[Path] = []
    for folder in folders:
        for name in spec.file_names:
            path = folder / name
            if path not in candidates:
                candidates.append(path)
    return candidates


def how_to_get(spec: WeightsSpec, weights_dir: str | os.PathLike | None = None) -> str:
    folder = Path(weights_dir).expanduser() if weights_dir else default_weights_dir()
    target = folder / spec.file_name
    if spec.url:
        return (
            f"To get it: on a machine with internet run `make weights` (downloads and verifies "
            f"it into {target.parent}; copy that folder here or set FIDLENS_WEIGHTS_DIR), or "
            f"download {spec.url} and put it at {target}, or set "
            f"extractors.{spec.extractor}.weights to the file's path."
        )
    manual = spec.manual_instructions or "No download URL is known for this file."
    return f"{manual} Put it at {target} or set extractors.{spec.extractor}.weights to its path."


# ---------------------------------------------------------------- resolving a spec


def parse_random_seed(weights: str) -> int | None:
    """The seed of a "random" / "random:<seed>" spec, None for anything else."""
    if weights == "random":
        return DEFAULT_RANDOM_SEED
    if weights.startswith("random:"):
        seed_text = weights.split(":", 1)[1]
        if not seed_text.isdigit():
            raise ValueError(f"weights spec {weights!r}: the seed after 'random:' must be an int")
        return int(seed_text)
    return None


def random_weights(seed: int, origin: str | None = None) -> ResolvedWeights:
    info = WeightsInfo(path=None, sha256=RANDOM_INIT, origin=origin or f"random (seed {seed})")
    return ResolvedWeights(info=info, seed=seed)


def resolve_weights(
    spec: WeightsSpec,
    weights: str = "auto",
    *,
    fallback: str | None = None,
    weights_dir: str | os.PathLike | None = None,
) -> ResolvedWeights:
    """Turn a config weights spec into a file to load (with its sha256) or a random-init seed.

    `auto` never silently becomes random: without `fallback="random"` a missing official file
    is a WeightsNotFoundError naming every place looked and how to get the file.
    """
    if fallback == "none":
        fallback = None
    if fallback not in (None, "random"):
        raise ValueError(f"fallback must be 'none' (or None) or 'random', not {fallback!r}")
    seed = parse_random_seed(weights)
    if seed is not None:
        return random_weights(seed)
    if weights == "auto":
        candidates = candidate_paths(spec, weights_dir)
        for path in candidates:
            if path.is_file():
                return ResolvedWeights(
                    info=WeightsInfo(str(path), file_sha256(path), f"auto: {path}"), path=path
                )
        looked = "\n".join(f"  - {path}" for path in candidates)
        if fallback == "random":
            places = ", ".join(str(path) for path in candidates)
            log.warning(
                "%s: official weights not found (looked in: %s); falling back to RANDOM "
                "weights (seed %d). Every output is marked random-init.",
                spec.extractor,
                places,
                DEFAULT_RANDOM_SEED,
            )
            origin = f"random (fallback: official file not found in {places})"
            return random_weights(DEFAULT_RANDOM_SEED, origin=origin)
        raise WeightsNotFoundError(
            f"{spec.extractor}: weights 'auto' found no official file. Looked at:\n{looked}\n"
            f"{how_to_get(spec, weights_dir)}"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{spec.extractor}: weights file {path} does not exist. "
            f"{how_to_get(spec, weights_dir)}"
        )
    return ResolvedWeights(info=WeightsInfo(str(path), file_sha256(path), "config path"), path=path)


# ---------------------------------------------------------------- hashing and loading


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


def state_dict_mismatches(
    expected: Mapping[str, torch.Size], found: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, shape mismatches) of `found` against `expected` shapes."""
    optional = {key for key in expected if key.endswith(OPTIONAL_KEY_SUFFIXES)}
    missing = sorted(set(expected) - set(found) - optional)
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{key}: file {list(found[key].shape)} vs model {list(expected[key])}"
        for key in expected
        if key in found and tuple(found[key].shape) != tuple(expected[key])
    ]
    return missing, unexpected, shapes


def load_checked_state_dict(
    path: str | os.PathLike, expected: Mapping[str, torch.Size], layout: str
) -> dict[str, torch.Tensor]:
    """Load a plain state dict (weights_only) and require exactly the expected keys and shapes.

    layout: a short name of the expected file, quoted in errors.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a non-checkpoint file
        raise WeightsFileError(
            f"cannot read weights file {path} as a PyTorch state dict "
            f"(expected the layout of {layout}): {type(error).__name__}: {error}"
        ) from error
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise WeightsFileError(
            f"weights file {path} is not a plain state dict of tensors "
            f"(expected the layout of {layout})"
        )
    missing, unexpected, shapes = state_dict_mismatches(expected, loaded)
    if missing or unexpected or shapes:
        problems = [
            _listing("missing key", missing),
            _listing("unexpected key", unexpected),
            _listing("shape mismatch", shapes),
        ]
        raise WeightsFileError(
            f"weights file {path} does not fit (expected the layout of {layout}): "
            + "; ".join(problem for problem in problems if problem)
        )
    return dict(loaded)


def _listing(what: str, items: list[str], shown: int = 20) -> str:
    if not items:
        return ""
    more = f", ... and {len(items) - shown} more" if len(items) > shown else ""
    plural = "es" if what.endswith("h") else "s"
    label = what if len(items) == 1 else what + plural
    return f"{len(items)} {label}: " + ", ".join(items[:shown]) + more
