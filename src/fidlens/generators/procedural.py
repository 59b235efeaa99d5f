"""The built-in demo generator: face-like images from a 32-d w space with a KNOWN bad region.

No training, no weights: a fixed mapping and a renderer, so the whole discard / replace
experiment of seed 000 §3.2 runs anywhere, and its ground truth is known.

- z -> w: w = Q z with Q a fixed orthogonal 32 x 32 matrix (numpy RandomState(MAPPING_SEED)),
  so w is standard normal like z; truncation w = w_avg + psi (w - w_avg) with w_avg = 0.
- w -> image: every coordinate but the first sets one attribute of a drawn face (background
  colours and wallpaper, face position and shape, skin, hair colour / volume / fringe, eye
  spacing / size / iris colour, brows, nose, mouth width / smile / lip colour, lighting);
  shapes have soft edges, so images change smoothly with w.
- The defective region is the half-space w[0] > DEFECT_THRESHOLD (P = 1 - Phi(1.2) = 11.5 %
  of unit-normal w). There the face breaks: the right eye drops and swells, the mouth tilts,
  one cheek bulges (lost symmetry), the left eye and the nose fade out (missing features),
  coloured blotches and a striped texture appear (StyleGAN-like artefacts). Severity jumps to
  DEFECT_ONSET at the boundary and grows to 1 over DEFECT_RAMP beyond it; w[0] changes
  nothing else, so moving w back across the boundary repairs the face and keeps its identity.

Deterministic: float64 torch arithmetic; the same w gives the same pixels on the CPU (a GPU
may differ by one grey level where a value rounds at .5).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fidlens.generators.base import Generator

# The w space, its defective region and the mapping (numpy only) live in procedural_space, so
# that jobs which only need them start without torch; re-exported here.
from fidlens.generators.procedural_space import (  # noqa: F401
    DEFECT_AXIS,
    DEFECT_ONSET,
    DEFECT_RAMP,
    DEFECT_THRESHOLD,
    MAPPING_SEED,
    W_DIM,
    defect_severity,
    is_defective,
    mapping_matrix,
)

DEFAULT_RESOLUTION = 64
# Wallpaper: fixed (fx, fy, phase) of the background patterns weighted by w[26:32].
_WALLPAPER = ((1.5, 0.5, 0.3), (0.5, 2.0, 1.1), (2.5, -1.0, 2.0), (-1.0, 3.0, 0.7),
              (3.5, 1.5, 2.6), (1.0, -3.5, 1.9))  # fmt: skip


class ProceduralFaces(Generator):
    """Procedural faces (module docstring); `resolution` is the image side in px (32-512)."""

    adapter = "procedural"
    z_dim = W_DIM
    w_dim = W_DIM
    c_dim = 0

    def __init__(self, resolution: int | None = None, device="auto"):
        super().__init__(device)
        resolution = DEFAULT_RESOLUTION if resolution is None else int(resolution)
        if not 32 <= resolution <= 512:
            raise ValueError(f"the procedural generator draws 32 to 512 px, got {resolution}")
        self.img_resolution = resolution
        self._q = torch.from_numpy(mapping_matrix()).to(self.device)

    def settings(self) -> dict:
        return {
            "mapping": f"w = Q z, Q orthogonal from numpy RandomState({MAPPING_SEED}); "
            "w_avg = 0",
            "defective_region": f"w[{DEFECT_AXIS}] > {DEFECT_THRESHOLD}",
            "defect_severity": f"{DEFECT_ONSET} at the boundary rising to 1 over "
            f"{DEFECT_RAMP} in w[{DEFECT_AXIS}]",
        }

    def known_defective(self, w) -> np.ndarray:
        return is_defective(w)

    def _map(self, z, truncation_psi, c):
        w = z.to(torch.float64) @ self._q.T
        return truncation_psi * w  # w_avg = 0

    def _synthesize(self, w):
        image = render(w.to(torch.float64), self.img_resolution)
        return (image * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------
# The renderer: (B, 32) float64 -> (B, 3, H, W) in [0, 1]
# ---------------------------------------------------------------------------------------------


def _col(values) -> torch.Tensor:
    return values[:, None, None, None]


def _rgb(red, green, blue) -> torch.Tensor:
    """(B, 3, 1, 1) from three (B,) tensors (or numbers), clipped to [0, 1]."""
    like = next(c for c in (red, green, blue) if isinstance(c, torch.Tensor))
    channels = [c if isinstance(c, torch.Tensor) else torch.full_like(like, c)
                for c in (red, green, blue)]
    return torch.stack(channels, dim=1)[:, :, None, None].clamp(0, 1)


def _ellipse(x, y, cx, cy, rx, ry, px):
    """Soft (B, 1, H, W) alpha of an ellipse: 1 inside, 0 outside, ~1.5 px edge."""
    radius = torch.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + 1e-12)
    return torch.sigmoid((1 - radius) * torch.minimum(rx, ry) / px)


def _over(image, colour, alpha):
    return image * (1 - alpha) + colour * alpha


def render(w: torch.Tensor, side: int) -> torch.Tensor:
    """Draw one face per row of w (B, 32) at side x side px; values in [0, 1]."""
    b, dev = len(w), w.device
    t, s = torch.tanh(w), torch.sigmoid(w)
    coords = (torch.arange(side, device=dev, dtype=torch.float64) + 0.5) / side * 2 - 1
    y, x = coords[None, None, :, None], coords[None, None, None, :]
    px = 1.5 / side  # edge softness: 1.5 px in units of half the image
    sev = torch.from_numpy(defect_severity(w.cpu().numpy())).to(dev)
    sv = _col(sev)

    # Background: a vertical gradient and a faint wallpaper.
    top = _rgb(0.45 + 0.3 * t[:, 1], 0.45 + 0.3 * t[:, 2], 0.5 + 0.3 * t[:, 3])
    image = top * (1 - 0.35 * (y + 1) / 2)
    for k, (fx, fy, phase) in enumerate(_WALLPAPER):
        image = image + 0.05 * _col(t[:, 26 + k]) * torch.cos(math.pi * (fx * x + fy * y)
                                                             + phase)
    image = image.expand(b, 3, side, side).clone()

    cx, cy = _col(0.08 * t[:, 4]), _col(0.04 + 0.05 * t[:, 5])
    rx, ry = _col(0.5 + 0.07 * t[:, 6]), _col(0.64 + 0.06 * t[:, 7])
    rx_side = torch.where(x > cx, rx * (1 + 0.3 * sv), rx)  # the defect's bulging cheek
    brightness = 1 + 0.2 * t[:, 8]
    skin = _rgb(0.86 * brightness + 0.06 * t[:, 9], 0.68 * brightness, 0.56 * brightness
                - 0.06 * t[:, 9])
    dark, blond = torch.tensor([0.12, 0.08, 0.05], device=dev), torch.tensor(
        [0.78, 0.62, 0.36], device=dev)
    mix = s[:, 10][:, None]
    hair = (dark * (1 - mix) + blond * mix)[:, :, None, None]

    # Hair behind the face, cut at a length; the neck; the face with its lighting.
    volume = _col(0.1 + 0.08 * s[:, 11])
    length = torch.sigmoid((cy + 0.05 + 0.4 * _col(s[:, 12]) - y) / 0.04)
    image = _over(image, hair, _ellipse(x, y, cx, cy - 0.06, rx + volume, ry + volume, px)
                  * length)
    neck = torch.sigmoid((0.17 - (x - cx).abs()) / px) * torch.sigmoid((y - cy - 0.3) / px)
    image = _over(image, skin * 0.82, neck)
    angle = math.pi * _col(t[:, 24])
    light = 1 + 0.18 * _col(s[:, 25]) * (x * torch.cos(angle) + y * torch.sin(angle))
    face = _ellipse(x, y, cx, cy, rx_side, ry, px)
    image = _over(image, skin * light, face)
    fringe_edge = cy - 0.55 * ry + 0.04 * torch.sin(12 * x + 3 * _col(t[:, 11])) \
        + 0.08 * _col(t[:, 12])
    image = _over(image, hair, face * torch.sigmoid((fringe_edge - y) / px))

    # Eyes (sclera, iris, pupil), brows above them; the defect drops and swells the right
    # one and fades the left one.
    spacing, eye_y = 0.2 + 0.04 * _col(t[:, 13]), cy - 0.1 + 0.04 * _col(t[:, 14])
    size = 0.065 + 0.015 * _col(t[:, 15])
    iris = _rgb(0.35 - 0.2 * t[:, 16], 0.25 + 0.1 * t[:, 16], 0.15 + 0.35 * s[:, 16])
    white = _rgb(torch.full_like(sev, 0.95), 0.95, 0.95)
    for side_sign, drop, grow, fade in ((-1, 0, 1, 1 - sv), (1, 0.15 * sv, 1 + 0.9 * sv, 1)):
        ex, ey, size_e = cx + side_sign * spacing, eye_y + drop, size * grow
        sclera = _ellipse(x, y, ex, ey, 1.5 * size_e, size_e, px) * fade
        image = _over(image, white, sclera)
        image = _over(image, iris, _ellipse(x, y, ex, ey, 0.8 * size_e, 0.8 * size_e, px)
                      * fade)
        image = _over(image, white * 0.04 / 0.95,
                      _ellipse(x, y, ex, ey, 0.38 * size_e, 0.38 * size_e, px) * fade)
        brow_y = ey - 1.9 * size_e + 0.03 * _col(t[:, 17]) * side_sign * (x - ex) / size_e
        thickness = (0.018 * (1 + 0.6 * _col(s[:, 17]))).expand_as(size_e)
        brow = _ellipse(x, y, ex, brow_y, 1.4 * size_e, thickness, px)
        image = _over(image, hair * 0.8, brow)

    # Nose: a shaded ridge and two nostrils; the defect fades it.
    tip = cy + 0.13 + 0.05 * _col(t[:, 18])
    width = 0.035 + 0.015 * _col(t[:, 19])
    ridge = torch.exp(-((x - cx - 0.3 * width) ** 2) / (2 * (0.35 * width) ** 2)) \
        * torch.sigmoid((y - eye_y) / 0.03) * torch.sigmoid((tip - y) / px)
    nostrils = (_ellipse(x, y, cx - width, tip, 0.45 * width, 0.3 * width, px)
                + _ellipse(x, y, cx + width, tip, 0.45 * width, 0.3 * width, px))
    image = _over(image, skin * 0.6, (0.45 * ridge + 0.8 * nostrils).clamp(0, 1) * (1 - sv))

    # Mouth: a curved band (smile), tilted by the defect.
    mouth_y, mouth_w = cy + 0.3 + 0.04 * _col(t[:, 20]), 0.17 + 0.05 * _col(t[:, 21])
    u = (x - cx) / mouth_w
    curve = mouth_y - 0.06 * _col(t[:, 22]) * (1 - u**2) + 0.3 * sv * (x - cx)
    lips = _rgb(0.62 + 0.2 * t[:, 23], 0.22 + 0.08 * t[:, 23], 0.25)
    band = torch.sigmoid((0.022 - (y - curve).abs()) / px) * torch.sigmoid((1 - u.abs())
                                                                            * mouth_w / px)
    image = _over(image, lips, band)

    # Artefacts of the defective region: blotches and a striped texture.
    for k in range(3):
        bx = 0.55 * torch.sin(3.1 * w[:, 1 + k] + 1.7 * k)
        by = 0.5 * torch.sin(2.3 * w[:, 4 + k] + 0.9 * k)
        radius = 0.1 + 0.08 * torch.sin(1.9 * w[:, 7 + k]).abs()
        colour = _rgb(0.85 - 0.15 * k, 0.25 + 0.25 * torch.sin(w[:, 10 + k]).abs(),
                      0.6 + 0.15 * k)
        blob = torch.exp(-((x - _col(bx)) ** 2 + (y - _col(by)) ** 2) / (2 * _col(radius) ** 2))
        image = _over(image, colour, 0.85 * sv * blob)
    stripes = torch.sin(41 * x + 29 * y + 5 * _col(t[:, 2])) * torch.sin(23 * x - 37 * y)
    image = image + 0.12 * sv * stripes
    return image.clamp(0, 1)
