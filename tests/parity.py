"""Shared by the extractor parity tests: test images, the parity check, official-layout files.

Parity means the same features within PARITY_TOLERANCE x max |reference feature| (see
../shared/notes/clarifications.md). Each measured ratio is printed (`pytest -s` shows them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as skimage_data

PARITY_TOLERANCE = 1e-4
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def photos(count: int, size: tuple[int, int] | None = None, seed: int = 0) -> list[np.ndarray]:
    """H x W x 3 uint8 RGB test images: crops of the astronaut photo (skimage's wheel) and
    image-like noise; `size` (width, height) resizes them all, else their sizes vary."""
    astronaut = skimage_data.astronaut()
    rng = np.random.RandomState(seed)
    sizes = [(300, 200), (150, 220), (97, 140), (256, 256)]
    images = []
    for index in range(count):
        if index % 2 == 0:
            top, left = rng.randint(0, 200, 2)
            image = astronaut[top : top + 300, left : left + 300]
        else:
            ys, xs = np.mgrid[0:240, 0:240] / 240
            base = np.stack([xs, ys, 1 - xs * ys], axis=2) * 200
            image = (base + rng.normal(0, 25, base.shape)).clip(0, 255).astype(np.uint8)
        target = size or sizes[index % len(sizes)]
        images.append(np.asarray(Image.fromarray(image).resize(target, Image.BICUBIC)))
    return images


def relative_difference(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert tuple(ours.shape) == tuple(reference.shape), (ours.shape, reference.shape)
    return ((ours.double() - reference.double()).abs().max() / reference.abs().max()).item()


def assert_parity(ours: torch.Tensor, reference: torch.Tensor, what: str) -> float:
    """Asserts parity and returns max |ours - reference| / max |reference|."""
    relative = relative_difference(ours, reference)
    print(f"\nparity {what}: max |diff| / max |reference| = {relative:.3g}")
    assert relative <= PARITY_TOLERANCE, (what, relative)
    return relative


def our_features(model, images: list[np.ndarray], key: str = "features") -> torch.Tensor:
    """One batch through the extractor as the extraction loop runs it (prepare, collate)."""
    device = torch.device("cpu")
    items = [model.preprocessor()(image) for image in images]
    items = [item.numpy() if isinstance(item, torch.Tensor) else item for item in items]
    with torch.inference_mode():
        return model.prepare(device)(model.collate(items, device))[key]


def reference_path(*parts: str) -> str:
    """A folder of ../shared/reference, on sys.path for `import`ing the reference code."""
    folder = REFERENCE.joinpath(*parts)
    assert folder.is_dir(), f"reference implementation missing: {folder}"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return str(folder)


def rng_untouched(build) -> bool:
    """Whether calling `build()` leaves torch's global random state as it was."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build()
    return torch.equal(torch.rand(3), expected)
