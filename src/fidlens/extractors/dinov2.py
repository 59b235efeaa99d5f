"""Extractor types `dinov2_vitb14_reg` and `dinov2_vitl14`: DINOv2's self-supervised ViTs.

`dinov2_vitb14_reg`: ViT-B/14 with 4 register tokens, the 768-d class token (seed paper 001's
DINOv2). `dinov2_vitl14`: ViT-L/14 without registers, the 1024-d class token: the network of
FD_DINOv2 as EDM2 and dgm-eval define it, and with its preprocessing the only variant whose
FD_DINOv2 is comparable with published numbers. Both at 224 x 224 input. Weights:
facebookresearch's files (`dinov2_vitb14_reg4_pretrain.pth`, `dinov2_vitl14_pretrain.pth`) in
our weights folder or torch hub's cache; timm builds the networks. Network and preprocessing:
`fidlens.extractors.networks.dinov2`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec

TYPES = ("dinov2_vitb14_reg", "dinov2_vitl14")

_BASE_URL = "https://dl.fbaipublicfiles.com/dinov2"


def _dinov2_spec(type_name: str, folder: str, name: str) -> WeightsSpec:
    # facebookresearch publishes no hash: `make weights` records and prints the sha256 got.
    return WeightsSpec(
        extractor=type_name,
        files=(WeightsFile(name, made_by="facebookresearch/dinov2"),),
        places=("{torch_home}/hub/checkpoints",),  # where torch.hub.load caches it
        url=f"{_BASE_URL}/{folder}/{name}",
    )


class _DinoV2(ExtractorType):
    """What both DINOv2 variants share; `build` imports timm."""

    # dgm-eval / EDM2: the whole image to 224 x 224 with PIL bicubic, ImageNet mean / std.
    preprocess_modes = ("dgm-eval",)
    feature_layer = "cls_token"

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.dinov2 import load_dinov2

        return load_dinov2(cls.name, weights, preprocess)


@register
class DinoV2ViTB14Reg(_DinoV2):
    name = "dinov2_vitb14_reg"
    summary = "DINOv2 ViT-B/14 with 4 registers: 768-d class token (224 px)"
    weights = _dinov2_spec("dinov2_vitb14_reg", "dinov2_vitb14", "dinov2_vitb14_reg4_pretrain.pth")
    feature_dim = 768
    # The block before the last: 16 x 16 patch tokens (class token and registers dropped).
    attention_layer = "blocks.10"


@register
class DinoV2ViTL14(_DinoV2):
    name = "dinov2_vitl14"
    summary = "DINOv2 ViT-L/14: 1024-d class token (224 px), the network of FD_DINOv2"
    weights = _dinov2_spec("dinov2_vitl14", "dinov2_vitl14", "dinov2_vitl14_pretrain.pth")
    feature_dim = 1024
    attention_layer = "blocks.22"  # the block before the last: 16 x 16 patch tokens
