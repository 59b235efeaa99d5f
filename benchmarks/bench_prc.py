"""Precision/recall (k = 3) on N x N features: fidlens against torch-fidelity's prc.

python benchmarks/bench_prc.py [--n 20000] [--dim 2048] [--skip-reference]

Each implementation runs in its own subprocess, so the peak resident memory it reports
(VmHWM from /proc/self/status) is its own and no library's memory pollutes another's. The
features (seeded, float32 as in a cache) are written once under benchmarks/_data/.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "_data"


def make_features(
    n: int, dim: int, seed: int = 0, exponent: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Real and generated features with a decaying covariance spectrum (variance of
    direction k proportional to k^-exponent) and a positive mean, like pooled CNN features,
    and a generator slightly off in mean and spread (precision ~0.5, recall ~0.8)."""
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -exponent
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mixing = (np.sqrt(spectrum)[:, None] * basis.T).astype(np.float32)
    mean = rng.uniform(0.2, 0.6, dim).astype(np.float32)
    real = rng.standard_normal((n, dim), dtype=np.float32) @ mixing + mean
    fake = 1.05 * (rng.standard_normal((n, dim), dtype=np.float32) @ mixing) + mean + 0.005
    return fake, real


def data_file(n: int, dim: int, exponent: float) -> Path:
    path = DATA / f"prc_{n}x{dim}_k{exponent:g}.npz"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        fake, real = make_features(n, dim, exponent=exponent)
        np.savez(path, fake=fake, real=real)
    return path


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(which: str, path: Path) -> None:
    import torch

    loaded = np.load(path)
    fake, real = loaded["fake"], loaded["real"]
    start = time.perf_counter()
    if which == "fidlens":
        from fidlens.metrics import precision_recall

        precision, recall = precision_recall(fake, real, k=3)
        result = {"precision": precision, "recall": recall}
    elif which == "fidlens-prdc":
        from fidlens.metrics import manifold_metrics

        result = manifold_metrics(fake, real)
    else:
        from torch_fidelity.metric_prc import prc_features_to_metric

        if which == "torch-fidelity-f64":  # its algorithm in float64: an exact reference
            fake, real = fake.astype(np.float64), real.astype(np.float64)
        # input1 is the generated set; defaults: batch 10000, full distance matrices in RAM.
        out = prc_features_to_metric(
            torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=3, verbose=False
        )
        result = {"precision": out["precision"], "recall": out["recall"]}
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss_bytes(), **result}))


def run_worker(which: str, path: Path) -> dict:
    load = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, __file__, "--worker", which, "--data", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"load_before": load}


def machine() -> str:
    import torch

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument(
        "--exponent",
        type=float,
        default=1.5,
        help="variance of direction k ~ k^-exponent; 0 gives isotropic features, the worst "
        "case for fidlens' lower bounds",
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--with-density-coverage", action="store_true")
    parser.add_argument(
        "--float64-reference",
        action="store_true",
        help="also run torch-fidelity on float64 copies (needs ~3.5x N^2 x 8 bytes of RAM)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.data))
        return

    path = data_file(args.n, args.dim, args.exponent)
    names = ["fidlens"]
    if args.with_density_coverage:
        names.append("fidlens-prdc")
    if not args.skip_reference:
        names.append("torch-fidelity")
    if args.float64_reference:
        names.append("torch-fidelity-f64")
    runs = {name: run_worker(name, path) for name in names}

    print(
        f"precision/recall, k = 3, {args.n} x {args.n} features of dimension {args.dim}, "
        f"spectrum k^-{args.exponent:g}"
    )
    print(f"machine: {machine()}")
    print(f"{'implementation':18} {'seconds':>8} {'peak RSS':>9} {'precision':>10} "
          f"{'recall':>8} {'load':>5}")  # fmt: skip
    for name, run in runs.items():
        print(
            f"{name:18} {run['seconds']:8.1f} {run['peak_rss'] / 2**30:8.2f}G "
            f"{run['precision']:10.6f} {run['recall']:8.6f} {run['load_before']:5.1f}"
        )
        if name == "fidlens-prdc":
            print(f"{'':18} density {run['density']:.6f} coverage {run['coverage']:.6f}")
    ours = runs["fidlens"]
    if "torch-fidelity" in runs:
        speed_up = runs["torch-fidelity"]["seconds"] / ours["seconds"]
        print(f"speed-up over torch-fidelity: {speed_up:.2f}x")
    for name in ("torch-fidelity", "torch-fidelity-f64"):
        if name in runs:
            for key in ("precision", "recall"):
                # torch-fidelity returns float32 means: compare counts of points.
                a, b = round(ours[key] * args.n), round(runs[name][key] * args.n)
                print(f"{key}: fidlens {a} points, {name} {b} points, difference {a - b}")


if __name__ == "__main__":
    main()
