"""The FID InceptionV3: the TensorFlow 2015-12-05 graph that every FID number is computed with.

Architecture: torchvision's Inception3 layout with 1008 classes and no aux head, where the
mixed blocks follow the TF graph rather than torchvision: the 3x3 average pools in Mixed_5b-d,
Mixed_6b-e and Mixed_7b exclude the zero padding from the average, and Mixed_7c pools with a
max. It loads the state dict layout of pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
(torch-fidelity's `weights-inception-2015-12-05-6726825d.pth` has the same keys).

Outputs: "features" = pool3 (2048-d global average of Mixed_7c), "logits" = fc(pool3) with bias
(torch-fidelity's "logits"), "logits_unbiased" = pool3 fc.weight^T without the bias (computed as
torch-fidelity computes its "logits_unbiased", the Inception Score's input there and in
torchmetrics; the cache stores it under outputs/).

Preprocessing runs per image on the CPU (DataLoader workers) and reproduces one reference tool:
- "clean" (clean-fid): each channel as a float PIL image, bicubic resize to 299, clip to
  [0, 255], then (x - 128) / 128.
- "pytorch-fid": x / 255, torch bilinear resize (align_corners=False), then 2x - 1.
- "torch-fidelity": TF1 bilinear resize of the 0..255 values, then (x - 128) / 128.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from fidlens.extractors.base import RANDOM_INIT, Extractor, WeightsInfo
from fidlens.extractors.networks.random_init import (
    calibrate_batch_norm,
    init_random_weights,
)
from fidlens.extractors.networks.random_init import (
    synthetic_calibration_images as _synthetic_images,
)
from fidlens.weights import ResolvedWeights, load_checked_state_dict

INPUT_SIZE = 299
WEIGHTS_LAYOUT = "pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
CALIBRATION_IMAGES = 16


# ---------------------------------------------------------------- TF-graph pooling


def avg_pool_3x3_excluding_padding(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool divides by the number of real (unpadded) pixels under the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def max_pool_3x3_same(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def pool_branch(block: nn.Module, x: torch.Tensor, pool) -> torch.Tensor:
    """The pooling branch of a mixed block: `pool`, then the block's 1x1 `branch_pool`; a
    fused copy's `PooledConvReLU` takes the block input and pools itself (after its conv)."""
    if isinstance(block.branch_pool, PooledConvReLU):
        return block.branch_pool(x)
    return block.branch_pool(pool(x))


class TFInceptionA(InceptionA):
    """torchvision's InceptionA (same submodules and keys) with the TF pooling branch."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pooled = pool_branch(self, x, avg_pool_3x3_excluding_padding)
        return [self.branch1x1(x), branch5x5, branch3x3dbl, pooled]


class TFInceptionC(InceptionC):
    """torchvision's InceptionC with the TF pooling branch."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch7x7 = x
        for layer in (self.branch7x7_1, self.branch7x7_2, self.branch7x7_3):
            branch7x7 = layer(branch7x7)
        branch7x7dbl = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = layer(branch7x7dbl)
        pooled = pool_branch(self, x, avg_pool_3x3_excluding_padding)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, pooled]


class TFInceptionE(InceptionE):
    """torchvision's InceptionE with a configurable pooling branch (TF: avg in 7b, max in 7c)."""

    def __init__(self, in_channels: int, pool: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(stem3x3), self.branch3x3_2b(stem3x3)], 1)
        stem3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(stem3x3dbl), self.branch3x3dbl_3b(stem3x3dbl)], 1
        )
        pooled = pool_branch(self, x, self.pool)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, pooled]


# ---------------------------------------------------------------- the extractor


