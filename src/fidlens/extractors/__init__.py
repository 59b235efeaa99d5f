"""Registry of feature extractors: a new network is one module plus one `register` call."""

from __future__ import annotations

from collections.abc import Callable

from fidlens.extractors.base import RANDOM_INIT, Extractor, Preprocessor, WeightsInfo

# name -> factory(weights: str, preprocess: str | None, fallback: str | None,
#                 weights_dir: str | None) -> Extractor
_FACTORIES: dict[str, Callable[..., Extractor]] = {}


def register(name: str):
    def decorator(factory: Callable[..., Extractor]) -> Callable[..., Extractor]:
        _FACTORIES[name] = factory
        return factory

    return decorator


def available() -> list[str]:
    _import_builtin()
    return sorted(_FACTORIES)


def build_extractor(
    name: str,
    *,
    weights: str = "auto",
    preprocess: str | None = None,
    fallback: str | None = None,
    weights_dir: str | None = None,
) -> Extractor:
    """Build a registered extractor on the CPU, in eval mode, with its weights resolved.

    weights: a file path, "auto" (the official file in its standard places) or "random".
    fallback: "random" lets a missing official file become a logged, marked random init.
    """
    _import_builtin()
    if name not in _FACTORIES:
        raise ValueError(f"unknown extractor {name!r}; available: {', '.join(sorted(_FACTORIES))}")
    model = _FACTORIES[name](
        weights=weights, preprocess=preprocess, fallback=fallback, weights_dir=weights_dir
    )
    return model.eval()


def _import_builtin() -> None:
    # Importing a module registers its extractor.
    from fidlens.extractors import inception  # noqa: F401


__all__ = [
    "RANDOM_INIT",
    "Extractor",
    "Preprocessor",
    "WeightsInfo",
    "available",
    "build_extractor",
    "register",
]
