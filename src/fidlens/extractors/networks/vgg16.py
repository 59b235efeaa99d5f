"""torchvision's VGG16 (ImageNet) as torch-fidelity uses it for precision and recall.

The network is `torchvision.models.vgg16()` itself, loading torchvision's
`vgg16-397923af.pth` (IMAGENET1K_V1) strictly. Outputs: "features" = `fc2_relu`, the ReLU of
the second fully connected layer (`classifier.3`; 4096-d; torch-fidelity's default feature of
its `vgg16` extractor for every metric), "logits" = the last layer (`classifier.6`) on them
(1000 ImageNet classes; dropout is off in eval mode), with torchvision's class names.

Preprocessing ("torch-fidelity", its `FeatureExtractorVGG16`): the whole image resized to
224 x 224 with TensorFlow 1's bilinear resize of the 0..255 values (no crop), then normalised
with the ImageNet mean and std scaled to 0..255. NVlabs' StyleGAN metrics use another VGG16
port (a TorchScript `vgg16.pkl` with its own preprocessing): these features are not those.
Attention layer: `features.30` (the max pool ending the last conv block, 512 x 7 x 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torchvision.models import VGG16_Weights, vgg16

from fidlens.extractors.base import RANDOM_INIT, Extractor, WeightsInfo
from fidlens.extractors.networks.inception import resize_bilinear_tf1
from fidlens.extractors.networks.random_init import init_random_weights
from fidlens.weights import ResolvedWeights, load_checked_state_dict

INPUT_SIZE = 224
IMAGENET_MEAN_255 = tuple(255 * value for value in (0.485, 0.456, 0.406))
IMAGENET_STD_255 = tuple(255 * value for value in (0.229, 0.224, 0.225))
WEIGHTS_LAYOUT = "torchvision's vgg16-397923af.pth (VGG16_Weights.IMAGENET1K_V1)"


class VGG16(Extractor):
    """VGG16 on 3 x 224 x 224 normalised input -> fc2_relu (4096) and 1000 logits."""

    name = "vgg16"
    channels_last = True
    feature_layer = "fc2_relu"
    feature_dim = 4096
    logits_dim = 1000
    logit_names = tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])
    preprocess_modes = ("torch-fidelity",)

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        with torch.device("meta"):  # skip torchvision's init: no global RNG use, no time
            self.network = vgg16()
        self.network.to_empty(device="cpu")

    def preprocessor(self) -> TorchFidelityVGGPreprocessor:
        return TorchFidelityVGGPreprocessor()

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a N x 3 x H x W batch, got shape {tuple(batch.shape)}")
        net = self.network
        x = torch.flatten(net.avgpool(net.features(batch)), 1)
        classifier = net.classifier  # fc1, relu, dropout, fc2, relu, dropout, fc3
        fc2_relu = classifier[4](classifier[3](classifier[2](classifier[1](classifier[0](x)))))
        return {"features": fc2_relu, "logits": classifier[6](classifier[5](fc2_relu))}


@dataclass(frozen=True)
class TorchFidelityVGGPreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB (any size) -> 3 x 224 x 224."""

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
            )
        if not image.flags.writeable:  # torch warns on read-only memory
            image = image.copy()
        chw = torch.from_numpy(image).permute(2, 0, 1).contiguous().float()
        resized = resize_bilinear_tf1(chw, INPUT_SIZE)
        mean = torch.tensor(IMAGENET_MEAN_255).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD_255).view(3, 1, 1)
        return ((resized - mean) / std).contiguous()


def build_random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in torchvision's layout (He-uniform convolutions keep ReLU
    activations at scale without batch norms; VGG16 has none)."""
    model = VGG16("torch-fidelity", WeightsInfo(None, RANDOM_INIT, "random"))
    init_random_weights(model.network, seed)
    return {key: value.clone() for key, value in model.network.state_dict().items()}


@lru_cache(maxsize=2)
def _random_cached(seed: int) -> dict[str, torch.Tensor]:
    return build_random_state_dict(seed)


def load_vgg16(weights: ResolvedWeights, preprocess: str) -> VGG16:
    """VGG16 on the CPU, eval mode: torchvision's file loaded strictly, or our seeded random
    init."""
    model = VGG16(preprocess, weights.info)
    if weights.path is not None:
        expected = {key: value.shape for key, value in model.network.state_dict().items()}
        state = load_checked_state_dict(weights.path, expected, WEIGHTS_LAYOUT)
    else:
        state = _random_cached(weights.seed)
    model.network.load_state_dict(state, strict=True)
    return model.eval()