class FIDInceptionV3(Extractor):
    """FID InceptionV3 on 3x299x299 preprocessed input -> pool3 features and 1008 logits."""

    name = "inception"
    channels_last = True  # faster convolution kernels on CPU and GPU alike
    feature_layer = "pool3"
    feature_dim = 2048
    logits_dim = 1008
    preprocess_modes = ("clean", "pytorch-fid", "torch-fidelity")

    def __init__(self, preprocess_mode: str, weights: WeightsInfo):
        super().__init__(preprocess_mode, weights)
        with torch.device("meta"):  # skip torch's default init: no RNG use, no wasted time
            self._build_layers()
        self.to_empty(device="cpu")
        # Zeros and identity batch norms until weights are loaded or `init_random_weights` runs.
        with torch.no_grad():
            for tensor in self.state_dict().values():
                tensor.zero_()
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def _build_layers(self) -> None:
        # Attribute names are the checkpoint's keys.
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = TFInceptionA(192, pool_features=32)
        self.Mixed_5c = TFInceptionA(256, pool_features=64)
        self.Mixed_5d = TFInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = TFInceptionC(768, channels_7x7=128)
        self.Mixed_6c = TFInceptionC(768, channels_7x7=160)
        self.Mixed_6d = TFInceptionC(768, channels_7x7=160)
        self.Mixed_6e = TFInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = TFInceptionE(1280, pool=avg_pool_3x3_excluding_padding)
        self.Mixed_7c = TFInceptionE(2048, pool=max_pool_3x3_same)
        self.fc = nn.Linear(2048, self.logits_dim)

    def preprocessor(self) -> InceptionPreprocessor:
        return InceptionPreprocessor(self.preprocess_mode)

    def prepare(self, device: torch.device) -> FIDInceptionV3:
        """channels_last on `device`, then a copy with batch norm folded and conv + ReLU fused
        (`fuse_for_inference`; oneDNN's fused kernels on the CPU); `self` keeps its layers."""
        placed = super().prepare(device)
        return fuse_for_inference(placed, onednn=onednn_fusion_available(device))

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a N x 3 x H x W batch, got shape {tuple(batch.shape)}")
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(batch)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return {
            "features": pool3,
            "logits": self.fc(pool3),
            "logits_unbiased": pool3.mm(self.fc.weight.T),
        }


# ---------------------------------------------------------------- inference: folded and fused


@torch.no_grad()  # plain tensors, no autograd history back to the unfused parameters
def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight O x I x kh x kw, bias O) of one convolution equal to `conv` (no bias) followed
    by `bn` in eval mode: w * g / sqrt(var + eps) and beta - mean * g / sqrt(var + eps).

    Computed in float64 and cast once to the convolution's dtype, so the fold itself adds one
    rounding per weight (the features move by ~1e-6 relative, float32 summation order included).
    """
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv.weight.double() * scale[:, None, None, None]
    bias = bn.bias.double() - bn.running_mean.double() * scale
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


def onednn_fusion_available(device: torch.device) -> bool:
    """oneDNN's fused convolution + bias + ReLU (the op torch's inductor emits on the CPU)."""
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
    )


class ConvReLU(nn.Module):
    """BasicConv2d for inference: batch norm folded into the convolution, ReLU fused.

    With `onednn` (CPU): one oneDNN primitive per call (convolution, bias and ReLU in one pass
    over the output, no separate batch-norm and ReLU passes), its weights reordered once into
    oneDNN's blocked layout. Float32 throughout, like the unfused network. Without it, or when
    autograd must see the convolution (the op has no backward): F.conv2d and an in-place ReLU.
    Input and output: N x I x H x W -> N x O x H' x W' (channels_last in, channels_last out).
    """

    def __init__(self, basic: BasicConv2d, onednn: bool):
        super().__init__()
        conv = basic.conv
        weight, bias = fold_batch_norm(conv, basic.bn)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias)
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.onednn = onednn
        self._packed: tuple[tuple[int, ...], torch.Tensor] | None = None

    def _packed_weight(self, shape: tuple[int, ...]) -> torch.Tensor:
        # oneDNN picks the blocked weight layout for an input shape; reorder once per shape.
        if self._packed is None or self._packed[0] != shape:
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(shape)
            )
            self._packed = (shape, packed)
        return self._packed[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        needs_graph = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if self.onednn and x.device.type == "cpu" and not needs_graph:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self._packed_weight(tuple(x.shape)), self.bias, self.padding, self.stride,
                self.dilation, self.groups, "relu", [], "",
            )
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                     self.groups)
        return F.relu(y, inplace=not needs_graph)


class PooledConvReLU(ConvReLU):
    """The average-pooling branch for inference: 1x1 conv (no bias), then the 3x3 average
    pool excluding padding, then bias and ReLU. Pool and 1x1 conv are both linear and the
    pool's weights sum to 1, so this equals pool -> conv + bias -> ReLU up to rounding, and
    pools the branch's few output channels (32-192) instead of the block's input (192-1280).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        needs_graph = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if self.onednn and x.device.type == "cpu" and not needs_graph:
            y = torch.ops.mkldnn._convolution_pointwise(
                x, self._packed_weight(tuple(x.shape)), None, self.padding, self.stride,
                self.dilation, self.groups, "none", [], "",
            )
        else:
            y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation,
                         self.groups)
        y = avg_pool_3x3_excluding_padding(y)
        if needs_graph:
            return F.relu(y + self.bias[:, None, None])
        return F.relu_(y.add_(self.bias[:, None, None]))


