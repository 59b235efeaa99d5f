"""Grad-CAM of FID per image against one forward + backward pass of the extractor.

python benchmarks/bench_attention.py [--extractors inception clip_vitb32] [--images 32]
    [--batch-size 16] [--repeats 3] [--device cpu|cuda]

For each extractor (random weights: the cost does not depend on their values) a batch of
preprocessed synthetic 128 x 128 images is timed three ways, after one warm-up:
- reference: one forward pass with autograd and `features.sum().backward()` through the
  whole network (parameters requiring gradients), the cost the target is stated against;
- fidlens: `fidlens.attention.gradcam_batch` (the forward pass, the backward pass from the
  features to the attention layer only, the channel weights and the map) plus
  `FIDGradient.member_gradients` for the batch, i.e. everything the workflow does per image
  once the images are decoded;
- setup, once per comparison: `FIDGradient` from two sets' statistics (D x D), and the
  leave-one-out FID per image.
Times are medians over `--repeats` rounds (the two alternating), per image. The target is
fidlens <= 1.2 x reference.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from bench_prc import machine

from fidlens import attention as at
from fidlens.extractors import build_extractor
from fidlens.metrics import feature_statistics
from fidlens.metrics.fid_gradient import FIDGradient


def synthetic_images(count: int, size: int = 128, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size] / size
    base = np.stack([xs, ys, 1 - xs * ys], axis=2) * 180
    return [(base + rng.normal(0, 30, base.shape)).clip(0, 255).astype(np.uint8)
            for _ in range(count)]


def median_times(functions, repeats: int, device: torch.device) -> list[float]:
    """Median seconds of each function, the functions alternating within each round (so a
    busy moment of a shared machine falls on all of them), after one warm-up round."""
    times = [[] for _ in functions]
    for round_ in range(repeats + 1):
        for function, seconds in zip(functions, times, strict=True):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            function()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_:
                seconds.append(time.perf_counter() - start)
    return [statistics.median(seconds) for seconds in times]


def bench(name: str, images: int, batch_size: int, repeats: int, device: torch.device) -> dict:
    model = build_extractor(name, weights="random").prepare(device)
    prepared = [np.asarray(model.preprocessor()(image)) for image in synthetic_images(images)]
    batches = [model.collate(prepared[i:i + batch_size], device)
               for i in range(0, images, batch_size)]
    rng = np.random.default_rng(1)
    dim = model.feature_dim
    # Two sets' statistics (N > D, so every covariance is full rank) and the batch's rows.
    source = rng.normal(size=(dim + 500, dim)) @ np.diag(np.linspace(1, 0.1, dim))
    target = rng.normal(size=(dim + 500, dim)) + 0.1
    (mu_g, sigma_g), (mu_r, sigma_r) = feature_statistics(source), feature_statistics(target)
    start = time.perf_counter()
    gradient = FIDGradient(mu_r, sigma_r, mu_g, sigma_g, len(source))
    setup_s = time.perf_counter() - start
    rows = source[:batch_size]
    start = time.perf_counter()
    gradient.leave_one_out(rows)
    loo_s = (time.perf_counter() - start) / len(rows)

    def reference():
        model.requires_grad_(True)
        for batch in batches:
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                model(batch)["features"].sum().backward()

    layer = at.attention_module(model, model.declared["attention_layer"])

    def ours():
        model.requires_grad_(False)
        for batch in batches:
            grads = gradient.member_gradients(rows[: len(batch)])
            at.gradcam_batch(model, layer, batch, grads)

    reference_s, ours_s = (t / images for t in median_times([reference, ours], repeats, device))
    return {"extractor": name, "reference_ms": 1e3 * reference_s, "ours_ms": 1e3 * ours_s,
            "ratio": ours_s / reference_s, "setup_s": setup_s, "loo_ms": 1e3 * loo_s,
            "dim": dim}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", nargs="+", default=["inception", "clip_vitb32"])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        print(machine())
    else:
        print(torch.cuda.get_device_name(device), f"torch {torch.__version__}")
    with open("/proc/loadavg") as handle:
        print("load average at start:", " ".join(handle.read().split()[:3]))
    print("| extractor | D | forward + backward (ms/image) | fidlens maps (ms/image) | ratio "
          "(target <= 1.2) | FIDGradient setup (s) | leave-one-out (ms/image) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.extractors:
        r = bench(name, args.images, args.batch_size, args.repeats, device)
        print(f"| {r['extractor']} | {r['dim']} | {r['reference_ms']:.1f} | {r['ours_ms']:.1f} "
              f"| **{r['ratio']:.2f}x** | {r['setup_s']:.2f} | {r['loo_ms']:.2f} |", flush=True)
    with open("/proc/loadavg") as handle:
        print("load average at end:", " ".join(handle.read().split()[:3]))


if __name__ == "__main__":
    main()
