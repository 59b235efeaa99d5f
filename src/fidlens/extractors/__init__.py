"""The extractor registry: types declared without torch, instances named in the config.

An extractor *type* is one module, `fidlens/extractors/<type>.py`, holding one registered
`ExtractorType` subclass: its official weights (`weights`, a `WeightsSpec`), its own settings
(JSON-schema properties with defaults), its preprocessing modes, what it outputs, its
attention layer, and a `build` classmethod that imports the network code (torch, dlib, ...)
only when called. Nothing else in the package names a type, so adding one is that module plus
a config entry. A type module imports nothing heavy at its top level: the workflow imports the
modules of the configured types while it parses, to check their settings before any job.

An extractor *instance* is one config entry, `extractors: {name: {type: ..., ...}}` (the type
defaults to the name): a type with its settings. Caches and metrics are named by instance, so
one study can run the same network under two preprocessing modes or two weights files.

Types are found by their module's file name, or, for a family of networks in one module
(`clip.py`: `clip_vitb32`, `clip_vitl14_336`), by the literal `TYPES = (...)` at its top
(`available()` reads one folder; no module is imported), or registered at run time with
`register` (tests do). The modules of the network code live in `fidlens.extractors.networks`;
`Extractor`, `Preprocessor` and `WeightsInfo` (the torch side, see `fidlens.extractors.base`)
are re-exported lazily.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import json
import os
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fidlens.provenance import RANDOM_INIT
from fidlens.weight_specs import (
    AUTO,
    FILE,
    RANDOM,
    WEIGHTS_SPECS,
    WeightsFile,
    WeightsSpec,
    candidate_paths,
    find_official,
    how_to_get,
    parse_weights,
)

if TYPE_CHECKING:
    from fidlens.extractors.base import Extractor
    from fidlens.weights import ResolvedWeights

# Keys every instance has, validated by the workflow's schema; the rest are the type's own.
# `layer` (pool | logits) is read by the metrics, never by the extraction: classifiers cache
# both arrays, so switching it re-extracts nothing.
COMMON_SETTINGS = (
    "type", "weights", "fallback", "preprocess", "batch_size", "threads", "layer",
)
# Modules of this package that are not extractor types.
_NOT_TYPES = {"base"}

_TYPES: dict[str, type[ExtractorType]] = {}


class ExtractorType:
    """What a type of feature extractor is: declared as class attributes, readable without
    torch; `build` makes the network (the torch side, an `Extractor`).

    The registry does the rest for every type: fills in and validates the type's own settings,
    resolves `weights` (auto / random / a file) and every file setting, checks that the
    network matches the declaration, and stamps the instance's provenance.
    """

    name: ClassVar[str] = ""  # the type name in config (`type:`); a built-in's module name
    summary: ClassVar[str] = ""  # one line: the network, its features, its weights' source
    # Official file of `weights: auto`; None: no official file (a path or random only).
    weights: ClassVar[WeightsSpec | None] = None
    # Whether `weights: random` (our seeded init) exists; False makes random an error.
    random_weights: ClassVar[bool] = True
    no_random_reason: ClassVar[str] = ""  # why not, quoted in that error
    # Further model files, each its own setting (`auto` or a path; default auto).
    files: ClassVar[dict[str, WeightsSpec]] = {}
    preprocess_modes: ClassVar[tuple[str, ...]] = ()  # the first is the default
    feature_layer: ClassVar[str] = ""
    feature_dim: ClassVar[int] = 0
    logits_dim: ClassVar[int | None] = None  # classifiers: their caches hold `logits` too
    # Per-image outputs beyond features and logits, stored in the cache: name -> meaning.
    outputs: ClassVar[dict[str, str]] = {}
    # The layer whose spatial activations attention maps use; None: no attention maps.
    attention_layer: ClassVar[str | None] = None
    has_gradients: ClassVar[bool] = True  # False: a network outside torch (no attention maps)
    # The type's own settings: name -> JSON-schema property, with a "default".
    settings: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def build(
        cls,
        weights: ResolvedWeights,
        preprocess: str,
        settings: dict[str, Any],
        files: dict[str, ResolvedWeights],
    ) -> Extractor:
        """The network on the CPU with its weights loaded (imports torch and the like).

        weights: what `weights` resolved to (a file, or a seed for random init); preprocess:
        one of `preprocess_modes`; settings: the type's own settings, defaults filled in and
        validated; files: each file setting resolved to its file.
        """
        raise NotImplementedError

    @classmethod
    def used_files(cls, settings: dict[str, Any]) -> list[str]:
        """The file settings these settings use (default: all); only they are resolved."""
        return list(cls.files)

    @classmethod
    def settings_schema(cls) -> dict[str, Any]:
        """The JSON schema of the type's own settings (file settings included)."""
        properties = dict(cls.settings)
        for key, spec in cls.files.items():
            properties.setdefault(
                key,
                {
                    "description": f"{spec.file_name}: auto (the official file) or a path",
                    "type": "string",
                    "minLength": 1,
                    "default": AUTO,
                },
            )
        return {"type": "object", "properties": properties, "additionalProperties": False}


