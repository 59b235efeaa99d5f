"""Precision/recall (k = 3) on N x N features: fidlens against torch-fidelity's prc, and
fidlens on mode-collapsed and memorising generators against ordinary ones of the same size.

python benchmarks/bench_prc.py [--n 20000] [--dim 2048] [--skip-reference]
python benchmarks/bench_prc.py --collapsed [--n 4000] [--dim 64] [--exponent 0] [--check-exact]

Each implementation (and each case) runs in its own subprocess, so the peak resident memory it
reports (VmHWM from /proc/self/status) is its own and no library's memory pollutes another's.
The features (seeded, float32 as in a cache) are written once under benchmarks/_data/.

Cases (--collapsed; the real set is the same ordinary one unless said otherwise):
  ordinary    generated features slightly off in mean and spread
  identical   every generated feature the same point (a real one + 3)
  modes       5 tight modes: 5 real-like points plus noise of 1e-3 times the data's spread
  duplicates  duplicated images: real = N/2 images twice each, generated = N/4 images 4 times
  copies      memorisation: generated = the real features, shuffled
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
CASES = ("ordinary", "identical", "modes", "duplicates", "copies")


def make_features(
    n: int, dim: int, seed: int = 0, exponent: float = 1.5, case: str = "ordinary"
) -> tuple[np.ndarray, np.ndarray]:
    """Real and generated features with a decaying covariance spectrum (variance of
    direction k proportional to k^-exponent) and a positive mean, like pooled CNN features,
    and a generator slightly off in mean and spread (precision ~0.5, recall ~0.8), or
    collapsed as `case` says (see the module docstring)."""
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -exponent
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mixing = (np.sqrt(spectrum)[:, None] * basis.T).astype(np.float32)
    mean = rng.uniform(0.2, 0.6, dim).astype(np.float32)

    def draw(count: int, spread: float = 1.0) -> np.ndarray:
        return spread * (rng.standard_normal((count, dim), dtype=np.float32) @ mixing) + mean

    real = draw(n)
    fake = 1.05 * (draw(n) - mean) + mean + 0.005
    if case == "identical":
        fake = np.repeat(real[:1] + 3.0, n, axis=0)
    elif case == "modes":
        centres = draw(5)
        noise = 1e-3 * (rng.standard_normal((n, dim), dtype=np.float32) @ mixing)
        fake = np.repeat(centres, -(-n // 5), axis=0)[:n] + noise
    elif case == "duplicates":
        real = np.repeat(real[: n // 2], 2, axis=0)[rng.permutation(n)]
        fake = np.repeat(fake[: n // 4], 4, axis=0)[rng.permutation(n)]
    elif case == "copies":
        fake = real[rng.permutation(n)]
    return fake.astype(np.float32), real.astype(np.float32)


def data_file(n: int, dim: int, exponent: float, case: str = "ordinary") -> Path:
    suffix = "" if case == "ordinary" else f"_{case}"
    path = DATA / f"prc_{n}x{dim}_k{exponent:g}{suffix}.npz"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        fake, real = make_features(n, dim, exponent=exponent, case=case)
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
    start, cpu_start = time.perf_counter(), time.process_time()
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
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    measured = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss": peak_rss_bytes()}
    print(json.dumps(measured | result))


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


def brute_force(path: Path, k_pr: int = 3, k_dc: int = 5) -> dict:
    """All four metrics from every distance in float64 (scipy's cdist, sum((a - b)^2)):
    d <= radius for precision and recall, d < radius for density and coverage."""
    from scipy.spatial.distance import cdist

    loaded = np.load(path)
    fake, real = loaded["fake"].astype(np.float64), loaded["real"].astype(np.float64)

    def radii(x: np.ndarray, ks: tuple[int, ...]) -> list[np.ndarray]:
        within = cdist(x, x, "sqeuclidean")
        np.fill_diagonal(within, np.inf)
        within.partition(max(ks) - 1, axis=1)  # in place: the kmax smallest come first, sorted
        smallest = np.sort(within[:, : max(ks)], axis=1)
        return [smallest[:, k - 1] for k in ks]

    real_pr, real_dc = radii(real, (k_pr, k_dc))
    (fake_pr,) = radii(fake, (k_pr,))
    cross = cdist(real, fake, "sqeuclidean")
    return {
        "precision": float((cross <= real_pr[:, None]).any(0).mean()),
        "recall": float((cross <= fake_pr[None, :]).any(1).mean()),
        "density": float((cross < real_dc[:, None]).sum() / (k_dc * len(fake))),
        "coverage": float((cross.min(1) < real_dc).mean()),
    }


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


def collapsed(args) -> None:
    """All four metrics on each case, against the ordinary case of the same size. Rounds of
    one run per case, so that a busy moment of the machine does not fall on one case alone;
    the best round of each case counts."""
    paths = {case: data_file(args.n, args.dim, args.exponent, case) for case in CASES}
    rounds = [
        {case: run_worker("fidlens-prdc", path) for case, path in paths.items()}
        for _ in range(args.repeat)
    ]
    runs = {}
    for case, path in paths.items():
        runs[case] = min((r[case] for r in rounds), key=lambda run: run["seconds"])
        runs[case]["cpu_seconds"] = min(r[case]["cpu_seconds"] for r in rounds)
        if args.check_exact:
            expected = brute_force(path)
            got = {key: runs[case][key] for key in expected}
            runs[case]["exact"] = "yes" if got == expected else f"NO: expected {expected}"
    print(
        f"precision/recall + density/coverage (one manifold_metrics call), {args.n} x {args.n} "
        f"features of dimension {args.dim}, spectrum k^-{args.exponent:g}; best of "
        f"{args.repeat}"
    )
    print(f"machine: {machine()}")
    base = runs["ordinary"]
    print(f"{'case':11} {'seconds':>8} {'x ordinary':>10} {'CPU s':>7} {'x ordinary':>10} "
          f"{'peak RSS':>9} {'x ordinary':>10} "
          f"{'P':>6} {'R':>6} {'D':>6} {'C':>6} {'load':>5} exact")  # fmt: skip
    for case, run in runs.items():
        print(
            f"{case:11} {run['seconds']:8.2f} {run['seconds'] / base['seconds']:10.2f} "
            f"{run['cpu_seconds']:7.2f} {run['cpu_seconds'] / base['cpu_seconds']:10.2f} "
            f"{run['peak_rss'] / 2**30:8.2f}G {run['peak_rss'] / base['peak_rss']:10.2f} "
            f"{run['precision']:6.3f} {run['recall']:6.3f} {run['density']:6.3f} "
            f"{run['coverage']:6.3f} {run['load_before']:5.1f} {run.get('exact', '-')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument(
        "--exponent",
        type=float,
        default=1.5,
        help="variance of direction k ~ k^-exponent; 0 gives isotropic features",
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--with-density-coverage", action="store_true")
    parser.add_argument(
        "--float64-reference",
        action="store_true",
        help="also run torch-fidelity on float64 copies (needs ~3.5x N^2 x 8 bytes of RAM)",
    )
    parser.add_argument(
        "--collapsed",
        action="store_true",
        help="fidlens on every case of the module docstring instead of the comparison",
    )
    parser.add_argument(
        "--check-exact",
        action="store_true",
        help="with --collapsed: compare with a brute-force float64 computation (3 N^2 floats)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --collapsed: best of this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.data))
        return
    if args.collapsed:
        collapsed(args)
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
    print(f"{'implementation':18} {'seconds':>8} {'CPU s':>7} {'peak RSS':>9} {'precision':>10} "
          f"{'recall':>8} {'load':>5}")  # fmt: skip
    for name, run in runs.items():
        print(
            f"{name:18} {run['seconds']:8.1f} {run['cpu_seconds']:7.1f} "
            f"{run['peak_rss'] / 2**30:8.2f}G "
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
