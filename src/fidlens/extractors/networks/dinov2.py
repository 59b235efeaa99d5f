"""DINOv2 ViT-B/14 with 4 registers and ViT-L/14 (facebookresearch/dinov2): the CLS token.

timm builds the networks (`vit_base_patch14_reg4_dinov2`, `vit_large_patch14_dinov2`) for
224 x 224 input, a 16 x 16 grid of 14-px patches. The official files
(`dinov2_vitb14_reg4_pretrain.pth`, `dinov2_vitl14_pretrain.pth`) are plain state dicts in
facebookresearch's layout: position embeddings for a 37 x 37 grid (518 px), `mask_token`, and
`register_tokens` for the register model. Every key of that layout must be there with its
shape; `timm.models.vision_transformer.checkpoint_filter_fn` converts it to timm's.

The position embeddings are resampled from 37 x 37 to 16 x 16 exactly as facebookresearch's
model does at run time (`interpolate_pos_encoding`: bicubic; the register models with
`interpolate_offset=0.0, antialias=True`, a target size; the others with
`interpolate_offset=0.1, antialias=False`, a scale factor of (16 + 0.1) / 37), not with timm's
own resampling, which differs for the models without registers (~10 % of max |feature|).

Outputs: "features" = the class token after the final layer norm (`x_norm_clstoken`), 768-d
(B/14) or 1024-d (L/14). No logits.

Preprocessing ("dgm-eval", FD_DINOv2 as dgm-eval and EDM2 compute it): the whole image resized
to 224 x 224 with PIL bicubic (no crop, aspect ratio not kept), quantised to uint8, scaled to
[0, 1], normalised with the ImageNet mean and std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from timm.models.vision_transformer import checkpoint_filter_fn

from fidlens.extractors.base import Extractor, WeightsInfo
from fidlens.extractors.networks.seeded import fan_in, seeded_state_dict
from fidlens.weights import ResolvedWeights, read_state_dict, require_layout

INPUT_SIZE = 224
PATCH_SIZE = 14
CHECKPOINT_GRID = 37  # 518 / 14: the grid of the official files' position embeddings
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DinoVariant:
    type_name: str
    timm_name: str
    file_name: str
    feature_dim: int
    depth: int
    registers: int
    # facebookresearch's interpolate_pos_encoding settings of this model (hub/backbones.py)
    interpolate_offset: float
    interpolate_antialias: bool

    @property
    def attention_layer(self) -> str:
        return f"blocks.{self.depth - 2}"


VARIANTS = {
    "dinov2_vitb14_reg": DinoVariant(
        "dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2", "dinov2_vitb14_reg4_pretrain.pth",
        768, 12, 4, 0.0, True,
    ),
    "dinov2_vitl14": DinoVariant(
        "dinov2_vitl14", "vit_large_patch14_dinov2", "dinov2_vitl14_pretrain.pth",
        1024, 24, 0, 0.1, False,
    ),
}


def _timm_on_meta(variant: DinoVariant) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(
            variant.timm_name, pretrained=False, img_size=INPUT_SIZE, num_classes=0
        )


@lru_cache(maxsize=4)
def official_layout(type_name: str) -> dict[str, torch.Size]:
    """Key -> shape of facebookresearch's checkpoint of this variant."""
    variant = VARIANTS[type_name]
    layout = {}
    for key, value in _timm_on_meta(variant).state_dict().items():
        if key == "reg_token":
            key = "register_tokens"
        elif key == "pos_embed":
            value = torch.empty(1, 1 + CHECKPOINT_GRID**2, value.shape[-1], device="meta")
        layout[key] = value.shape
    layout["mask_token"] = torch.Size([1, variant.feature_dim])
    return dict(sorted(layout.items()))


