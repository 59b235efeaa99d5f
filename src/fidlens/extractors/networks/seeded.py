"""Seeded random tensors by state-dict key, for networks whose layout is a list of keys.

`random_init.init_random_weights` walks a module's layers in registration order; the
transformers here (CLIP, DINOv2) are initialised from their checkpoint layout instead, one
tensor per key, each drawn from its own numpy legacy `RandomState` seeded by (seed, crc32 of
the key). So a tensor's values depend only on the seed, its key and its shape: never on torch's
initialisers, on the order a library registers its modules, or on which other keys are drawn
(the vision tower of a random CLIP equals the vision part of a random full CLIP file).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np
import torch


def key_rng(seed: int, key: str) -> np.random.RandomState:
    """The random stream of one key (numpy's legacy streams are frozen across versions)."""
    return np.random.RandomState([seed & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])


def uniform_tensor(seed: int, key: str, shape, std: float) -> torch.Tensor:
    """Uniform values of the given standard deviation (bound std * sqrt(3)), float32."""
    bound = std * math.sqrt(3.0)
    values = key_rng(seed, key).uniform(-bound, bound, size=tuple(shape))
    return torch.from_numpy(values.astype(np.float32))


def seeded_state_dict(
    shapes: Mapping[str, torch.Size], seed: int, std_of
) -> dict[str, torch.Tensor]:
    """One tensor per key: `std_of(key, shape)` returns a float (uniform values of that
    standard deviation) or a tensor (a constant, e.g. layer-norm weights of one)."""
    state = {}
    for key, shape in shapes.items():
        rule = std_of(key, tuple(shape))
        if isinstance(rule, torch.Tensor):
            state[key] = rule.to(torch.float32).expand(tuple(shape)).clone()
        else:
            state[key] = uniform_tensor(seed, key, shape, float(rule))
    return state


def fan_in(shape: tuple[int, ...]) -> int:
    """Inputs per output of a linear or convolution weight (out, in, *kernel)."""
    return max(1, int(np.prod(shape[1:]))) if len(shape) > 1 else max(1, shape[0])
