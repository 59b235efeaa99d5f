"""The embedded demo's images: real faces, and copies with generator-like defects.

The 100 face images of `skimage.data.lfw_subset()` (25 x 25 gray, float64 in [0, 1]) are
upscaled (PIL bicubic) to size x size RGB uint8 BEFORE any defect is added, then split at random
into two "real" halves, real_a and real_b. Each "generated" set is real_a with defects that
generators are known for, at one strength, in two tiers:

- shapes and colours, growing from strength 0: blur (lost detail) and blotches
  (StyleGAN-like droplets: soft coloured blobs);
- pixel-level artefacts, appearing above strength TEXTURE_ONSET (0.5) and reaching their
  strength-1 amplitude at 1: texture noise (high-frequency colour noise) and a checkerboard
  (transposed-convolution artefacts).

Why two tiers: on these smooth upscaled faces an ImageNet network sees pixel-level artefacts
far below visibility (a checkerboard of +-3 grey levels alone takes MobileNetV2's precision
from 0.74 to 0), while a face-identity network barely moves until the noise is heavy. With
every defect growing together, "mild" was already the worst possible score for one network
and still real-like for the other; with the tiers, mild (0.35: blur and blotches) and strong
(1: everything) are ordered alike by both (README, "Demo results").

Every random draw of an image depends on (seed, image index) only, not on the strength, so two
generated sets show the SAME defects at different strengths: a controlled experiment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

REAL_SETS = ("real_a", "real_b")
N_FACES = 100  # lfw_subset(): the first 100 images are faces, the last 100 are not

# Defects at strength 1 (pixel values in [0, 1]; lengths relative to a 128-px image).
BLUR_SIGMA_AT_128 = 1.5
BLOTCHES_PER_IMAGE = 3
BLOTCH_RADIUS = (0.06, 0.14)  # fraction of the image side
BLOTCH_OPACITY = 0.6
TEXTURE_ONSET = 0.5  # strength above which texture noise and the checkerboard appear
NOISE_STD = 0.24
NOISE_GRAIN_SIGMA = 0.7  # px: slightly smoothed, like a generator's texture, not sensor noise
CHECKERBOARD_AMPLITUDE = 0.03


def load_lfw_faces() -> np.ndarray:
    """The 100 LFW faces shipped inside scikit-image: (100, 25, 25) float64 in [0, 1]."""
    from skimage.data import lfw_subset

    return np.asarray(lfw_subset()[:N_FACES], dtype=np.float64)


def upscale_gray(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) gray floats in [0, 1] -> (N, size, size, 3) uint8 RGB, bicubic in float."""
    out = np.empty((len(faces), size, size, 3), dtype=np.uint8)
    for i, face in enumerate(faces):
        image = Image.fromarray(np.asarray(face, dtype=np.float32) * 255.0)  # mode F
        big = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))
        out[i] = np.clip(np.rint(big), 0, 255).astype(np.uint8)[..., None]
    return out


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of range(n) into two sorted halves."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of one image, shared by every strength."""
    return np.random.default_rng([seed, index])


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an H x W x 3 float image, over space only."""
    if sigma <= 0:
        return image
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="reflect")


def blotch_alpha(
    shape: tuple[int, int], centre: np.ndarray, radius: float, opacity: float
) -> np.ndarray:
    """A soft round blob: opacity at the centre, Gaussian fall-off with the given radius."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    squared = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2
    return opacity * np.exp(-squared / (2.0 * radius**2))


