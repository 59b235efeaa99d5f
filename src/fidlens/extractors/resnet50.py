"""Extractor types `resnet50` and `swav_resnet50`: one ResNet-50, trained with and without labels.

Seed paper 002 compares FID in these feature spaces with Inception's: `resnet50` is
torchvision's ImageNet classifier (`resnet50-0676ba61.pth`, IMAGENET1K_V1: 2048-d pooled
features and 1000 logits), `swav_resnet50` the same architecture trained self-supervised by
SwAV (facebookresearch/swav's `swav_800ep_pretrain.pth.tar`: 2048-d pooled features, no
logits). Both take standard ImageNet preprocessing (shorter side 256, centre crop 224).
Network and preprocessing: `fidlens.extractors.networks.resnet50`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec

TYPES = ("resnet50", "swav_resnet50")


class _ResNet50(ExtractorType):
    # torchvision's IMAGENET1K_V1 transforms: shorter side to 256 (bilinear, antialiased),
    # centre crop 224, ImageNet mean / std.
    preprocess_modes = ("imagenet",)
    feature_layer = "pool"  # global average of layer4
    feature_dim = 2048
    attention_layer = "layer4"  # 2048 x 7 x 7

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.resnet50 import load_resnet50

        return load_resnet50(cls.name, weights, preprocess)


@register
class ResNet50ImageNet(_ResNet50):
    name = "resnet50"
    summary = "torchvision ResNet-50 (ImageNet, IMAGENET1K_V1): 2048-d pooled features, 1000 logits"
    weights = WeightsSpec(
        extractor="resnet50",
        files=(
            # torchvision's file; the published sha256 prefix is in its name.
            WeightsFile("resnet50-0676ba61.pth", made_by="torchvision", sha256_prefix="0676ba61"),
        ),
        places=("{torch_home}/hub/checkpoints",),  # where torchvision caches its download
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
    )
    logits_dim = 1000


@register
class ResNet50SwAV(_ResNet50):
    name = "swav_resnet50"
    summary = "ResNet-50 trained by SwAV (self-supervised, 800 epochs): 2048-d pooled features"
    weights = WeightsSpec(
        extractor="swav_resnet50",
        # facebookresearch publishes no hash: `make weights` records and prints the sha256 got.
        files=(WeightsFile("swav_800ep_pretrain.pth.tar", made_by="facebookresearch/swav"),),
        places=("{torch_home}/hub/checkpoints",),  # where torch.hub.load caches it
        url="https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",
    )
