"""Inception extraction speed against the machine's matrix-multiply ceiling, and vs pytorch-fid.

Measured in one run, on the CPU (or --device cuda):
- the ceiling: float32 GFLOP/s of a 4096² `torch.mm` at the run's torch thread count, best of
  a few, measured before and after the rest (the higher is used, so percentages are not
  flattered by a busy moment);
- Inception's FLOPs per 299² image, counted by `torch.utils.flop_counter.FlopCounterMode` on
  one forward (multiply-adds count 2); ceiling / FLOPs = the images/s the ceiling allows;
- the network alone on ready batches (decoded, resized, collated): fidlens's inference network
  (`prepare`: batch norm folded, oneDNN conv+ReLU) and, beside it, the same weights unfused
  (channels_last eager layers), best of --rounds, interleaved;
- the whole extraction as the workflow runs it (`extract_features`: reading, sha1, decoding
  and resizing in DataLoader workers, the network, per-batch resume files, the HDF5 cache),
  for --workers (default: the workflow's split of the cores, `split_extraction_cpus`) and for
  each of --compare-workers, back to back;
- pytorch-fid's `get_activations` on the same folder and weights (a seeded random checkpoint
  in the official layout, placed where pytorch-fid looks), same batch size and workers; the
  features must agree within the parity tolerance (1e-4 x max|feature|).

    python benchmarks/bench_extraction.py [--images 500] [--batch-size 50] [--workers N]
        [--threads N] [--rounds 3] [--compare-workers 0,2] [--device cpu]
"""

from __future__ import annotations

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

from fidlens.datasets import decode_rgb, open_source
from fidlens.extract import ExtractionSettings, extract_features
from fidlens.extractors import build_extractor
from fidlens.extractors.networks.inception import INPUT_SIZE, random_state_dict
from fidlens.resources import split_extraction_cpus

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
PARITY_TOLERANCE = 1e-4
MM_SIZE = 4096


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, size: int = MM_SIZE, repeats: int = 3) -> float:
    """Best float32 GFLOP/s (2 n³ per product) of `repeats` size x size `torch.mm`s."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    torch.mm(a, b)  # warm-up: thread pool, MKL/cuBLAS initialisation
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def inception_gflop_per_image(model: torch.nn.Module) -> float:
    """GFLOP of one 299² image through `model` (convolutions and matrix products, as
    FlopCounterMode counts them: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    weight = next(model.parameters())
    image = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, dtype=weight.dtype, device=weight.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(image)
    return counter.get_total_flops() / 1e9


def ready_batch(model, paths: list[Path], device: torch.device):
    """One batch as the network receives it: decoded, preprocessed and collated."""
    transform = model.preprocessor()
    items = [transform(decode_rgb(path.read_bytes())).numpy() for path in paths]
    return model.collate(items, device)


def time_networks(networks: dict, batch, rounds: int, device: torch.device) -> dict[str, float]:
    """Best seconds per batch of each network, the networks interleaved in every round (a
    load change hits them all alike); one untimed warm-up each (oneDNN primitive creation)."""
    best = dict.fromkeys(networks, float("inf"))
    with torch.inference_mode():
        for network in networks.values():
            network(batch)
        for _ in range(rounds):
            for name, network in networks.items():
                _sync(device)
                start = time.perf_counter()
                network(batch)
                _sync(device)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def network_outputs_agree(networks: dict, batch) -> float:
    """max |fused - unfused| / max |unfused| of the features on `batch`."""
    with torch.inference_mode():
        fused = networks["fidlens"](batch)["features"].double()
        unfused = networks["unfused"](batch)["features"].double()
    return ((fused - unfused).abs().max() / unfused.abs().max()).item()


def run_pytorch_fid(paths, batch_size, workers, device) -> tuple[np.ndarray, float]:
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device)
    start = time.perf_counter()
    features = get_activations([str(p) for p in paths], model, batch_size, 2048, device, workers)
    return features, time.perf_counter() - start