def register(cls: type[ExtractorType]) -> type[ExtractorType]:
    """Class decorator: make an `ExtractorType` subclass available under its `name`."""
    if not (isinstance(cls, type) and issubclass(cls, ExtractorType)) or not cls.name:
        raise TypeError(f"register takes an ExtractorType subclass with a name, not {cls!r}")
    if not cls.preprocess_modes:
        raise TypeError(f"extractor type {cls.name!r} declares no preprocess_modes")
    _TYPES[cls.name] = cls
    return cls


@functools.cache
def _builtin_type_modules() -> dict[str, str]:
    """type name -> its module, for the type modules of this package (nothing is imported).

    A module holds the type of its own file name, or, for a family of networks in one module
    (clip: clip_vitb32 and clip_vitl14_336), the types that a literal `TYPES = ("...", ...)`
    at its top level names (read from the source, not imported)."""
    found: dict[str, str] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg or module.name.startswith("_") or module.name in _NOT_TYPES:
            continue
        for type_name in _declared_type_names(module.name):
            found.setdefault(type_name, module.name)
    return found


def _declared_type_names(module: str) -> tuple[str, ...]:
    source = Path(__path__[0], f"{module}.py")
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return (module,)  # importing it reports the problem
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["TYPES"]
        ):
            names = ast.literal_eval(node.value)
            if isinstance(names, tuple) and names and all(isinstance(n, str) for n in names):
                return names
    return (module,)


def _builtin_type_names() -> tuple[str, ...]:
    """The built-in types, by their modules' file names or `TYPES` (nothing is imported)."""
    return tuple(_builtin_type_modules())


def available() -> list[str]:
    """Names of every extractor type, built-in or registered, without importing any of them."""
    return sorted(set(_builtin_type_names()) | set(_TYPES))


def get_type(name: str) -> type[ExtractorType]:
    """The type registered under `name`, importing its module (light) the first time."""
    if name not in _TYPES and name in _builtin_type_modules():
        module = _builtin_type_modules()[name]
        importlib.import_module(f"{__name__}.{module}")
        if name not in _TYPES:
            raise TypeError(f"module {__name__}.{module} registers no extractor type {name!r}")
    if name not in _TYPES:
        raise ValueError(f"unknown extractor type {name!r}; available: {', '.join(available())}")
    return _TYPES[name]


def type_of(name: str, entry: Mapping[str, Any]) -> str:
    """An instance's type: its `type`, else its name."""
    return entry.get("type") or name


