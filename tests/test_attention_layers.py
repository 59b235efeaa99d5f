"""The attention layer each type of issue 8 declares exists in its network (by that name, under
`extractor.network`) and has the declared spatial grid; the outputs have the declared sizes.
Shapes only: every network runs on PyTorch's meta device (no weights, no arithmetic)."""

from __future__ import annotations

import pytest
import torch

from fidlens.extractors import get_type
from fidlens.extractors.base import RANDOM_INIT, WeightsInfo
from fidlens.extractors.networks import arcface, clip, dinov2, resnet50, vgg16

# type -> (extractor class, input size, attention output shape for a batch of 2)
CASES = {
    # CLIP: the class token and 7 x 7 (24 x 24) patch tokens, batch first.
    "clip_vitb32": (clip.ENCODERS["clip_vitb32"], 224, (2, 1 + 7 * 7, 768)),
    "clip_vitl14_336": (clip.ENCODERS["clip_vitl14_336"], 336, (2, 1 + 24 * 24, 1024)),
    # DINOv2: the class token, the 4 registers (B/14 reg) and 16 x 16 patch tokens.
    "dinov2_vitb14_reg": (dinov2.EXTRACTORS["dinov2_vitb14_reg"], 224, (2, 1 + 4 + 256, 768)),
    "dinov2_vitl14": (dinov2.EXTRACTORS["dinov2_vitl14"], 224, (2, 1 + 256, 1024)),
    "arcface_r100": (arcface.ArcFaceR100, 112, (2, 512, 7, 7)),
    "resnet50": (resnet50.ResNet50ImageNet, 224, (2, 2048, 7, 7)),
    "swav_resnet50": (resnet50.ResNet50SwAV, 224, (2, 2048, 7, 7)),
    "vgg16": (vgg16.VGG16, 224, (2, 512, 7, 7)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_declared_attention_layer_and_output_sizes(name):
    declared = get_type(name)
    extractor_class, size, attention_shape = CASES[name]
    model = extractor_class(declared.preprocess_modes[0], WeightsInfo(None, RANDOM_INIT, "shape"))
    model = model.to("meta").eval()
    seen = {}
    layer = model.network.get_submodule(declared.attention_layer)
    layer.register_forward_hook(lambda module, inputs, output: seen.update(shape=output.shape))
    with torch.no_grad():
        outputs = model(torch.zeros(2, 3, size, size, device="meta"))
    assert tuple(seen["shape"]) == attention_shape
    assert tuple(outputs["features"].shape) == (2, declared.feature_dim)
    if declared.logits_dim is None:
        assert "logits" not in outputs
    else:
        assert tuple(outputs["logits"].shape) == (2, declared.logits_dim)
