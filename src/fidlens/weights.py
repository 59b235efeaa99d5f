"""Find, identify and strictly load extractor weights files, without touching the network.

What a config's `weights` means (auto | random | random:<seed> | a file path), the official
files and their places are torch-free data and parsing in `fidlens.weight_specs` (re-exported
here); this module resolves a spec to a file or a seed, checks an official file's published
hash, and loads state dicts. Downloading lives in `fidlens.weights_fetch` (the only module
allowed to reach the network).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from fidlens.extractors.base import WeightsInfo
from fidlens.provenance import RANDOM_INIT
from fidlens.weight_specs import (
    AUTO,
    DEFAULT_RANDOM_SEED,
    RANDOM,
    WEIGHTS_SPECS,
    ParsedWeights,
    WeightsFile,
    WeightsSpec,
    candidate_paths,
    default_weights_dir,
    expand_place,
    fallback_origin,
    file_sha256,
    find_official,
    hash_matches,
    hash_note,
    how_to_get,
    parse_random_seed,
    parse_weights,
    random_origin,
    torch_home,
)

__all__ = [
    "DEFAULT_RANDOM_SEED",
    "WEIGHTS_SPECS",
    "ParsedWeights",
    "ResolvedWeights",
    "WeightsFile",
    "WeightsFileError",
    "WeightsHashError",
    "WeightsNotFoundError",
    "WeightsSpec",
    "candidate_paths",
    "default_weights_dir",
    "expand_place",
    "file_sha256",
    "how_to_get",
    "load_checked_state_dict",
    "parse_random_seed",
    "parse_weights",
    "random_weights",
    "read_state_dict",
    "require_layout",
    "require_tensors",
    "resolve_file_setting",
    "resolve_weights",
    "state_dict_mismatches",
    "torch_home",
]

log = logging.getLogger("fidlens")

# BatchNorm's step counter is irrelevant at inference and absent from some converted files.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)


class WeightsNotFoundError(FileNotFoundError):
    """`auto` found no official file (or a configured path does not exist)."""


class WeightsFileError(ValueError):
    """A weights file that cannot be read or does not fit the extractor."""


class WeightsHashError(WeightsFileError):
    """An official file name whose content is not the published file (verified hash)."""


@dataclass(frozen=True)
class ResolvedWeights:
    """What to load: a file (path set) or our seeded random init (seed set)."""

    info: WeightsInfo
    path: Path | None = None
    seed: int | None = None


# ---------------------------------------------------------------- resolving a spec


def random_weights(seed: int, origin: str | None = None) -> ResolvedWeights:
    info = WeightsInfo(path=None, sha256=RANDOM_INIT, origin=origin or random_origin(seed))
    return ResolvedWeights(info=info, seed=seed)


def resolve_weights(
    spec: WeightsSpec,
    weights: str = AUTO,
    *,
    fallback: str | None = None,
    weights_dir: str | os.PathLike | None = None,
) -> ResolvedWeights:
    """Turn a config weights spec into a file to load (with its sha256) or a random-init seed.

    `auto` never silently becomes random: without `fallback="random"` a missing official file
    is a WeightsNotFoundError naming every place looked and how to get the file. A file `auto`
    finds must carry its published hash (see `official_file`); a configured path is used as
    given, its origin recording whether it is the official file.
    """
    if fallback == "none":
        fallback = None
    if fallback not in (None, "random"):
        raise ValueError(f"fallback must be 'none' (or None) or 'random', not {fallback!r}")
    parsed = parse_weights(weights)
    if parsed.kind == RANDOM:
        return random_weights(parsed.seed)
    if parsed.kind == AUTO:
        found = find_official(spec, weights_dir)
        if found is not None:
            return official_file(spec, found, weights_dir)
        candidates = candidate_paths(spec, weights_dir)
        if fallback == "random":
            places = ", ".join(str(path) for path in candidates)
            log.warning(
                "%s: official weights not found (looked in: %s); falling back to RANDOM "
                "weights (seed %d). Every output is marked random-init.",
                spec.extractor,
                places,
                DEFAULT_RANDOM_SEED,
            )
            return random_weights(DEFAULT_RANDOM_SEED, origin=fallback_origin(places))
        looked = "\n".join(f"  - {path}" for path in candidates)
        raise WeightsNotFoundError(
            f"{spec.extractor}: weights 'auto' found no official file. Looked at:\n{looked}\n"
            f"{how_to_get(spec, weights_dir)}"
        )
    return configured_file(spec, parsed, weights_dir)


def resolve_file_setting(
    spec: WeightsSpec, value: str = AUTO, weights_dir: str | os.PathLike | None = None
) -> ResolvedWeights:
    """A model file named by an extractor's own setting (dlib's landmark model): `auto` (the
    official file, an error if none is found) or a path; there is no random for these."""
    if parse_weights(value).kind == RANDOM:
        raise ValueError(
            f"extractors.{spec.extractor}.{spec.setting}: {value!r} is not a file; give auto "
            "or a file path"
        )
    return resolve_weights(spec, value, weights_dir=weights_dir)


def official_file(
    spec: WeightsSpec, path: Path, weights_dir: str | os.PathLike | None = None
) -> ResolvedWeights:
    """A file `auto` found, checked against its published hash.

    A file whose hash is verified (`WeightsFile.hash_verified`) must match: otherwise a
    WeightsHashError names the file, the expected and actual hash, and what to do. An
    unverified one that does not match is used with a WARNING, and its origin says so.
    """
    entry = spec.file(path.name)
    digest = file_sha256(path)
    note = hash_note(digest, entry)
    if hash_matches(digest, entry) is False:
        if entry.hash_verified:
            raise WeightsHashError(
                f"{spec.extractor}: weights file {path} has sha256 {digest}, but "
                f"{entry.made_by}'s {entry.name} has the published {entry.published_hash}: "
                "it is not the official file (a damaged or partial download, or another file "
                "saved under the official name). Delete it and get the official file, or, to "
                f"use this file anyway, set extractors.{spec.extractor}.weights to its path. "
                f"{how_to_get(spec, weights_dir)}"
            )
        log.warning(
            "%s: weights file %s has sha256 %s, not the published %s; %s's file is probably "
            "the same as %s's, but that is unverified: using it, and every output records "
            "the mismatch in weights_origin.",
            spec.extractor,
            path,
            digest,
            entry.published_hash,
            entry.made_by,
            spec.files[0].made_by,
        )
        note = f"UNVERIFIED: {note}"
    info = WeightsInfo(str(path), digest, f"auto: {path} ({note})")
    return ResolvedWeights(info=info, path=path)


def configured_file(
    spec: WeightsSpec, parsed: ParsedWeights, weights_dir: str | os.PathLike | None = None
) -> ResolvedWeights:
    """A configured weights file, used as given; its origin notes whether it is the official
    file (its hash compared with the published one of the same name, else the preferred one)."""
    path = Path(parsed.path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{spec.extractor}: weights file {path} does not exist. "
            f"{how_to_get(spec, weights_dir)}"
        )
    digest = file_sha256(path)
    entry: WeightsFile = spec.file(path.name) or spec.files[0]
    info = WeightsInfo(str(path), digest, f"config path ({hash_note(digest, entry)})")
    return ResolvedWeights(info=info, path=path)


# ---------------------------------------------------------------- hashing and loading


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
    state = read_state_dict(path, layout)
    require_layout(path, state, expected, layout)
    return state


def read_state_dict(path: str | os.PathLike, layout: str) -> dict[str, torch.Tensor]:
    """A plain state dict of tensors from `path` (weights_only); layout names the expected
    file in errors. Raises WeightsFileError."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a non-checkpoint file
        raise WeightsFileError(
            f"cannot read weights file {path} as a PyTorch state dict "
            f"(expected the layout of {layout}): {type(error).__name__}: {error}"
        ) from error
    return require_tensors(path, loaded, layout)


def require_tensors(path, loaded, layout: str) -> dict[str, torch.Tensor]:
    """`loaded` as a dict of str -> tensor, or WeightsFileError."""
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise WeightsFileError(
            f"weights file {path} is not a plain state dict of tensors "
            f"(expected the layout of {layout})"
        )
    return dict(loaded)


def require_layout(
    path,
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    layout: str,
    allowed_extra=lambda key: False,
) -> None:
    """Every expected key present with its shape; any other key only if `allowed_extra(key)`.
    Raises WeightsFileError naming the file, the layout and every offending key."""
    missing, unexpected, shapes = state_dict_mismatches(expected, state)
    unexpected = [key for key in unexpected if not allowed_extra(key)]
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


def _listing(what: str, items: list[str], shown: int = 20) -> str:
    if not items:
        return ""
    more = f", ... and {len(items) - shown} more" if len(items) > shown else ""
    plural = "es" if what.endswith("h") else "s"
    label = what if len(items) == 1 else what + plural
    return f"{len(items)} {label}: " + ", ".join(items[:shown]) + more