def own_settings(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of an instance that belong to its type (everything but COMMON_SETTINGS)."""
    return {key: value for key, value in entry.items() if key not in COMMON_SETTINGS}


def settings_problems(
    cls: type[ExtractorType], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The type's own settings with defaults filled in, and every problem with them as
    (key, message): an unknown key (key ""), a wrong type or value."""
    schema = cls.settings_schema()
    filled = {
        key: prop["default"]
        for key, prop in schema["properties"].items()
        if "default" in prop and key not in given
    }
    filled.update(given)
    if not schema["properties"] and not given:
        return {}, []  # no jsonschema import for a type without settings
    from jsonschema import Draft202012Validator

    problems = []
    for error in sorted(Draft202012Validator(schema).iter_errors(filled), key=str):
        where = ".".join(str(part) for part in error.absolute_path)
        known = ", ".join(schema["properties"]) or "none"
        hint = "" if where else f" ({cls.name}'s own settings: {known})"
        problems.append((where, error.message + hint))
    return filled, problems


def _joined(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{key}: {message}" if key else message for key, message in problems)


def instance_problems(
    name: str, entry: Mapping[str, Any], weights_dir: str | os.PathLike | None = None
) -> list[str]:
    """Everything wrong with one configured instance that can be known before any job runs:
    its type, preprocessing mode, own settings, and whether its weights and files exist."""
    where = f"extractors.{name}"
    type_name = type_of(name, entry)
    named = functools.partial(dataclasses.replace, extractor=name)  # messages name the instance
    try:
        cls = get_type(type_name)
    except ValueError:
        known = ", ".join(available())
        if "type" in entry:
            return [f"{where}.type: no such extractor type {type_name!r} (available: {known})"]
        return [f"{where}: no such extractor type {type_name!r} (the type defaults to the "
                f"instance name; available: {known})"]
    problems = []
    mode = entry.get("preprocess")
    if mode is not None and mode not in cls.preprocess_modes:
        problems.append(
            f"{where}.preprocess: {cls.name} has no preprocessing mode {mode!r} "
            f"(choose one of {', '.join(cls.preprocess_modes)})"
        )
    if entry.get("layer") == "logits" and cls.logits_dim is None:
        problems.append(
            f"{where}.layer: {cls.name} has no classifier logits; layer logits needs a "
            "classifier (a type with logits: "
            + ", ".join(n for n in available() if _has_logits(n)) + ")"
        )
    settings, own = settings_problems(cls, own_settings(entry))
    problems += [f"{where}{'.' + key if key else ''}: {message}" for key, message in own]
    weights = entry.get("weights", AUTO)
    fallback = entry.get("fallback", "none")
    problems += _weights_problems(cls, where, weights, fallback, weights_dir, named)
    if own:
        return problems  # the file settings are not known to be well formed
    for key in cls.used_files(settings):
        spec = named(cls.files[key])
        problems += _file_problems(spec, f"{where}.{key}", settings[key], weights_dir)
    return problems


def _has_logits(type_name: str) -> bool:
    try:
        return get_type(type_name).logits_dim is not None
    except (TypeError, ValueError, ImportError):
        return False


def _weights_problems(cls, where, weights, fallback, weights_dir, named) -> list[str]:
    try:
        parsed = parse_weights(weights)
    except ValueError as error:
        return [f"{where}.weights: {error}"]
    if not cls.random_weights and (parsed.kind == RANDOM or fallback == "random"):
        key = "weights" if parsed.kind == RANDOM else "fallback"
        return [f"{where}.{key}: {cls.name} has no random weights ({cls.no_random_reason}); "
                "give weights: auto or a file, and no fallback"]
    spec = WEIGHTS_SPECS.get(cls.name)
    spec = spec and named(spec)
    if parsed.kind == AUTO and spec is None and fallback == "none":
        return [f"{where}.weights: {cls.name} has no official weights file for auto; give a "
                "file path" + (" or random" if cls.random_weights else "")]
    if parsed.kind == AUTO and spec is not None and fallback == "none":
        return _file_problems(spec, f"{where}.weights", weights, weights_dir,
                              or_else=" Or set fallback: random for clearly marked random-init"
                              " numbers." if cls.random_weights else "")
    if parsed.kind == FILE:
        return _file_problems(spec or _no_official_file(cls.name), f"{where}.weights", weights,
                              weights_dir)
    return []


def _file_problems(spec, where, value, weights_dir, or_else="") -> list[str]:
    """A file setting (`auto` or a path) that names no file."""
    if value == AUTO:
        looked = candidate_paths(spec, weights_dir)
        if any(path.is_file() for path in looked):
            return []
        return [f"{where}: auto found no official file; looked at "
                f"{', '.join(map(str, looked))}. {how_to_get(spec, weights_dir)}{or_else}"]
    if parse_weights(value).kind == RANDOM:
        return [f"{where}: {value} is not a file; give auto or a file path"]
    if not os.path.isfile(os.path.expanduser(value)):
        return [f"{where}: file {value} does not exist "
                "(give a weights file, auto or random; see README.md, Weights)"]
    return []


def files_state(
    name: str, entry: Mapping[str, Any], weights_dir: str | os.PathLike | None = None
) -> str:
    """Which files an instance would load now (path, size, mtime of `weights` and of every file
    setting), so that installing, replacing or moving one reruns its extractions; computed at
    parse time without hashing anything."""
    cls = get_type(type_of(name, entry))
    settings, _ = settings_problems(cls, own_settings(entry))
    states = [_file_state(WEIGHTS_SPECS.get(cls.name), entry.get("weights", AUTO), weights_dir)]
    states += [
        f"{key}: {_file_state(cls.files[key], settings[key], weights_dir)}"
        for key in cls.used_files(settings)
    ]
    return "; ".join(states)


def _file_state(spec, value, weights_dir) -> str:
    parsed = parse_weights(value)
    if parsed.kind == RANDOM:
        return "random"  # the seed is in the settings
    if parsed.kind == AUTO:
        found = find_official(spec, weights_dir) if spec is not None else None
        if found is None:
            return "auto: none found"
    else:
        found = os.path.expanduser(parsed.path)
        if not os.path.isfile(found):
            return f"missing: {found}"
    stat = os.stat(found)
    return f"{found} {stat.st_size} {stat.st_mtime_ns}"


def build_extractor(
    type_name: str,
    *,
    weights: str = AUTO,
    preprocess: str | None = None,
    fallback: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    settings: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Extractor:
    """Build an extractor of a registered type on the CPU, in eval mode, weights resolved.

    weights: a file path, "auto" (the official file in its standard places), "random" or
    "random:<seed>" (see fidlens.weight_specs.parse_weights).
    fallback: "random" lets a missing official file become a logged, marked random init.
    settings: the type's own settings (defaults fill the rest); name: the instance name that
    its caches record (default: the type name).
    Raises ValueError for an unknown type, a bad setting or preprocessing mode, or random
    weights for a type that has none; the errors of `fidlens.weights` for a weights file.
    """
    if type_name not in available():
        raise ValueError(f"unknown extractor {type_name!r}; available: {', '.join(available())}")
    cls = get_type(type_name)
    own, problems = settings_problems(cls, dict(settings or {}))
    if problems:
        raise ValueError(f"{cls.name} settings: {_joined(problems)}")
    mode = preprocess or cls.preprocess_modes[0]
    if mode not in cls.preprocess_modes:
        raise ValueError(
            f"extractor {cls.name!r} has no preprocessing mode {mode!r}; "
            f"choose one of {', '.join(cls.preprocess_modes)}"
        )
    if fallback == "none":
        fallback = None
    if not cls.random_weights and (parse_weights(weights).kind == RANDOM or fallback):
        raise ValueError(
            f"{cls.name} has no random weights ({cls.no_random_reason}); "
            "use weights auto or a file, and no fallback"
        )
    spec = WEIGHTS_SPECS.get(cls.name)
    if spec is None and parse_weights(weights).kind == AUTO and not fallback:
        raise ValueError(f"{cls.name} has no official weights file for auto; give a file path")
    from fidlens.weights import resolve_file_setting, resolve_weights

    resolved = resolve_weights(
        spec or _no_official_file(cls.name),
        weights,
        fallback=fallback,
        weights_dir=weights_dir,
    )
    files = {
        key: resolve_file_setting(cls.files[key], own[key], weights_dir)
        for key in cls.used_files(own)
    }
    model = cls.build(resolved, mode, own, files)
    _check_declaration(cls, model)
    model.set_instance(
        name or cls.name, cls, own, {key: file.info for key, file in files.items()}
    )
    return model.eval()


def _no_official_file(type_name: str) -> WeightsSpec:
    """The spec of a type without an official file: `auto` finds nothing, a path is used as
    given (its origin says no published hash is known)."""
    return WeightsSpec(
        extractor=type_name,
        files=(WeightsFile(f"{type_name}-weights", made_by=type_name),),
        manual_instructions=f"{type_name} has no official weights file: give a file path.",
    )


def _check_declaration(cls: type[ExtractorType], model: Extractor) -> None:
    """The network must be what its type declares (the workflow trusts the declaration)."""
    declared = (cls.feature_layer, cls.feature_dim, cls.logits_dim, cls.preprocess_modes)
    built = (model.feature_layer, model.feature_dim, model.logits_dim, model.preprocess_modes)
    if declared != built:
        raise TypeError(
            f"extractor type {cls.name!r} declares (feature_layer, feature_dim, logits_dim, "
            f"preprocess_modes) = {declared}, but its network has {built}"
        )


def canonical_settings(settings: Mapping[str, Any]) -> str:
    """Settings as canonical JSON (sorted keys, no spaces) for CLI flags; "" for none."""
    return json.dumps(dict(settings), sort_keys=True, separators=(",", ":")) if settings else ""


_LAZY_FROM_BASE = ("Extractor", "Preprocessor", "WeightsInfo")


def __getattr__(name: str):
    # The torch side needs torch: import it only when asked for.
    if name in _LAZY_FROM_BASE:
        from fidlens.extractors import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMMON_SETTINGS",
    "RANDOM_INIT",
    "Extractor",
    "ExtractorType",
    "Preprocessor",
    "WeightsInfo",
    "available",
    "build_extractor",
    "canonical_settings",
    "files_state",
    "get_type",
    "instance_problems",
    "own_settings",
    "register",
    "settings_problems",
    "type_of",
]