def interpolate_position_embedding(
    pos_embed: torch.Tensor, grid: int, offset: float, antialias: bool
) -> torch.Tensor:
    """facebookresearch/dinov2's `interpolate_pos_encoding` for a grid x grid input: the class
    position kept, the patch positions resampled bicubically (a scale factor of
    (grid + offset) / M when offset is set, else the target size)."""
    pos_embed = pos_embed.float()
    class_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    count, dim = patch_pos.shape[1], patch_pos.shape[2]
    side = int(math.sqrt(count))
    if side * side != count:
        raise ValueError(f"position embeddings of {count} patches are not a square grid")
    if offset:
        scale = float(grid + offset) / side
        sizing = {"scale_factor": (scale, scale)}
    else:
        sizing = {"size": (grid, grid)}
    resampled = F.interpolate(
        patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2),
        mode="bicubic",
        antialias=antialias,
        **sizing,
    )
    if tuple(resampled.shape[-2:]) != (grid, grid):
        raise ValueError(f"resampled grid {tuple(resampled.shape[-2:])}, expected {grid}")
    return torch.cat((class_pos, resampled.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


# ---------------------------------------------------------------- the extractor


class DinoV2(Extractor):
    """A DINOv2 ViT on 3 x 224 x 224 ImageNet-normalised input -> its class token."""

    variant: DinoVariant
    preprocess_modes = ("dgm-eval",)
    feature_layer = "cls_token"

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        self.network = _timm_on_meta(self.variant)
        self.network.to_empty(device="cpu")

    def preprocessor(self) -> DgmEvalPreprocessor:
        return DgmEvalPreprocessor()

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"expected a N x 3 x {INPUT_SIZE} x {INPUT_SIZE} batch, got shape "
                f"{tuple(batch.shape)}"
            )
        return {"features": self.network(batch)}


def _extractor_class(variant: DinoVariant) -> type[DinoV2]:
    attributes = {"variant": variant, "name": variant.type_name,
                  "feature_dim": variant.feature_dim}
    return type(f"DinoV2_{variant.type_name}", (DinoV2,), attributes)


EXTRACTORS = {name: _extractor_class(variant) for name, variant in VARIANTS.items()}


@dataclass(frozen=True)
class DgmEvalPreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB (any size) -> 3 x 224 x 224."""

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
            )
        resized = Image.fromarray(image).resize(
            (INPUT_SIZE, INPUT_SIZE), resample=Image.Resampling.BICUBIC
        )
        unit = torch.from_numpy(np.array(resized)).permute(2, 0, 1).float().div(255)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return ((unit - mean) / std).contiguous()


# ---------------------------------------------------------------- seeded random weights


def _random_std(key: str, shape: tuple[int, ...]):
    """Per-key rule of our DINOv2 init (facebookresearch's layout): layer norms identity,
    layer scales 0.1 (the trained ones are far from their 1e-5 init), weights of variance
    1/fan_in, tokens and position embeddings of std 0.02 (as DINOv2 initialises them)."""
    name = key.rsplit(".", 1)[-1]
    if ".norm" in key or key.startswith("norm."):
        return torch.tensor(1.0 if name == "weight" else 0.0)
    if name == "gamma":
        return torch.tensor(0.1)
    if key in ("cls_token", "pos_embed", "register_tokens", "mask_token"):
        return 0.02
    if name == "bias":
        return 0.02
    return fan_in(shape) ** -0.5


def random_official_state_dict(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in facebookresearch's layout (values depend only on seed, key
    and shape; see `seeded`)."""
    return seeded_state_dict(official_layout(type_name), seed, _random_std)


@lru_cache(maxsize=2)
def _random_cached(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    return random_official_state_dict(type_name, seed)


# ---------------------------------------------------------------- loading


def to_timm_state_dict(
    state: dict[str, torch.Tensor], variant: DinoVariant, model: torch.nn.Module
) -> dict[str, torch.Tensor]:
    """facebookresearch's layout -> timm's, position embeddings resampled for 224 px input
    as facebookresearch resamples them."""
    state = dict(state)
    state["pos_embed"] = interpolate_position_embedding(
        state["pos_embed"],
        INPUT_SIZE // PATCH_SIZE,
        variant.interpolate_offset,
        variant.interpolate_antialias,
    )
    return checkpoint_filter_fn(state, model)


def load_dinov2(type_name: str, weights: ResolvedWeights, preprocess: str) -> DinoV2:
    """A DINOv2 ViT on the CPU, eval mode: facebookresearch's file (keys and shapes checked)
    or our seeded random init in the same layout."""
    variant = VARIANTS[type_name]
    model = EXTRACTORS[type_name](preprocess, weights.info)
    if weights.path is not None:
        layout = f"facebookresearch/dinov2's {variant.file_name}"
        state = read_state_dict(weights.path, layout)
        require_layout(weights.path, state, official_layout(type_name), layout)
    else:
        state = _random_cached(type_name, weights.seed)
    model.network.load_state_dict(to_timm_state_dict(state, variant, model.network), strict=True)
    return model.eval()
