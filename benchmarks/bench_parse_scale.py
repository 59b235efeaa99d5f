"""Parse time at scale: a first `snakemake -n` on a config with two 70,000-file folders.

python benchmarks/bench_parse_scale.py [--files 70000] [--runs 3] [--data DIR]

Two folders of tiny PNGs (8 x 8, made once under --data) are the datasets of a config with one
extractor and one comparison; nothing is built. "First" means what a user pays the first time:
the content fingerprints of every image are computed (the stat cache under
.snakemake/fidlens/content-hashes/ is removed before each run). "Again" is the next dry run,
which reuses that cache. Medians of --runs whole-process runs, timed round-robin.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_folder(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if len(os.listdir(folder)) >= count:
        return
    rng = np.random.default_rng(seed)
    for index in range(count):
        pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=70_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "_data" / "parse")
    args = parser.parse_args()

    folders = {name: args.data / f"{args.files}" / name for name in ("real", "fake")}
    for seed, folder in enumerate(folders.values()):
        make_folder(folder, args.files, seed)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"] = {name: {"path": str(path)} for name, path in folders.items()}
    config["demo"]["enabled"] = False
    config["extractors"] = {"inception": {"weights": "random", "batch_size": 50, "threads": 2}}
    config["comparisons"] = [{"source": "fake", "target": "real"}]
    # Only extraction and metrics: every optional stage off.
    for section in config.values():
        if isinstance(section, dict) and "enabled" in section:
            section["enabled"] = False
    for section in ("experiments", "statistics"):  # sections without an `enabled` key
        config.pop(section, None)
    times: dict[str, list[float]] = {"first": [], "again": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        command = [str(BIN / "snakemake"), "-n", "--snakefile", str(REPO / "Snakefile"),
                   "--directory", str(work), "--configfile", str(work / "config.yaml")]
        for _ in range(args.runs):
            shutil.rmtree(work / ".snakemake", ignore_errors=True)
            times["first"].append(timed(command, work))
            times["again"].append(timed(command, work))
    print(f"\nMachine: {platform.processor() or platform.machine()}, `nproc` {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} at the end; {time.strftime('%Y-%m-%d')}. "
          f"Two folders of {args.files} 8 x 8 PNGs, one extractor, one comparison.\n")
    print("| dry run | median of runs | runs |")
    print("|---|---:|---|")
    for what, values in times.items():
        listed = ", ".join(f"{value:.2f}" for value in values)
        print(f"| {what} | **{statistics.median(values):.2f} s** | {listed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