def run_fidlens(folder, checkpoint, batch_size, workers, device, out) -> tuple[np.ndarray, float]:
    """The workflow's extraction (model building excluded, as for pytorch-fid)."""
    extractor = build_extractor("inception", weights=str(checkpoint), preprocess="pytorch-fid")
    settings = ExtractionSettings(batch_size=batch_size, device=device, workers=workers)
    start = time.perf_counter()
    cache = extract_features(open_source(folder), extractor, out, settings, progress=False)
    return cache.features, time.perf_counter() - start


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the workflow's split of the cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding workers (default: the workflow's split of the cores)")
    parser.add_argument("--compare-workers", default="",
                        help="further worker counts to time the whole extraction with, e.g. 0,2")
    parser.add_argument("--rounds", type=int, default=3, help="network-alone timings (best of)")
    parser.add_argument("--skip-pytorch-fid", action="store_true")
    parser.add_argument("--data", default=str(Path(__file__).parent / "_data" / "png256"))
    args = parser.parse_args()

    device = torch.device(args.device)
    split_workers, split_threads = split_extraction_cpus(cores, device.type)
    workers = split_workers if args.workers is None else args.workers
    torch.set_num_threads(args.threads or split_threads)
    others = [int(w) for w in args.compare_workers.split(",") if w.strip() and int(w) != workers]
    print(f"machine: {cores} cores, {_cpu_name()}; device {device}; torch {torch.__version__}; "
          f"{torch.get_num_threads()} threads; load average {_load()} at the start", flush=True)

    paths = make_folder(Path(args.data) / str(args.images), args.images)
    ceilings = [matmul_gflops(device)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = Path(tmp) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        checkpoint = checkpoints / PYTORCH_FID_FILE
        torch.save(random_state_dict(0), checkpoint)
        os.environ["TORCH_HOME"] = tmp  # pytorch-fid finds the file here instead of downloading

        unfused = build_extractor("inception", weights=str(checkpoint), preprocess="pytorch-fid")
        gflop = inception_gflop_per_image(unfused.eval())
        networks = {
            "fidlens": unfused.prepare(device),  # the extraction's network (a fused copy)
            "unfused": unfused.to(device, memory_format=torch.channels_last).eval(),
        }
        batch = ready_batch(unfused, paths[: args.batch_size], device)
        seconds = time_networks(networks, batch, args.rounds, device)
        fused_vs_unfused = network_outputs_agree(networks, batch)
        del networks, batch

        runs = {}
        for count in [workers, *others]:
            runs[count] = run_fidlens(paths[0].parent, checkpoint, args.batch_size, count,
                                      args.device, Path(tmp) / f"ours{count}.h5")
        if not args.skip_pytorch_fid:
            theirs, their_seconds = run_pytorch_fid(paths, args.batch_size, workers, device)
        ceilings.append(matmul_gflops(device))

    ceiling = max(ceilings)
    allowed = ceiling / gflop  # images/s at the ceiling
    n = len(paths)
    print(f"{n} PNGs 256x256, batch {args.batch_size}; load average {_load()} at the end")
    print(f"ceiling: {MM_SIZE}² float32 torch.mm, best of 3: {ceilings[0]:.1f} GFLOP/s before, "
          f"{ceilings[1]:.1f} after; Inception {gflop:.3f} GFLOP/image (FlopCounterMode) -> "
          f"{allowed:.2f} images/s allowed")
    print("| what | workers | seconds | images/s | % of ceiling |")
    print("|---|---|---|---|---|")
    for name, label in (("unfused", "network alone, unfused (eager, channels_last)"),
                        ("fidlens", "network alone, fidlens (BN folded, oneDNN conv+ReLU)")):
        rate = args.batch_size / seconds[name]
        print(f"| {label} | - | {seconds[name]:.2f} per batch | {rate:.2f} | "
              f"{100 * rate / allowed:.1f} % |")
    for count, (_, run_seconds) in runs.items():
        rate = n / run_seconds
        print(f"| fidlens whole extraction | {count} | {run_seconds:.1f} | {rate:.2f} | "
              f"{100 * rate / allowed:.1f} % |")
    ours = runs[workers][0]
    status = 0 if fused_vs_unfused <= PARITY_TOLERANCE else 1
    if not args.skip_pytorch_fid:
        their_rate, our_rate = n / their_seconds, n / runs[workers][1]
        print(f"| pytorch-fid 0.3.0 get_activations | {workers} | {their_seconds:.1f} | "
              f"{their_rate:.2f} | {100 * their_rate / allowed:.1f} % |")
        error = np.abs(ours.astype(np.float64) - theirs).max() / np.abs(theirs).max()
        print(f"speed-up vs pytorch-fid: {our_rate / their_rate:.2f}x; max |diff| / "
              f"max |feature| vs pytorch-fid = {error:.2e} (tolerance {PARITY_TOLERANCE:g})")
        status = status if error <= PARITY_TOLERANCE else 1
    print(f"fused vs unfused network, same batch: max |diff| / max |feature| = "
          f"{fused_vs_unfused:.2e}")
    return status


if __name__ == "__main__":
    sys.exit(main())
