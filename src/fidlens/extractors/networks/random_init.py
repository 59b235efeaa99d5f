"""Our own seeded random weights for torch networks, independent of torch's initialisers.

`weights: random` must mean the same numbers on every machine and torch version, and give
finite, informative features: weights are drawn from numpy's legacy RandomState (its streams
are frozen across numpy versions), then every batch norm's statistics are calibrated on fixed
synthetic image-like inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def init_random_weights(model: nn.Module, seed: int) -> None:
    """Seeded initialisation in module registration order (fixed by the network's code).

    Convolutions: He-uniform (bound sqrt(6 / fan_in)), bias zero; linear layers:
    uniform(+-1/sqrt(fan_in)) for weights and bias; batch norm: identity affine and (0, 1)
    statistics until calibrated.
    """
    rng = np.random.RandomState(seed)

    def uniform_(tensor: torch.Tensor, bound: float) -> None:
        values = rng.uniform(-bound, bound, size=tuple(tensor.shape))
        tensor.copy_(torch.from_numpy(values.astype(np.float32)))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                uniform_(module.weight, math.sqrt(6.0 / fan_in))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                uniform_(module.weight, bound)
                uniform_(module.bias, bound)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()


def synthetic_calibration_images(count: int, seed: int, size: int) -> torch.Tensor:
    """Fixed image-like inputs in [-1, 1], count x 3 x size x size, for batch-norm calibration.

    Each image sums random colour fields over octaves (2 to `size` cells, upsampled half with
    nearest for hard edges, half bilinear for smooth shading) with a 1/f^beta amplitude
    falloff (beta drawn per image), plus white noise of a random strength. The spread of
    spectra matters: calibrated on smooth inputs only, a random network's pooled features on
    photos or noise grow into the hundreds; with this mix they stay around 0.3-10.
    """
    rng = np.random.RandomState(seed)
    images = torch.zeros(count, 3, size, size)
    octaves = [cells for cells in (2, 4, 8, 16, 32, 64, 128) if cells < size] + [size]
    for image in images:
        beta = rng.uniform(0.5, 1.5)
        for cells in octaves:
            field = torch.from_numpy(rng.uniform(-1, 1, (1, 3, cells, cells)).astype(np.float32))
            if rng.uniform() < 0.5:
                field = F.interpolate(field, size=(size, size), mode="nearest")
            else:
                field = F.interpolate(
                    field, size=(size, size), mode="bilinear", align_corners=False
                )
            image += (cells / 2) ** -beta * field[0]
        image *= rng.uniform(0.4, 1.0) / image.abs().max()
        image += rng.uniform(-0.3, 0.3)
        noise = rng.uniform(-1, 1, (3, size, size)).astype(np.float32)
        image += rng.uniform(0, 1) * torch.from_numpy(noise)
    return images.clamp(-1, 1)


def calibrate_batch_norm(model: nn.Module, images: torch.Tensor) -> None:
    """Set every batch norm's running statistics from one train-mode pass over `images`.

    With momentum=None the running statistics are the cumulative average over batches; with
    the single batch used here they are exactly that batch's statistics, so eval mode on the
    calibration images reproduces the train-mode activations.
    """
    batch_norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    norms = [module for module in model.modules() if isinstance(module, batch_norms)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()
