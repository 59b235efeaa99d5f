"""OpenAI's CLIP image encoders (ViT-B/32, ViT-L/14 at 336 px): the projected image embedding.

open_clip builds the architecture (`open_clip.model.CLIP` with QuickGELU, the activation
OpenAI trained with, from open_clip's own `ViT-B-32` / `ViT-L-14-336` configs); only its vision
tower is kept. It reads OpenAI's files, `ViT-B-32.pt` and `ViT-L-14-336px.pt`, in either form:
- a TorchScript archive, as OpenAI publishes them (read with `torch.jit.load`, then its
  `state_dict()`; the only files read that way, recognised by the archive's `constants.pkl`);
- a plain state dict in OpenAI's key layout (`torch.load(weights_only=True)`).
Every key of OpenAI's layout must be there with its shape (the text tower's too: a file is the
whole CLIP), plus at most OpenAI's `input_resolution`, `context_length` and `vocab_size`.
The weights are float16 in OpenAI's files and float32 here (never float16, open_clip's CUDA
default): this equals `open_clip.load_openai_model(path, precision="fp32")`.

Outputs: "features" = the projected embedding (`ln_post` of the class token @ `proj`),
512-d (B/32) or 768-d (L/14-336). No logits.

Preprocessing ("openai", OpenAI's `clip.load` transform): bicubic resize of the shorter side
to the input size (PIL, as torchvision's Resize on a PIL image), centre crop to a square,
scale to [0, 1], normalise with CLIP's mean and std.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import open_clip
import torch
import torchvision.transforms.functional as TF
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image
from torchvision.transforms import InterpolationMode

from fidlens.extractors.base import Extractor, WeightsInfo
from fidlens.extractors.networks.seeded import fan_in, seeded_state_dict
from fidlens.weights import ResolvedWeights, WeightsFileError, require_layout, require_tensors

# Keys OpenAI's TorchScript archives carry besides the weights (ints saved as tensors).
OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
CLIP_MEAN = tuple(OPENAI_DATASET_MEAN)
CLIP_STD = tuple(OPENAI_DATASET_STD)


@dataclass(frozen=True)
class ClipVariant:
    type_name: str
    architecture: str  # open_clip's model config
    file_name: str  # OpenAI's
    input_size: int
    feature_dim: int
    depth: int  # residual attention blocks of the vision transformer

    @property
    def attention_layer(self) -> str:
        return f"transformer.resblocks.{self.depth - 2}"


VARIANTS = {
    "clip_vitb32": ClipVariant("clip_vitb32", "ViT-B-32", "ViT-B-32.pt", 224, 512, 12),
    "clip_vitl14_336": ClipVariant(
        "clip_vitl14_336", "ViT-L-14-336", "ViT-L-14-336px.pt", 336, 768, 24
    ),
}


def _clip_on_meta(variant: ClipVariant) -> open_clip.model.CLIP:
    """The whole CLIP of the variant without memory or initialisation (layout only)."""
    config = open_clip.get_model_config(variant.architecture)
    with torch.device("meta"):
        return open_clip.model.CLIP(**config, quick_gelu=True)


@lru_cache(maxsize=4)
def openai_layout(type_name: str) -> dict[str, torch.Size]:
    """Key -> shape of OpenAI's checkpoint of this variant (vision and text towers)."""
    model = _clip_on_meta(VARIANTS[type_name])
    return {key: value.shape for key, value in model.state_dict().items()}


def is_torchscript_archive(path) -> bool:
    """Whether a file is a TorchScript archive (a zip with `constants.pkl`), not a state dict."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_openai_file(path, variant: ClipVariant) -> dict[str, torch.Tensor]:
    """OpenAI's checkpoint as a state dict, its keys and shapes checked (see module doc)."""
    layout = f"OpenAI's {variant.file_name} (CLIP {variant.architecture})"
    try:
        if is_torchscript_archive(path):
            state = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file it cannot read
        raise WeightsFileError(
            f"cannot read weights file {path} as a TorchScript archive or a PyTorch state "
            f"dict (expected the layout of {layout}): {type(error).__name__}: {error}"
        ) from error
    state = require_tensors(path, state, layout)
    weights = {key: value for key, value in state.items() if key not in OPENAI_EXTRA_KEYS}
    require_layout(path, weights, openai_layout(variant.type_name), layout)
    return weights


