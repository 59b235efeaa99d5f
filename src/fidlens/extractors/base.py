"""The torch side of an extractor: the network that `ExtractorType.build` returns.

An extractor is a torch module that maps a batch of preprocessed images to named outputs:
`features` (N x feature_dim), `logits` for classifiers, and any further per-image outputs
(the cache stores them generically, under `outputs/`). Preprocessing is a separate, picklable
callable so DataLoader workers can run it on the CPU while the network runs on the device.
How a batch is laid out (channels_last for convolutional networks), which device it can run
on, and which images it leaves out (dlib's images without a face) are the extractor's choice;
the extraction loop only asks (`prepare`, `collate`, `keep_output`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fidlens.provenance import RANDOM_INIT

# HWC uint8 RGB image -> what `collate` takes (a CHW float32 tensor at the network's input
# size for torch networks).
Preprocessor = Callable[[np.ndarray], Any]



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
    """Base class: subclasses set the class attributes and implement `preprocessor` and
    `forward`; the rest has defaults that fit a torch network on stacked image tensors."""

    name: str = ""  # the instance name once built by the registry (its type name before)
    feature_layer: str = ""
    feature_dim: int = 0
    logits_dim: int | None = None  # set for classifiers; their caches also hold `logits`
    logit_names: tuple[str, ...] | None = None  # class names, stored in the cache when known
    preprocess_modes: tuple[str, ...] = ()
    channels_last: bool = False  # convolutional networks: channels_last weights and inputs
    cpu_only: bool = False  # a network outside torch that runs on the CPU whatever the device
    # A boolean per-image output; images where it is False are left out of `features` and
    # every other output, and listed in the cache's `excluded` with `excluded_reason`.
    keep_output: str | None = None
    excluded_reason: str = ""

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__()
        if preprocess_mode not in self.preprocess_modes:
            raise ValueError(
                f"extractor {self.name!r} has no preprocessing mode {preprocess_mode!r}; "
                f"choose one of {', '.join(self.preprocess_modes)}"
            )
        self.preprocess_mode = preprocess_mode
        self.weights_info = weights
        self.type_name = self.name
        self.instance_settings: dict[str, Any] = {}
        self.model_files: dict[str, WeightsInfo] = {}
        self.declared: dict[str, Any] = {}

    def set_instance(
        self, name: str, extractor_type, settings: dict[str, Any], files: dict[str, WeightsInfo]
    ) -> None:
        """Called by the registry after `build`: the instance name, its type (an
        `ExtractorType`), its own settings and model files, all recorded in `provenance`."""
        self.name, self.type_name = name, extractor_type.name
        self.instance_settings, self.model_files = dict(settings), dict(files)
        self.declared = {
            "attention_layer": extractor_type.attention_layer or "none",
            "has_gradients": bool(extractor_type.has_gradients),
        }

    def preprocessor(self) -> Preprocessor:
        """A picklable per-image transform for the current preprocessing mode."""
        raise NotImplementedError

    def prepare(self, device: torch.device) -> Extractor:
        """The network ready for inference on `device` (eval mode, its memory layout)."""
        if self.channels_last:
            return self.to(device, memory_format=torch.channels_last).eval()
        return self.to(device).eval()

    def collate(self, items: list, device: torch.device):
        """The input of `forward` from a batch of preprocessed images, as the decoding
        workers hand them over (tensors come back as numpy arrays; see fidlens.extract).
        Default: one stacked tensor on `device`, channels_last where the extractor wants it."""
        batch = torch.from_numpy(np.stack([np.asarray(item) for item in items])).to(device)
        if self.channels_last:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    def forward(self, batch) -> dict[str, torch.Tensor | np.ndarray]:
        """Return {"features": N x feature_dim}, {"logits": N x logits_dim} for classifiers,
        and any further per-image outputs (N x ... arrays)."""
        raise NotImplementedError

    def provenance(self) -> dict[str, str | bool]:
        """Attributes written into feature caches and carried to metric JSONs."""
        attrs: dict[str, str | bool] = {
            "extractor": self.name,
            "extractor_type": self.type_name or self.name,
            "feature_layer": self.feature_layer,
            "preprocess": self.preprocess_mode,
            **self.weights_info.as_attrs(),
            **self.declared,
        }
        if self.instance_settings:
            attrs["extractor_settings"] = json.dumps(self.instance_settings, sort_keys=True)
        for key, info in self.model_files.items():
            attrs[f"{key}_path"] = info.path or RANDOM_INIT
            attrs[f"{key}_sha256"] = info.sha256
            attrs[f"{key}_origin"] = info.origin
        if self.keep_output:
            attrs["excluded_reason"] = self.excluded_reason
        return attrs
