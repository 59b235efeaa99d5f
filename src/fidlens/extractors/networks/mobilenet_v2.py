"""torchvision's MobileNetV2 with ImageNet weights: 1280-d pooled features, 1000 logits.

The network is `torchvision.models.mobilenet_v2()` itself (its forward: `features`, global
average pool, `classifier`), so a file in torchvision's layout (`mobilenet_v2-b0353104.pth`,
IMAGENET1K_V1) loads strictly. Outputs: "features" = the global average of `features` (the
last 1280-channel 1x1 conv block, `features.18`, 7 x 7 at 224), "logits" = the classifier on
them (dropout is off in eval mode). Category names come from torchvision's weight metadata.

Preprocessing ("imagenet", torchvision's IMAGENET1K_V1 transforms): resize the shorter side
to 256 (bilinear, antialiased), centre crop 224, scale to [0, 1], normalise with the ImageNet
mean and std.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

from fidlens.extractors.base import RANDOM_INIT, Extractor, WeightsInfo
from fidlens.extractors.networks.random_init import (
    calibrate_batch_norm,
    init_random_weights,
    synthetic_calibration_images,
)
from fidlens.weights import ResolvedWeights, load_checked_state_dict

RESIZE, CROP = 256, 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_LAYOUT = "torchvision's mobilenet_v2-b0353104.pth (MobileNet_V2_Weights.IMAGENET1K_V1)"
CALIBRATION_IMAGES = 16


class MobileNetV2ImageNet(Extractor):
    """MobileNetV2 on 3 x 224 x 224 ImageNet-normalised input -> 1280 features, 1000 logits."""

    name = "mobilenet_v2_imagenet"
    channels_last = True
    feature_layer = "pool"
    feature_dim = 1280
    logits_dim = 1000
    logit_names = tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
    preprocess_modes = ("imagenet",)

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        with torch.device("meta"):  # skip torchvision's init: no global RNG use, no time
            self.network = mobilenet_v2()
        self.network.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in self.network.state_dict().values():
                tensor.zero_()

    def preprocessor(self) -> ImageNetPreprocessor:
        return ImageNetPreprocessor()

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a N x 3 x H x W batch, got shape {tuple(batch.shape)}")
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.network.features(batch), (1, 1)), 1)
        return {"features": pooled, "logits": self.network.classifier(pooled)}


# torchvision's own preset, with IMAGENET1K_V1's parameters spelled out.
_IMAGENET = ImageClassification(
    crop_size=CROP,
    resize_size=RESIZE,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation=InterpolationMode.BILINEAR,
    antialias=True,
)


@dataclass(frozen=True)
class ImageNetPreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB (any size) -> 3 x 224 x 224."""

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
            )
        if not image.flags.writeable:  # torch warns on read-only memory
            image = image.copy()
        chw = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        return _IMAGENET(chw).contiguous()


def build_random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in torchvision's layout, batch norms calibrated on synthetic
    images (mapped from [-1, 1] to ImageNet-normalised pixels). One CPU forward pass."""
    model = MobileNetV2ImageNet("imagenet", WeightsInfo(None, RANDOM_INIT, "calibration"))
    init_random_weights(model.network, seed)
    pixels = (synthetic_calibration_images(CALIBRATION_IMAGES, seed + 1, CROP) + 1) / 2
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    # The batch norms are all in `features`; the classifier's dropout would draw from torch's
    # global RNG in train mode.
    calibrate_batch_norm(model.network.features, (pixels - mean) / std)
    return {key: value.clone() for key, value in model.network.state_dict().items()}


@lru_cache(maxsize=4)
def _random_state_dict_cached(seed: int) -> dict[str, torch.Tensor]:
    return build_random_state_dict(seed)


def load_mobilenet_v2(weights: ResolvedWeights, preprocess: str) -> MobileNetV2ImageNet:
    """MobileNetV2 on the CPU, in eval mode: a file in torchvision's layout loaded strictly,
    or our seeded random init."""
    model = MobileNetV2ImageNet(preprocess, weights.info)
    if weights.path is not None:
        expected = {key: value.shape for key, value in model.network.state_dict().items()}
        state = load_checked_state_dict(weights.path, expected, WEIGHTS_LAYOUT)
    else:
        cached = _random_state_dict_cached(weights.seed)
        state = {key: value.clone() for key, value in cached.items()}
    model.network.load_state_dict(state, strict=False)  # keys checked; num_batches_tracked
    return model.eval()
