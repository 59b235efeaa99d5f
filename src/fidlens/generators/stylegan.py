"""NVlabs StyleGAN2-ADA / StyleGAN3 network pickles (`*.pkl` holding `G_ema`).

Unpickling a network pickle runs code: NVlabs' pickles re-create their classes from source
stored in the file (torch_utils.persistence), so loading one is running a program. It is done
only when the config says `trust_pickle: true` AND the user's StyleGAN source (NVlabs'
`dnnlib` and `torch_utils` packages, from stylegan2-ada-pytorch or stylegan3) is importable,
i.e. on PYTHONPATH; otherwise a clear error names both.

The calls follow NVlabs' gen_images.py (stylegan3, 2021): z from
`np.random.RandomState(seed).randn(1, G.z_dim)`, a one-hot label of `G.c_dim` classes for a
conditional network, `ws = G_ema.mapping(z, c, truncation_psi=psi)` (N, num_ws, w_dim),
`img = G_ema.synthesis(ws, noise_mode='const')` (N, 3, H, W in [-1, 1]), then
`(img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)`. For StyleGAN3 the
input transform (`G.synthesis.input.transform`) is set to the identity, as gen_images.py
does without --translate / --rotate. This module's code is our own.

w is ws[:, 0] (every one of the num_ws rows is the same without a truncation cutoff or style
mixing); synthesis broadcasts a w back to the num_ws rows. `resolution` other than the
network's img_resolution resizes the images with PIL bicubic (re-quantised to uint8).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fidlens.generators.base import Generator

STYLEGAN_SOURCE_PACKAGES = ("dnnlib", "torch_utils")
NETWORK_ATTRIBUTES = ("mapping", "synthesis", "z_dim", "c_dim", "w_dim", "num_ws",
                      "img_resolution")  # fmt: skip


class UntrustedPickleError(PermissionError):
    """A network pickle the configuration does not allow to run (`trust_pickle: false`)."""


def missing_stylegan_source() -> list[str]:
    """Those of NVlabs' packages (dnnlib, torch_utils) that cannot be imported here."""
    return [name for name in STYLEGAN_SOURCE_PACKAGES if importlib.util.find_spec(name) is None]


def check_may_unpickle(path: str | os.PathLike, trust_pickle: bool, setting: str) -> Path:
    """Refuse before reading a byte: the file must exist, `trust_pickle` must be true and the
    StyleGAN source importable. `setting` names the config key in the messages. Raises
    FileNotFoundError, UntrustedPickleError or ModuleNotFoundError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{setting}.network: network pickle not found: {path}")
    if not trust_pickle:
        raise UntrustedPickleError(
            f"refusing to unpickle {path}: a network pickle runs code when it is loaded. If "
            f"you trust the file, set {setting}.trust_pickle: true, and put NVlabs' StyleGAN "
            "source (the dnnlib and torch_utils packages of stylegan3 or "
            "stylegan2-ada-pytorch) on PYTHONPATH"
        )
    missing = missing_stylegan_source()
    if missing:
        raise ModuleNotFoundError(
            f"cannot load {path}: NVlabs' StyleGAN source is not importable ({', '.join(missing)}"
            " missing). Put the folder holding dnnlib/ and torch_utils/ (a clone of stylegan3 "
            "or stylegan2-ada-pytorch) on PYTHONPATH; "
            f"{setting}.trust_pickle: true is already set"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_network(path: str | os.PathLike, trust_pickle: bool = False,
                 setting: str = "generator") -> torch.nn.Module:
    """G_ema of an NVlabs network pickle (after `check_may_unpickle`), in eval mode without
    gradients. ValueError when the file holds no G_ema with StyleGAN's interface."""
    path = check_may_unpickle(path, trust_pickle, setting)
    with open(path, "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - guarded above: trust_pickle and the source
    network = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(network, torch.nn.Module):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{path} holds no G_ema network (found {found}): is it an NVlabs StyleGAN2-ADA / "
            "StyleGAN3 PyTorch pickle? (TensorFlow pickles: convert them with NVlabs' "
            "legacy.py first)"
        )
    lacking = [name for name in NETWORK_ATTRIBUTES if not hasattr(network, name)]
    if lacking:
        raise ValueError(f"{path}: G_ema lacks StyleGAN's {', '.join(lacking)}")
    return network.eval().requires_grad_(False)


class StyleGAN(Generator):
    """An NVlabs StyleGAN2-ADA / StyleGAN3 generator (module docstring)."""

    adapter = "stylegan"

    def __init__(self, network: str | os.PathLike, trust_pickle: bool = False,
                 resolution: int | None = None, device="auto", setting: str = "generator"):
        super().__init__(device)
        self.path = Path(network)
        self.network = load_network(self.path, trust_pickle, setting).to(self.device)
        self.sha256 = sha256_of(self.path)
        net = self.network
        self.z_dim, self.w_dim, self.c_dim = int(net.z_dim), int(net.w_dim), int(net.c_dim)
        self.num_ws, self.native_resolution = int(net.num_ws), int(net.img_resolution)
        self.img_resolution = int(resolution or self.native_resolution)
        transform = getattr(getattr(net.synthesis, "input", None), "transform", None)
        if isinstance(transform, torch.Tensor):  # StyleGAN3: no translation or rotation
            transform.copy_(torch.eye(3, dtype=transform.dtype))

    def settings(self) -> dict:
        return {
            "network": str(self.path),
            "network_sha256": self.sha256,
            "native_resolution": self.native_resolution,
            "num_ws": self.num_ws,
            "noise_mode": "const",
            "resize": "none" if self.img_resolution == self.native_resolution
            else f"PIL bicubic {self.native_resolution} -> {self.img_resolution}, uint8",
        }

    def _map(self, z, truncation_psi, c):
        ws = self.network.mapping(z.to(torch.float32), c, truncation_psi=truncation_psi)
        if ws.ndim != 3 or not torch.equal(ws, ws[:, :1].expand_as(ws)):
            raise RuntimeError(
                f"{self.path}: mapping returned ws of shape {tuple(ws.shape)} whose rows "
                "differ; one w per image needs identical rows (no truncation cutoff)"
            )
        return ws[:, 0]

    def _synthesize(self, w):
        ws = w.to(torch.float32)[:, None, :].repeat(1, self.num_ws, 1)
        images = self.network.synthesis(ws, noise_mode="const")
        images = (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        if images.shape[-1] == 1:  # a grey-scale network
            images = images.repeat(1, 1, 1, 3)
        if self.img_resolution == self.native_resolution:
            return images
        side = self.img_resolution
        resized = [np.asarray(Image.fromarray(image).resize((side, side),
                                                              Image.Resampling.BICUBIC))
                   for image in images.cpu().numpy()]
        return torch.from_numpy(np.stack(resized))
