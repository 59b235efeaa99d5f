"""Inception extraction speed: fidlens vs pytorch-fid on the same folder of 256² PNGs.

Both use the same weights (a seeded random checkpoint in the official layout, placed where
pytorch-fid looks), the same batch size and the same number of decoding workers. Features must
agree within the parity tolerance (1e-4 x max|feature|).

    python benchmarks/bench_extraction.py [--images 500] [--batch-size 50] [--workers 2]
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fidlens.datasets import open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor
from fidlens.extractors.networks.inception import random_state_dict

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"


def make_folder(folder: Path, count: int) -> list[Path]:
    """Smooth random 256² PNGs (upsampled noise), made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.png"
        if not path.exists():
            small = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths


def run_pytorch_fid(paths, batch_size, workers, device) -> tuple[np.ndarray, float]:
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device)
    start = time.perf_counter()
    features = get_activations([str(p) for p in paths], model, batch_size, 2048, device, workers)
    return features, time.perf_counter() - start


def run_fidlens(folder, checkpoint, batch_size, workers, device, out) -> tuple[np.ndarray, float]:
    extractor = build_extractor("inception", weights=str(checkpoint), preprocess="pytorch-fid")
    settings = ExtractionSettings(batch_size=batch_size, device=device, workers=workers)
    start = time.perf_counter()
    cache = extract_features(open_source(folder), extractor, out, settings)
    return cache.features, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default=str(Path(__file__).parent / "_data" / "png256"))
    args = parser.parse_args()

    paths = make_folder(Path(args.data) / str(args.images), args.images)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = Path(tmp) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        checkpoint = checkpoints / PYTORCH_FID_FILE
        torch.save(random_state_dict(0), checkpoint)
        os.environ["TORCH_HOME"] = tmp  # pytorch-fid finds the file here instead of downloading

        theirs, their_seconds = run_pytorch_fid(paths, args.batch_size, args.workers, args.device)
        ours, our_seconds = run_fidlens(
            paths[0].parent,
            checkpoint,
            args.batch_size,
            args.workers,
            args.device,
            Path(tmp) / "ours.h5",
        )

    error = np.abs(ours.astype(np.float64) - theirs).max() / np.abs(theirs).max()
    their_rate, our_rate = len(paths) / their_seconds, len(paths) / our_seconds
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"machine: {os.cpu_count()} cores, {cpu}; device {args.device}; torch "
        f"{torch.__version__}; {torch.get_num_threads()} threads"
    )
    print(f"{len(paths)} PNGs 256x256, batch {args.batch_size}, {args.workers} workers")
    print("| implementation | seconds | images/s |")
    print("|---|---|---|")
    print(f"| pytorch-fid 0.3.0 | {their_seconds:.1f} | {their_rate:.1f} |")
    print(f"| fidlens | {our_seconds:.1f} | {our_rate:.1f} |")
    print(
        f"speed-up: {our_rate / their_rate:.2f}x (target >= 1.3x); "
        f"max |diff| / max |feature| = {error:.2e} (tolerance 1e-4)"
    )
    return 0 if error <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
