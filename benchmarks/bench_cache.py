"""What checking the stored sha256 costs when a feature cache is read.

python benchmarks/bench_cache.py [--n 70000] [--dim 2048] [--repeats 3]

Writes one cache of N x D float32 features with paths and sha1s (as an extraction would)
under benchmarks/_data/, then times `read_features` (which verifies every dataset it reads)
against reading the same datasets with h5py alone. Best of --repeats, file in page cache.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import h5py
import numpy as np

from fidlens.cache import FeatureCache, read_features, write_cache

DATA = Path(__file__).resolve().parent / "_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"cache_{args.n}x{args.dim}.h5"
    rng = np.random.default_rng(0)
    features = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    cache = FeatureCache(
        features=features,
        paths=[f"{i:05d}.png" for i in range(args.n)],
        sha1=[f"{i:040x}" for i in range(args.n)],
    )
    start = time.perf_counter()
    write_cache(path, cache)
    written = time.perf_counter() - start

    def plain():
        with h5py.File(path, "r") as handle:
            handle["features"][()]
            [s.decode() for s in handle["paths"][()]]
            [s.decode() for s in handle["sha1"][()]]

    def checked():
        read_features(path)

    times = {}
    for name, read in (("h5py alone", plain), ("read_features (verified)", checked)):
        best = min(_timed(read) for _ in range(args.repeats))
        times[name] = best
    size = os.path.getsize(path) / 2**20
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"cache {args.n} x {args.dim} float32 + paths + sha1: {size:.0f} MiB, "
          f"written (with digests) in {written:.2f} s")
    for name, seconds in times.items():
        print(f"{name}: {seconds:.2f} s")
    extra = times["read_features (verified)"] - times["h5py alone"]
    print(f"verification adds {extra:.2f} s ({extra / times['h5py alone']:.0%})")
    path.unlink()


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
