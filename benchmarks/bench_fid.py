"""FID from the same (mu, sigma): fidlens against pytorch-fid and torch-fidelity.

python benchmarks/bench_fid.py [--n 10000] [--dim 2048] [--repeats 3]

Statistics come from seeded features with a realistic (power-law) covariance spectrum. The
exact reference is computed independently from the features: the trace term is the sum of
singular values of Rx Ry^T / sqrt((n-1)(m-1)) (Xc = Qx Rx, numpy QR and SVD in float64),
which never takes square roots of eigenvalues.
"""

import argparse
import os
import time
import warnings

import numpy as np
from bench_prc import machine, make_features
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_fid import fid_statistics_to_metric

from fidlens.metrics import feature_statistics, frechet_distance


def exact_fid(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    rx, ry = np.linalg.qr(xc, mode="r"), np.linalg.qr(yc, mode="r")
    nx, ny = len(x) - 1, len(y) - 1
    trace_sqrt = np.linalg.svd(rx @ ry.T / np.sqrt(nx * ny), compute_uv=False).sum()
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + (xc**2).sum() / nx + (yc**2).sum() / ny - 2 * trace_sqrt)


def timed(function, repeats: int) -> tuple[float, list[float]]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return float(value), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--exponent",
        type=float,
        default=1.5,
        help="variance of direction k ~ k^-exponent; 2 or more makes the covariances so "
        "ill-conditioned that fidlens takes its exact fallback path",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # pytorch-fid's sqrtm(disp=)

    fake, real = make_features(args.n, args.dim, exponent=args.exponent)
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(fake), feature_statistics(real)
    exact = exact_fid(fake, real)
    implementations = {
        "fidlens": lambda: frechet_distance(mu1, sigma1, mu2, sigma2),
        "pytorch-fid": lambda: calculate_frechet_distance(mu1, sigma1, mu2, sigma2),
        "torch-fidelity": lambda: fid_statistics_to_metric(
            {"mu": mu1, "sigma": sigma1}, {"mu": mu2, "sigma": sigma2}, verbose=False
        )["frechet_inception_distance"],
    }
    rows = {}
    for name, function in implementations.items():
        load = os.getloadavg()[0]
        value, times = timed(function, args.repeats)
        rows[name] = (value, times, load)

    print(
        f"FID from statistics, N = {args.n} per set, D = {args.dim}, float64, "
        f"spectrum k^-{args.exponent:g}"
    )
    print(f"machine: {machine()}")
    print(f"exact reference (QR + SVD of the centred features): {exact:.15g}")
    print(f"{'implementation':15} {'best s':>7} {'all runs s':>22} {'load':>5} {'FID':>20} "
          f"{'rel. diff to exact':>19} {'to fidlens':>11}")  # fmt: skip
    ours = rows["fidlens"]
    for name, (value, times, load) in rows.items():
        runs = " ".join(f"{t:.2f}" for t in times)
        print(
            f"{name:15} {min(times):7.2f} {runs:>22} {load:5.1f} {value:20.13f} "
            f"{abs(value - exact) / exact:19.2e} {abs(value - ours[0]) / ours[0]:11.2e}"
        )
    for name in ("pytorch-fid", "torch-fidelity"):
        print(f"speed-up over {name}: {min(rows[name][1]) / min(ours[1]):.1f}x (best of runs)")


if __name__ == "__main__":
    main()
