"""The generator interface: seeds -> z -> w -> uint8 images, batched, on CUDA when present.

Every adapter (NVlabs StyleGAN pickles, the built-in procedural faces) gives the same three
steps, the ones seed 000's discard / replace experiment needs:

- `z_from_seeds(seeds)`: one latent per seed, drawn as NVlabs' gen_images.py does:
  `np.random.RandomState(seed).randn(1, z_dim)` (float64), so a seed names the same z here
  and in NVlabs' scripts;
- `mapping(z, truncation_psi)`: z (N, z_dim) -> w (N, w_dim), float64 numpy, with the
  truncation trick w = w_avg + psi (w - w_avg) (Karras et al. 2019, StyleGAN);
- `synthesis(w)`: w (N, w_dim) -> images (N, H, W, 3) uint8 RGB.

w is one w_dim vector per image: StyleGAN broadcasts it to its num_ws layers (no style
mixing, no truncation cutoff), which is the w space seed 000 §3.2 moves in.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

# Moved to latents (torch-free); importable from here as before.
from fidlens.generators.latents import as_matrix

DEFAULT_BATCH_SIZE = 32


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """(N, z_dim) float64: row i is `np.random.RandomState(seeds[i]).randn(1, z_dim)`, the
    latent NVlabs' gen_images.py draws for that seed. Raises ValueError for a seed outside
    [0, 2**32) (RandomState's range)."""
    seeds = [int(seed) for seed in seeds]
    bad = [seed for seed in seeds if not 0 <= seed < 2**32]
    if bad:
        raise ValueError(f"seeds must be in [0, 2**32), got {bad[:5]}")
    if not seeds:
        return np.zeros((0, int(z_dim)), dtype=np.float64)
    return np.concatenate([np.random.RandomState(seed).randn(1, int(z_dim)) for seed in seeds])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto`: CUDA when available (a free GPU, as the extraction takes one), else the CPU;
    `cpu`, `cuda`, `cuda:N` as `fidlens.extract.resolve_device`. RuntimeError when CUDA is
    asked for and absent."""
    if isinstance(device, torch.device):
        return device
    from fidlens.extract import resolve_device as claim

    return claim(str(device))


class Generator(abc.ABC):
    """One generator network behind the z -> w -> image interface.

    Subclasses set `adapter`, `z_dim`, `w_dim`, `c_dim` and `img_resolution` and implement
    `_map` and `_synthesize` on one batch of torch tensors on `self.device`; the batching,
    conversions and progress bars are here.
    """

    adapter: str = ""
    z_dim: int
    w_dim: int
    c_dim: int = 0
    img_resolution: int

    def __init__(self, device: str | torch.device = "auto"):
        self.device = resolve_device(device)

    # -- what a subclass provides -----------------------------------------------------------

    @abc.abstractmethod
    def _map(self, z: torch.Tensor, truncation_psi: float, c: torch.Tensor | None):
        """(B, z_dim) float tensor -> (B, w_dim) tensor."""

    @abc.abstractmethod
    def _synthesize(self, w: torch.Tensor) -> torch.Tensor:
        """(B, w_dim) tensor -> (B, H, W, 3) uint8 tensor."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """What identifies this generator's images (JSON-ready), for provenance and checks."""

    # -- the interface ----------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        """Side of the images `synthesis` returns, px."""
        return int(self.img_resolution)

    def z_from_seeds(self, seeds: Sequence[int]) -> np.ndarray:
        """(N, z_dim) float64, as NVlabs' gen_images.py (see `z_from_seeds`)."""
        return z_from_seeds(seeds, self.z_dim)

    def label(self, n: int, class_index: int | None = None) -> torch.Tensor | None:
        """The conditioning c of n images: None for an unconditional network (c_dim 0), else
        one-hot rows of `class_index` (gen_images.py's label). ValueError when a conditional
        network gets no class, or an unconditional one gets one."""
        if self.c_dim == 0:
            if class_index is not None:
                raise ValueError(f"a class ({class_index}) was given, but the network is "
                                 "unconditional (c_dim 0)")
            return None
        if class_index is None or not 0 <= class_index < self.c_dim:
            raise ValueError(f"the network is conditional (c_dim {self.c_dim}): give a class "
                             f"in [0, {self.c_dim}), got {class_index}")
        label = torch.zeros((n, self.c_dim), device=self.device)
        label[:, class_index] = 1
        return label

    @torch.no_grad()
    def mapping(
        self,
        z,
        truncation_psi: float = 1.0,
        class_index: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """z (N, z_dim) -> w (N, w_dim) float64, with truncation psi (1 = none)."""
        z = as_matrix(z, self.z_dim, "z")
        out = np.empty((len(z), self.w_dim), dtype=np.float64)
        for start in range(0, len(z), batch_size):
            batch = torch.from_numpy(z[start : start + batch_size]).to(self.device)
            w = self._map(batch, float(truncation_psi), self.label(len(batch), class_index))
            out[start : start + len(batch)] = w.detach().to("cpu", torch.float64).numpy()
        return out

    @torch.no_grad()
    def synthesis(
        self, w, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False
    ) -> np.ndarray:
        """w (N, w_dim) -> (N, H, W, 3) uint8 RGB images, H = W = `resolution`."""
        w = as_matrix(w, self.w_dim, "w")
        side = self.resolution
        out = np.empty((len(w), side, side, 3), dtype=np.uint8)
        starts = range(0, len(w), batch_size)
        for start in tqdm(starts, desc=f"{self.adapter} images", unit="batch",
                          disable=not progress or len(starts) < 2):
            batch = torch.from_numpy(w[start : start + batch_size]).to(self.device)
            images = self._synthesize(batch)
            if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (side, side, 3):
                raise RuntimeError(
                    f"the {self.adapter} generator returned {tuple(images.shape)} "
                    f"{images.dtype}, expected (B, {side}, {side}, 3) uint8"
                )
            out[start : start + len(batch)] = images.cpu().numpy()
        return out

    def generate(
        self,
        seeds: Sequence[int],
        truncation_psi: float = 1.0,
        class_index: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, w, images) of `seeds`: the three steps in a row."""
        z = self.z_from_seeds(seeds)
        w = self.mapping(z, truncation_psi, class_index, batch_size)
        return z, w, self.synthesis(w, batch_size, progress)

    def known_defective(self, w) -> np.ndarray | None:
        """(N,) bool: whether each w lies in a defective region the generator knows of (the
        procedural demo's ground truth); None for a generator without one (StyleGAN)."""
        return None

    def provenance(self) -> dict:
        """The adapter, its settings and the device (JSON-ready)."""
        return {
            "adapter": self.adapter,
            "z_dim": int(self.z_dim),
            "w_dim": int(self.w_dim),
            "c_dim": int(self.c_dim),
            "resolution": self.resolution,
            "device": str(self.device),
            **self.settings(),
        }
