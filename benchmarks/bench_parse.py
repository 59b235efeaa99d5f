"""What the workflow costs before any job: importing the extractor registry, a no-op
`snakemake -n` after a finished run, and parsing with more extractor instances configured.

Every figure is the median of whole-process runs (a fresh interpreter each time, as a user
or a cluster submission pays it).

    python benchmarks/bench_parse.py [--directory .] [--runs 3] [--extra-instances 9]

--directory must hold a finished run of its config.yaml (after `make demo`, the repository
root): the no-op dry run must plan nothing. The scaling check copies that config into a
temporary folder and times `snakemake --list-rules` (the whole parse: config schema, every
instance's settings and files, dataset listings; no DAG) as it is, with one instance of every
other registered type (`fallback: random` where the official file is missing), and with
--extra-instances more (other preprocessing modes and weights of the same types).
"""

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

import yaml

from fidlens.extractors import available, get_type

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXTRA = (
    {"type": "inception", "weights": "random", "preprocess": "pytorch-fid"},
    {"type": "inception", "weights": "random", "preprocess": "torch-fidelity"},
    {"type": "mobilenet_v2_imagenet", "weights": "random:1"},
    {"type": "dlib_face", "face_box": "detect"},
    {"type": "dlib_face", "face_box": "detect", "detector": "cnn"},
)


def timed(command: list[str], cwd: Path, runs: int) -> tuple[float, list[float], str]:
    times, output = [], ""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return statistics.median(times), times, output


def snakemake(*args: str) -> list[str]:
    return [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=REPO)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--extra-instances", type=int, default=9)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")

    registry = [sys.executable, "-c",
                "from fidlens.extractors import available; available()"]
    median, times, _ = timed(registry, args.directory, args.runs)
    print(f"import registry + available(): median {median:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in times)})")

    median, times, output = timed(snakemake("-n"), args.directory, args.runs)
    if "Nothing to be done" not in output:
        raise SystemExit(f"{args.directory} is not a finished run:\n{output[-2000:]}")
    config = yaml.safe_load((args.directory / "config.yaml").read_text())
    print(f"no-op snakemake -n ({len(config['extractors'])} extractors): median {median:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in times)})")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        images = args.directory / config["demo"]["out_dir"]
        shutil.copytree(images, scratch / config["demo"]["out_dir"])
        every_type = dict(config["extractors"])
        for name in available():
            if not any(entry.get("type", key) == name for key, entry in every_type.items()):
                fallback = {"fallback": "random"} if get_type(name).random_weights else {}
                every_type[name] = {"weights": "auto", **fallback}
        variants = [
            config["extractors"],
            every_type,
            {**every_type, **{f"extra{i}": EXTRA[i % len(EXTRA)]
                              for i in range(args.extra_instances)}},
        ]
        # Round-robin over the variants, so that a change in the machine's load hits all.
        times = {index: [] for index in range(len(variants))}
        for _ in range(args.runs):
            for index, extractors in enumerate(variants):
                bigger = {**config, "extractors": extractors}
                (scratch / "config.yaml").write_text(yaml.safe_dump(bigger, sort_keys=False))
                times[index] += timed(snakemake("--list-rules"), scratch, 1)[1]
        for index, extractors in enumerate(variants):
            print(f"parse (--list-rules), {len(extractors)} extractor instances: median "
                  f"{statistics.median(times[index]):.2f} s "
                  f"({', '.join(f'{t:.2f}' for t in times[index])})")


if __name__ == "__main__":
    main()