def fuse_for_inference(model: FIDInceptionV3, onednn: bool) -> FIDInceptionV3:
    """A copy of `model` (eval mode, already on its device and memory layout) with every
    BasicConv2d replaced under the same name (so hooks on Mixed_7c etc. find the same
    modules): by a `PooledConvReLU` in the average-pooling branches, else by a `ConvReLU`.
    `model` itself is left as it is."""
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        averaging = isinstance(module, (TFInceptionA, TFInceptionC)) or (
            isinstance(module, TFInceptionE) and module.pool is avg_pool_3x3_excluding_padding
        )
        for name, child in list(module.named_children()):
            if isinstance(child, BasicConv2d):
                pooled = averaging and name == "branch_pool"
                setattr(module, name, (PooledConvReLU if pooled else ConvReLU)(child, onednn))
    return fused


# ---------------------------------------------------------------- preprocessing


def _check_rgb_uint8(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}"
        )


def _to_chw_float(image: np.ndarray) -> torch.Tensor:
    # Contiguous CHW before the cast, as torchvision's ToTensor does: a channels-last layout
    # could pick a different (differently rounded) resize kernel.
    if not image.flags.writeable:  # e.g. np.asarray(PIL image); torch warns on read-only memory
        image = image.copy()
    return torch.from_numpy(image).permute(2, 0, 1).contiguous().float()


