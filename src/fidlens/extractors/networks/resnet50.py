"""torchvision's ResNet-50, with ImageNet-supervised or SwAV self-supervised weights.

The network is `torchvision.models.resnet50()` itself. Two official files:
- `resnet50-0676ba61.pth` (torchvision's IMAGENET1K_V1): exactly its state dict, loaded
  strictly; outputs "features" (the 2048-d global average of `layer4`) and "logits" (`fc`
  on them, 1000 ImageNet classes, with their names from torchvision's metadata);
- `swav_800ep_pretrain.pth.tar` (facebookresearch/swav, 800 epochs): a plain state dict of a
  `DataParallel` training model, every key prefixed `module.`, holding the backbone without
  `fc`, SwAV's `projection_head.*` and its `prototypes`. Every backbone key must be there with
  its shape; the only other keys allowed are the projection head's and the prototypes', which
  are ignored; anything else is an error naming the keys. Outputs "features" only (2048-d).

Preprocessing ("imagenet", for both, as torchvision's IMAGENET1K_V1 and SwAV's linear
evaluation): the shorter side to 256 (bilinear, antialiased), centre crop 224, ImageNet mean
and std (the same transform as `mobilenet_v2_imagenet`'s). Attention layer: `layer4`
(2048 x 7 x 7).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torchvision.models import ResNet50_Weights, resnet50

from fidlens.extractors.base import RANDOM_INIT, Extractor, WeightsInfo
from fidlens.extractors.networks.mobilenet_v2 import (
    CROP,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetPreprocessor,
)
from fidlens.extractors.networks.random_init import (
    calibrate_batch_norm,
    init_random_weights,
    synthetic_calibration_images,
)
from fidlens.weights import (
    ResolvedWeights,
    load_checked_state_dict,
    read_state_dict,
    require_layout,
)

IMAGENET_LAYOUT = "torchvision's resnet50-0676ba61.pth (ResNet50_Weights.IMAGENET1K_V1)"
SWAV_LAYOUT = (
    "facebookresearch/swav's swav_800ep_pretrain.pth.tar (`module.` + torchvision's ResNet-50 "
    "keys without fc, plus projection_head.* and prototypes.*)"
)
SWAV_PREFIX = "module."
SWAV_HEADS = ("projection_head.", "prototypes.")
CALIBRATION_IMAGES = 16


class ResNet50(Extractor):
    """ResNet-50 on 3 x 224 x 224 ImageNet-normalised input -> 2048 pooled features (and the
    1000 ImageNet logits of the supervised model)."""

    channels_last = True
    feature_layer = "pool"
    feature_dim = 2048
    preprocess_modes = ("imagenet",)

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        with torch.device("meta"):  # skip torchvision's init: no global RNG use, no time
            self.network = resnet50()
        if self.logits_dim is None:
            del self.network.fc  # SwAV's backbone has none
        self.network.to_empty(device="cpu")

    def preprocessor(self) -> ImageNetPreprocessor:
        return ImageNetPreprocessor()

    def pooled(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a N x 3 x H x W batch, got shape {tuple(batch.shape)}")
        net = self.network
        x = net.maxpool(net.relu(net.bn1(net.conv1(batch))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pooled(batch)
        if self.logits_dim is None:
            return {"features": pooled}
        return {"features": pooled, "logits": self.network.fc(pooled)}


class ResNet50ImageNet(ResNet50):
    name = "resnet50"
    logits_dim = 1000
    logit_names = tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


class ResNet50SwAV(ResNet50):
    name = "swav_resnet50"


EXTRACTORS = {"resnet50": ResNet50ImageNet, "swav_resnet50": ResNet50SwAV}


def read_swav_file(path, expected: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """SwAV's checkpoint as backbone keys (prefix stripped, heads dropped), strictly checked."""
    loaded = read_state_dict(path, SWAV_LAYOUT)
    state = {key.removeprefix(SWAV_PREFIX): value for key, value in loaded.items()}
    require_layout(path, state, expected, SWAV_LAYOUT,
                   allowed_extra=lambda key: key.startswith(SWAV_HEADS))
    return {key: value for key, value in state.items() if key in expected}


# ---------------------------------------------------------------- seeded random weights


def build_random_state_dict(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in torchvision's layout, batch norms calibrated on synthetic
    images (one CPU forward pass at 224 px). `swav_resnet50`'s are `resnet50`'s of the same
    seed without fc (fc is drawn last, so the backbone is the same)."""
    model = ResNet50ImageNet("imagenet", WeightsInfo(None, RANDOM_INIT, "calibration"))
    init_random_weights(model.network, seed)
    pixels = (synthetic_calibration_images(CALIBRATION_IMAGES, seed + 1, CROP) + 1) / 2
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    calibrate_batch_norm(_Pooled(model), (pixels - mean) / std)
    state = {key: value.clone() for key, value in model.network.state_dict().items()}
    if EXTRACTORS[type_name].logits_dim is None:
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    return state


class _Pooled(torch.nn.Module):
    """The backbone alone (a module for `calibrate_batch_norm`)."""

    def __init__(self, model: ResNet50):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.pooled(batch)


@lru_cache(maxsize=2)
def _random_cached(seed: int) -> dict[str, torch.Tensor]:
    return build_random_state_dict("resnet50", seed)


def random_state_dict(type_name: str, seed: int) -> dict[str, torch.Tensor]:
    """`build_random_state_dict`, computed once per process and seed (returns a copy)."""
    keep_fc = EXTRACTORS[type_name].logits_dim is not None
    return {
        key: value.clone()
        for key, value in _random_cached(seed).items()
        if keep_fc or not key.startswith("fc.")
    }


# ---------------------------------------------------------------- loading


def load_resnet50(type_name: str, weights: ResolvedWeights, preprocess: str) -> ResNet50:
    """ResNet-50 on the CPU, eval mode: the official file of the type (strictly checked) or
    our seeded random init."""
    model = EXTRACTORS[type_name](preprocess, weights.info)
    expected = {key: value.shape for key, value in model.network.state_dict().items()}
    if weights.path is None:
        state = random_state_dict(type_name, weights.seed)
    elif type_name == "swav_resnet50":
        state = read_swav_file(weights.path, expected)
    else:
        state = load_checked_state_dict(weights.path, expected, IMAGENET_LAYOUT)
    # Keys checked above; strict=False only tolerates an absent num_batches_tracked.
    model.network.load_state_dict(state, strict=False)
    return model.eval()