def texture_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance colour noise with a fine grain, H x W x 3."""
    noise = ndimage.gaussian_filter(
        rng.standard_normal((*shape, 3)), sigma=(NOISE_GRAIN_SIGMA, NOISE_GRAIN_SIGMA, 0)
    )
    return noise / noise.std()


def checkerboard(shape: tuple[int, int]) -> np.ndarray:
    """+1/-1 alternating pixels, H x W x 1."""
    rows, cols = np.indices(shape)
    return np.where((rows + cols) % 2 == 0, 1.0, -1.0)[..., None]


def texture_scale(strength: float) -> float:
    """How much of the strength-1 texture noise and checkerboard a strength carries: none up
    to TEXTURE_ONSET, then linear (1 at strength 1)."""
    return max(0.0, strength - TEXTURE_ONSET) / (1.0 - TEXTURE_ONSET)


def apply_defects(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """One H x W x 3 uint8 image with every defect at `strength` (0 = unchanged).

    The random draws are the same for every strength (same rng state in, same draws made).
    """
    height, width = image.shape[:2]
    side = min(height, width)
    # Draw everything first, so the draws do not depend on the strength.
    centres = rng.uniform(0.1, 0.9, size=(BLOTCHES_PER_IMAGE, 2)) * (height, width)
    radii = rng.uniform(*BLOTCH_RADIUS, size=BLOTCHES_PER_IMAGE) * side
    colours = rng.uniform(0.0, 1.0, size=(BLOTCHES_PER_IMAGE, 3))
    noise = texture_noise(rng, (height, width))
    if strength == 0:
        return image.copy()

    out = blur(image.astype(np.float64) / 255.0, BLUR_SIGMA_AT_128 * strength * side / 128)
    opacity = min(1.0, BLOTCH_OPACITY * strength)
    for centre, radius, colour in zip(centres, radii, colours, strict=True):
        alpha = blotch_alpha((height, width), centre, radius, opacity)[..., None]
        out = (1.0 - alpha) * out + alpha * colour
    texture = texture_scale(strength)
    out = out + NOISE_STD * texture * noise
    out = out + CHECKERBOARD_AMPLITUDE * texture * checkerboard((height, width))
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def face_file_name(index: int) -> str:
    """Files keep the LFW index, so gen_*/lfw_007.png is a defective real_a/lfw_007.png."""
    return f"lfw_{index:03d}.png"


def demo_pairs(sets: dict[str, dict[str, np.ndarray]], generated: dict[str, float]) -> list:
    """Good/bad pairs (fidlens.pairs): each image of the strongest generated set (bad,
    `fidlens.pairs.demo_bad_set`) with the real_a image it was made from (good, the same
    file name)."""
    from fidlens.pairs import DEMO_GOOD_SET, Pair, demo_bad_set

    bad = demo_bad_set(generated)
    if bad is None:
        return []
    return [Pair(DEMO_GOOD_SET, name, bad, name) for name in sorted(sets[bad])]


def make_demo_sets(
    faces: np.ndarray, size: int, seed: int, generated: dict[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """name -> {file name -> H x W x 3 uint8 image} for real_a, real_b and each generated set."""
    clean = upscale_gray(faces, size)
    half_a, half_b = split_halves(len(faces), seed)
    sets = {
        "real_a": {face_file_name(i): clean[i] for i in half_a},
        "real_b": {face_file_name(i): clean[i] for i in half_b},
    }
    for name, strength in generated.items():
        if name in REAL_SETS:
            raise ValueError(f"generated set {name!r} would overwrite a real demo set")
        sets[name] = {
            face_file_name(i): apply_defects(clean[i], strength, image_rng(seed, int(i)))
            for i in half_a
        }
    return sets


def describe_demo(
    sets: dict[str, dict[str, np.ndarray]], size: int, seed: int, generated: dict[str, float]
) -> dict:
    """How the demo images were made, for demo.json and the README beside them."""
    from fidlens.provenance import package_versions

    return {
        "source": "skimage.data.lfw_subset(): its first 100 images (faces), 25 x 25 gray",
        "upscale": f"PIL bicubic (in float) to {size} x {size}, gray copied to RGB, uint8 PNG",
        "split": f"seeded random halves (seed {seed}) of the 100 faces: real_a, real_b",
        "seed": seed,
        "size": size,
        "generated": {
            name: {"from": "real_a", "strength": strength} for name, strength in generated.items()
        },
        "defects_at_strength_1": {
            "blur_sigma_px": BLUR_SIGMA_AT_128 * size / 128,
            "blotches_per_image": BLOTCHES_PER_IMAGE,
            "blotch_radius_fraction": list(BLOTCH_RADIUS),
            "blotch_opacity": BLOTCH_OPACITY,
            "texture_noise_std": NOISE_STD,
            "texture_noise_grain_sigma_px": NOISE_GRAIN_SIGMA,
            "checkerboard_amplitude": CHECKERBOARD_AMPLITUDE,
            "texture_onset": TEXTURE_ONSET,
            "scaling": "blur sigma scales with strength; blotch opacity is min(1, opacity x "
            "strength); noise and checkerboard scale with max(0, strength - texture_onset) / "
            "(1 - texture_onset), so none up to the onset; pixel values in [0, 1]",
            "random_draws": "per image from (seed, LFW index), the same at every strength",
        },
        "images": {name: sorted(files) for name, files in sets.items()},
        "package_versions": package_versions(),
    }


def readme_text(about: dict) -> str:
    lines = [
        "# fidlens demo images",
        "",
        f"- Source: {about['source']}.",
        f"- Upscaled: {about['upscale']}; defects are added after upscaling.",
        f"- Real sets: {about['split']} ({len(about['images']['real_a'])} and "
        f"{len(about['images']['real_b'])} images).",
    ]
    for name, spec in about["generated"].items():
        texture = (
            ", texture noise and a checkerboard"
            if texture_scale(spec["strength"]) > 0
            else " (no texture noise or checkerboard below strength "
            f"{TEXTURE_ONSET})"
        )
        lines.append(
            f"- {name}: every real_a image with blur, blotches{texture} at strength "
            f"{spec['strength']}."
        )
    lines += [
        "- File names keep the LFW index: a generated image and its clean original share a name.",
        "",
        "Exact defect parameters, file lists and package versions: demo.json.",
        "",
    ]
    return "\n".join(lines)


def write_demo(out_dir: str | os.PathLike, sets: dict[str, dict[str, np.ndarray]], about: dict):
    """PNG files under out_dir/<set>/, plus demo.json and README.md in out_dir."""
    out_dir = Path(out_dir)
    for name, files in sets.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, image in files.items():
            Image.fromarray(image).save(folder / file_name)
    (out_dir / "demo.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n")
    (out_dir / "README.md").write_text(readme_text(about))
