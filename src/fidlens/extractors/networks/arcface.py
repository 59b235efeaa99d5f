"""ArcFace's iResNet-100 (insightface `recognition/arcface_torch`): a 512-d face embedding.

No library ships this network, so it is written here from the published layout of
`backbone.pth` (a plain `backbone.state_dict()` of `get_model("r100")`): a 3 x 3 stem
(`conv1`, `bn1`, `prelu`) at full resolution, four stages of improved basic blocks
([3, 13, 30, 3] blocks of 64, 128, 256, 512 channels, each stage halving the resolution in its
first block), a final `bn2`, the flattened 512 x 7 x 7 map through `fc` (25088 -> 512) and the
`features` batch norm. An improved basic block is bn1 -> conv1 (3 x 3) -> bn2 -> prelu ->
conv2 (3 x 3, the stride) -> bn3, plus the shortcut (`downsample`: 1 x 1 conv with the stride
and a batch norm, in each stage's first block), with no activation after the sum.

Outputs: "features" = the embedding after `features` (512-d; not L2-normalised, as ArcFace's
own `inference.py` returns it). No logits. Attention layer: `layer4` (512 x 7 x 7).

Preprocessing ("arcface"): the shorter side to 112 with PIL bilinear (torchvision's Resize of
a PIL image), centre crop 112 x 112 (for square face crops: the whole image resized, as the
seed-001 code does), then (x / 255 - 0.5) / 0.5 per channel (ArcFace's `inference.py`).
Setting `align: dlib` first aligns the face with dlib's 5 landmarks (`dlib.get_face_chip`,
112 x 112, padding 0.25) in the largest face dlib's HOG detector finds (the whole image when
it finds none; `face_found` records which). That is dlib's alignment, not insightface's
`norm_crop` template the network was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode

from fidlens.extractors.base import RANDOM_INIT, Extractor, WeightsInfo
from fidlens.extractors.networks.random_init import (
    calibrate_batch_norm,
    init_random_weights,
    synthetic_calibration_images,
)
from fidlens.weights import ResolvedWeights, load_checked_state_dict

INPUT_SIZE = 112
BLOCKS = (3, 13, 30, 3)  # iResNet-100
WIDTHS = (64, 128, 256, 512)
EMBEDDING_DIM = 512
WEIGHTS_LAYOUT = "insightface arcface_torch's backbone.pth of get_model('r100')"
CALIBRATION_IMAGES = 8
ALIGN_PADDING = 0.25  # dlib's default padding of get_face_chip


class IBasicBlock(nn.Module):
    """The improved basic block; attribute names are the checkpoint's keys."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """iResNet on 3 x 112 x 112 input -> 512-d embedding."""

    def __init__(self, blocks=BLOCKS, widths=WIDTHS, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        in_channels = 64
        for index, (count, width) in enumerate(zip(blocks, widths, strict=True), start=1):
            stage = [IBasicBlock(in_channels, width, stride=2)]
            stage += [IBasicBlock(width, width, stride=1) for _ in range(count - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            in_channels = width
        self.bn2 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.fc = nn.Linear(in_channels * 7 * 7, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)  # (dropout 0 in the published model)
        return self.features(self.fc(x))


# ---------------------------------------------------------------- the extractor


class ArcFaceR100(Extractor):
    """ArcFace iResNet-100 on 3 x 112 x 112 input -> 512-d face embedding."""

    name = "arcface_r100"
    channels_last = True
    feature_layer = "embedding"
    feature_dim = EMBEDDING_DIM
    preprocess_modes = ("arcface",)

    def __init__(self, preprocess_mode: str, weights: WeightsInfo, align: str = "none",
                 landmarks_path: str | None = None):
        super().__init__(preprocess_mode, weights)
        with torch.device("meta"):  # no torch RNG use, no time in torch's init
            self.network = IResNet()
        self.network.to_empty(device="cpu")
        self.align = align
        self.landmarks_path = landmarks_path

    def preprocessor(self) -> ArcFacePreprocessor:
        return ArcFacePreprocessor(self.align, self.landmarks_path)

    def collate(self, items: list, device: torch.device):
        if self.align == "none":
            return super().collate(items, device)
        return {
            "images": super().collate([item["image"] for item in items], device),
            "face_found": np.array([item["face_found"] for item in items], dtype=bool),
        }

    def forward(self, batch) -> dict[str, Any]:
        extra = {}
        if isinstance(batch, dict):
            batch, extra = batch["images"], {"face_found": batch["face_found"]}
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"expected a N x 3 x {INPUT_SIZE} x {INPUT_SIZE} batch, got shape "
                f"{tuple(batch.shape)}"
            )
        return {"features": self.network(batch), **extra}


def _resize_crop(picture: Image.Image) -> Image.Image:
    picture = TF.resize(picture, INPUT_SIZE, InterpolationMode.BILINEAR)
    return TF.center_crop(picture, [INPUT_SIZE, INPUT_SIZE])


def _normalise(picture: Image.Image) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(picture), (0.5,) * 3, (0.5,) * 3).contiguous()


@dataclass(frozen=True)
class ArcFacePreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB -> 3 x 112 x 112 in [-1, 1]; with
    dlib alignment, {"image": that as a numpy array, "face_found": bool}."""

    align: str = "none"
    landmarks_path: str | None = None

    def __call__(self, image: np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
            )
        if self.align == "none":
            return _normalise(_resize_crop(Image.fromarray(image)))
        chip, found = dlib_aligned_chip(np.ascontiguousarray(image), self.landmarks_path)
        # numpy, not a tensor: the decoding workers hand tensors over through shared memory
        # (see fidlens.extract), and only a top-level tensor is converted for them.
        return {"image": _normalise(Image.fromarray(chip)).numpy(), "face_found": found}


def dlib_aligned_chip(image: np.ndarray, landmarks_path: str) -> tuple[np.ndarray, bool]:
    """dlib's 5-landmark chip (112 x 112, padding 0.25) of the largest face its HOG detector
    finds (upsampling once), or of the whole image as the face box when it finds none."""
    import dlib

    from fidlens.extractors.networks.dlib_face import detect_faces, dlib_model

    faces = detect_faces(image, "hog", 1)
    if faces:
        box = faces[0][:4]
    else:
        box = (0.0, 0.0, float(image.shape[1] - 1), float(image.shape[0] - 1))
    rect = dlib.rectangle(*(int(round(value)) for value in box))
    shape = dlib_model("landmarks", landmarks_path)(image, rect)
    chip = dlib.get_face_chip(image, shape, size=INPUT_SIZE, padding=ALIGN_PADDING)
    return np.asarray(chip), bool(faces)


# ---------------------------------------------------------------- seeded random weights


def build_random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in backbone.pth's layout, every batch norm (the final
    `features` too) calibrated on synthetic images: one CPU forward pass at 112 px."""
    model = ArcFaceR100("arcface", WeightsInfo(None, RANDOM_INIT, "calibration"))
    network = model.network
    init_random_weights(network, seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.PReLU):
                module.weight.fill_(0.25)  # PyTorch's and insightface's initial slope
            elif isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()
    # Every batch norm, the embedding's 1-D one too, from one train-mode pass.
    calibrate_batch_norm(
        network, synthetic_calibration_images(CALIBRATION_IMAGES, seed + 1, INPUT_SIZE)
    )
    return {key: value.clone() for key, value in network.state_dict().items()}


@lru_cache(maxsize=2)
def _random_cached(seed: int) -> dict[str, torch.Tensor]:
    return build_random_state_dict(seed)


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """`build_random_state_dict`, computed once per process and seed (returns a copy)."""
    return {key: value.clone() for key, value in _random_cached(seed).items()}


# ---------------------------------------------------------------- loading


def load_arcface(
    weights: ResolvedWeights, preprocess: str, align: str = "none",
    landmarks_path: str | None = None,
) -> ArcFaceR100:
    """ArcFace iResNet-100 on the CPU, eval mode: `backbone.pth` loaded strictly, or our
    seeded random init."""
    model = ArcFaceR100(preprocess, weights.info, align, landmarks_path)
    expected = {key: value.shape for key, value in model.network.state_dict().items()}
    if weights.path is not None:
        state = load_checked_state_dict(weights.path, expected, WEIGHTS_LAYOUT)
    else:
        state = random_state_dict(weights.seed)
    # Keys checked above; strict=False only tolerates an absent num_batches_tracked.
    model.network.load_state_dict(state, strict=False)
    return model.eval()
