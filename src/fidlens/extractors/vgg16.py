"""Extractor type `vgg16`: torchvision's VGG16 (ImageNet), torch-fidelity's precision/recall space.

`fc2_relu` features (4096-d) and 1000 ImageNet logits of torchvision's `vgg16-397923af.pth`
(IMAGENET1K_V1), with torch-fidelity's preprocessing: precision and recall in this space are
torch-fidelity's defaults. NVlabs' StyleGAN metrics use a different VGG16 port; numbers here
are not comparable with those. Network and preprocessing: `fidlens.extractors.networks.vgg16`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec


@register
class VGG16(ExtractorType):
    name = "vgg16"
    summary = "torchvision VGG16 (ImageNet): 4096-d fc2_relu (torch-fidelity's), 1000 logits"
    weights = WeightsSpec(
        extractor="vgg16",
        files=(
            # torchvision's file (torch-fidelity loads the same); the sha256 prefix is in its name.
            WeightsFile("vgg16-397923af.pth", made_by="torchvision", sha256_prefix="397923af"),
        ),
        places=("{torch_home}/hub/checkpoints",),  # where torchvision caches its download
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
    )
    # torch-fidelity's: the whole image to 224 with TF1 bilinear, ImageNet mean / std.
    preprocess_modes = ("torch-fidelity",)
    feature_layer = "fc2_relu"
    feature_dim = 4096
    logits_dim = 1000
    attention_layer = "features.30"  # the pool ending the last conv block, 512 x 7 x 7

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.vgg16 import load_vgg16

        return load_vgg16(weights, preprocess)