def resize_pil_bicubic_per_channel(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """clean-fid's resize: each channel as a 32-bit float PIL image, bicubic, clipped to 0..255.

    Returns H x W x 3 float32; no quantisation back to uint8.
    """
    channels = []
    for channel in range(image.shape[2]):
        # A 2-D float32 array becomes a mode "F" image, so no rounding happens in PIL.
        plane = Image.fromarray(image[:, :, channel].astype(np.float32))
        resized = plane.resize((size, size), resample=Image.Resampling.BICUBIC)
        channels.append(np.asarray(resized).clip(0, 255))
    return np.stack(channels, axis=2).astype(np.float32)


def resize_bilinear_tf1(image: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TensorFlow 1.x `resize_bilinear(align_corners=False)` of a C x H x W float tensor.

    TF1 maps output pixel i to source coordinate i * (in / out) (no half-pixel offset), then
    interpolates between floor(src) and the next pixel (clamped to the border). Arithmetic is
    float32 like TF's kernel; done separably (columns, then rows), which gives the same values
    as interpolating the four corners per pixel.
    """

    def taps(in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(in_size / size, dtype=torch.float32)
        source = torch.arange(size, dtype=torch.float32) * scale
        low = source.long()  # source >= 0, so truncation is floor
        high = (low + 1).clamp_max(in_size - 1)
        return low, high, source - low.float()

    _, height, width = image.shape
    x_low, x_high, x_frac = taps(width)
    y_low, y_high, y_frac = taps(height)
    left, right = image[:, :, x_low], image[:, :, x_high]
    rows = left + (right - left) * x_frac  # C x H x size
    top, bottom = rows[:, y_low, :], rows[:, y_high, :]
    return top + (bottom - top) * y_frac[:, None]


def preprocess_clean(image: np.ndarray) -> torch.Tensor:
    resized = torch.from_numpy(resize_pil_bicubic_per_channel(image)).permute(2, 0, 1)
    return ((resized - 128) / 128).contiguous()


def preprocess_pytorch_fid(image: np.ndarray) -> torch.Tensor:
    unit = _to_chw_float(image).div(255)[None]
    resized = F.interpolate(
        unit, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
    )
    return (2 * resized - 1)[0].contiguous()


def preprocess_torch_fidelity(image: np.ndarray) -> torch.Tensor:
    resized = resize_bilinear_tf1(_to_chw_float(image))
    return ((resized - 128) / 128).contiguous()


_PREPROCESSORS: dict[str, Callable[[np.ndarray], torch.Tensor]] = {
    "clean": preprocess_clean,
    "pytorch-fid": preprocess_pytorch_fid,
    "torch-fidelity": preprocess_torch_fidelity,
}


@dataclass(frozen=True)
class InceptionPreprocessor:
    """Picklable per-image transform: H x W x 3 uint8 RGB (any size) -> 3 x 299 x 299 float32."""

    mode: str

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        _check_rgb_uint8(image)
        return _PREPROCESSORS[self.mode](image)


# ---------------------------------------------------------------- seeded random weights


def synthetic_calibration_images(count: int, seed: int) -> torch.Tensor:
    """Fixed image-like calibration inputs at 299 x 299 (see `random_init`)."""
    return _synthetic_images(count, seed, INPUT_SIZE)


def build_random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in the official layout, with calibrated batch-norm statistics.

    Costs one CPU forward pass over CALIBRATION_IMAGES images at 299x299 (a few seconds).
    """
    model = FIDInceptionV3("clean", WeightsInfo(None, RANDOM_INIT, "calibration"))
    init_random_weights(model, seed)
    calibrate_batch_norm(model, synthetic_calibration_images(CALIBRATION_IMAGES, seed + 1))
    return {key: value.clone() for key, value in model.state_dict().items()}


@lru_cache(maxsize=4)
def _random_state_dict_cached(seed: int) -> dict[str, torch.Tensor]:
    return build_random_state_dict(seed)


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """`build_random_state_dict`, computed once per process and seed (returns a copy)."""
    return {key: value.clone() for key, value in _random_state_dict_cached(seed).items()}


# ---------------------------------------------------------------- loading


def load_inception(weights: ResolvedWeights, preprocess: str) -> FIDInceptionV3:
    """The FID Inception on the CPU, in eval mode, with its weights strictly loaded (a file
    in pytorch-fid's layout) or our seeded random init."""
    model = FIDInceptionV3(preprocess, weights.info)
    if weights.path is not None:
        expected = {key: value.shape for key, value in model.state_dict().items()}
        state = load_checked_state_dict(weights.path, expected, WEIGHTS_LAYOUT)
    else:
        state = random_state_dict(weights.seed)
    # Keys were checked above; strict=False only tolerates an absent num_batches_tracked.
    model.load_state_dict(state, strict=False)
    return model.eval()


__all__ = [
    "ConvReLU",
    "FIDInceptionV3",
    "InceptionPreprocessor",
    "build_random_state_dict",
    "calibrate_batch_norm",
    "fold_batch_norm",
    "fuse_for_inference",
    "init_random_weights",
    "load_inception",
    "onednn_fusion_available",
    "PooledConvReLU",
    "random_state_dict",
    "synthetic_calibration_images",
]