# ---------------------------------------------------------------- the extractor


class ClipImageEncoder(Extractor):
    """CLIP's vision tower on normalised square input -> the projected image embedding."""

    variant: ClipVariant
    preprocess_modes = ("openai",)
    feature_layer = "embedding"

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        self.network = _clip_on_meta(self.variant).visual
        self.network.to_empty(device="cpu")

    def preprocessor(self) -> OpenAIPreprocessor:
        return OpenAIPreprocessor(self.variant.input_size)

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        size = self.variant.input_size
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, size, size):
            raise ValueError(
                f"expected a N x 3 x {size} x {size} batch, got shape {tuple(batch.shape)}"
            )
        return {"features": self.network(batch)}


def _encoder_class(variant: ClipVariant) -> type[ClipImageEncoder]:
    attributes = {"variant": variant, "name": variant.type_name,
                  "feature_dim": variant.feature_dim}
    return type(f"ClipImageEncoder_{variant.type_name}", (ClipImageEncoder,), attributes)


ENCODERS = {name: _encoder_class(variant) for name, variant in VARIANTS.items()}


@dataclass(frozen=True)
class OpenAIPreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB (any size) -> 3 x size x size."""

    size: int

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
            )
        picture = TF.resize(Image.fromarray(image), self.size, InterpolationMode.BICUBIC)
        picture = TF.center_crop(picture, [self.size, self.size])
        return TF.normalize(TF.to_tensor(picture), CLIP_MEAN, CLIP_STD).contiguous()


# ---------------------------------------------------------------- seeded random weights


def _random_std(key: str, shape: tuple[int, ...]):
    """Per-key rule of our CLIP init: layer norms identity, weights of variance 1/fan_in,
    embeddings of std width^-0.5 (as OpenAI's init), small biases."""
    name = key.rsplit(".", 1)[-1]
    if ".ln_" in key or key.startswith("ln_final"):
        return torch.tensor(1.0 if name == "weight" else 0.0)
    if key == "logit_scale":
        return torch.tensor(float(np.log(1 / 0.07)))
    if key in ("visual.proj", "text_projection"):  # used as x @ proj: fan-in is rows
        return shape[0] ** -0.5
    if "embedding" in key:
        return shape[-1] ** -0.5
    if name in ("bias", "in_proj_bias"):
        return 0.02
    return fan_in(shape) ** -0.5


def random_openai_state_dict(
    type_name: str, seed: int, vision_only: bool = False
) -> dict[str, torch.Tensor]:
    """Seeded random weights in OpenAI's layout (float32; the vision tower's keys only with
    `vision_only`). Values depend only on seed, key and shape (see `seeded`)."""
    layout = openai_layout(type_name)
    if vision_only:
        layout = {key: shape for key, shape in layout.items() if key.startswith("visual.")}
    return seeded_state_dict(layout, seed, _random_std)


@lru_cache(maxsize=2)
def _random_vision_cached(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    return random_openai_state_dict(type_name, seed, vision_only=True)


# ---------------------------------------------------------------- loading


def load_clip(type_name: str, weights: ResolvedWeights, preprocess: str) -> ClipImageEncoder:
    """A CLIP image encoder on the CPU in float32, eval mode: OpenAI's file (TorchScript or
    state dict, keys checked) or our seeded random init."""
    variant = VARIANTS[type_name]
    model = ENCODERS[type_name](preprocess, weights.info)
    if weights.path is not None:
        state = read_openai_file(weights.path, variant)
    else:
        state = _random_vision_cached(type_name, weights.seed)
    vision = {
        key.removeprefix("visual."): value.to(torch.float32)
        for key, value in state.items()
        if key.startswith("visual.")
    }
    model.network.load_state_dict(vision, strict=True)
    return model.eval()
