"""The one small interface every feature extractor implements.

An extractor is a torch module that maps a batch of preprocessed images to named outputs.
Preprocessing is a separate, picklable callable so DataLoader workers can run it on the CPU
while the network runs on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fidlens.provenance import RANDOM_INIT

# HWC uint8 RGB image -> CHW float32 tensor at the network's input size.
Preprocessor = Callable[[np.ndarray], torch.Tensor]



@dataclass(frozen=True)
class WeightsInfo:
    """Where an extractor's weights came from; copied into every output."""

    path: str | None  # None for our own seeded random initialisation
    sha256: str  # hex digest of the file, or RANDOM_INIT
    origin: str  # human-readable: "config path", "auto: <file>", "random (fallback: ...)"

    @property
    def random_init(self) -> bool:
        return self.sha256 == RANDOM_INIT

    def as_attrs(self) -> dict[str, str]:
        return {
            "weights_path": self.path or RANDOM_INIT,
            "weights_sha256": self.sha256,
            "weights_origin": self.origin,
            "weights": RANDOM_INIT if self.random_init else "pretrained",
        }


class Extractor(torch.nn.Module):
    """Base class: subclasses set the class attributes and implement `forward`."""

    name: str = ""
    feature_layer: str = ""
    feature_dim: int = 0
    logits_dim: int | None = None  # set for classifiers; their caches also hold `logits`
    preprocess_modes: tuple[str, ...] = ()

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__()
        if preprocess_mode not in self.preprocess_modes:
            raise ValueError(
                f"extractor {self.name!r} has no preprocessing mode {preprocess_mode!r}; "
                f"choose one of {', '.join(self.preprocess_modes)}"
            )
        self.preprocess_mode = preprocess_mode
        self.weights_info = weights

    def preprocessor(self) -> Preprocessor:
        """A picklable per-image transform for the current preprocessing mode."""
        raise NotImplementedError

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return {"features": N x feature_dim} plus {"logits": N x logits_dim} for classifiers."""
        raise NotImplementedError

    def provenance(self) -> dict[str, str]:
        """Attributes written into feature caches and carried to metric JSONs."""
        return {
            "extractor": self.name,
            "feature_layer": self.feature_layer,
            "preprocess": self.preprocess_mode,
            **self.weights_info.as_attrs(),
        }
