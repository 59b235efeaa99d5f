"""Reading official checkpoints whose layout is not exactly one module's state dict.

`fidlens.weights.load_checked_state_dict` loads a file that must hold exactly a module's keys.
The files here differ a little (OpenAI's TorchScript archives, SwAV's `module.` prefix and
training heads, DINOv2's 37 x 37 position grid): `read_state_dict` reads a plain state dict
(`torch.load(weights_only=True)`), and `require_layout` checks keys and shapes against the
official layout, naming every missing, unexpected or misshapen key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from fidlens.weights import WeightsFileError, state_dict_mismatches


def read_state_dict(path: str | os.PathLike, layout: str) -> dict[str, torch.Tensor]:
    """A plain state dict of tensors from `path` (weights_only); layout names the expected
    file in errors."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a non-checkpoint file
        raise WeightsFileError(
            f"cannot read weights file {path} as a PyTorch state dict "
            f"(expected the layout of {layout}): {type(error).__name__}: {error}"
        ) from error
    return require_tensors(path, loaded, layout)


def require_tensors(path, loaded, layout: str) -> dict[str, torch.Tensor]:
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
