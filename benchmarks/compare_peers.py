"""FID between two image folders, each tool as a whole process, side by side.

python benchmarks/compare_peers.py [--images 500] [--batch-size 50] [--workers 2]
    [--device cpu] [--data DIR] [--only MODE ...]

Rows, each tool in its own mode against ours in the same mode (`preprocess` of our Inception):
- pytorch-fid: `python -m pytorch_fid A B`  vs  ours with preprocess `pytorch-fid`;
- torch-fidelity: `fidelity --fid --input1 A --input2 B`  vs  ours with `torch-fidelity`;
- clean-fid `legacy_pytorch` (`fid.compute_fid(A, B, mode="legacy_pytorch")`: PyTorch
  bilinear resize to 299 outside the network, then pytorch-fid's network)  vs  ours with
  `pytorch-fid` (the same operations: the resize is linear, so it commutes with the
  normalisation pytorch-fid applies first). clean-fid's `clean` mode needs NVIDIA's TorchScript
  network, which cannot be made offline; the `clean` resize itself is checked against
  clean-fid's in tests/test_inception.py.

Ours is what a user chains by hand: `extract_features.py` on each folder, then
`compute_metrics.py --metrics fid --normalize none`, three processes, timed together.

Every tool reads the same seeded random checkpoint in the official layout (found by the peers
under $TORCH_HOME as if downloaded; given to ours as a path), the same folders of 256² PNGs,
batch size and number of decoding workers. Wall time and peak RSS per process come from
/usr/bin/time; the FID values must agree within 1e-4 relative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_extraction import PYTORCH_FID_FILE, make_folder

from fidlens.extractors.networks.inception import random_state_dict

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"


def timed_process(command: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one process under /usr/bin/time."""
    start = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "MAXRSS_KB=%M", *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    rss_kb = int(re.findall(r"MAXRSS_KB=(\d+)", result.stderr)[-1])
    return seconds, rss_kb / 1024, result.stdout


def last_number(text: str) -> float:
    return float(re.findall(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?", text)[-1])


def run_pytorch_fid(a, b, args, env) -> dict:
    command = [PYTHON, "-m", "pytorch_fid", str(a), str(b), "--device", args.device,
               "--batch-size", str(args.batch_size), "--num-workers", str(args.workers)]
    seconds, rss, out = timed_process(command, env)
    return {"seconds": seconds, "rss_mib": rss, "fid": last_number(out)}


def run_torch_fidelity(a, b, args, env, checkpoint) -> dict:
    command = [str(Path(PYTHON).parent / "fidelity"), "--fid", "--input1", str(a), "--input2",
               str(b), "--batch-size", str(args.batch_size), "--no-cache", "--silent",
               "--feature-extractor-weights-path", str(checkpoint)]
    if args.device == "cpu":
        command.append("--cpu")
    seconds, rss, out = timed_process(command, env)
    return {"seconds": seconds, "rss_mib": rss, "fid": last_number(out)}


CLEAN_FID_SNIPPET = """
import sys, torch
from cleanfid import fid
value = fid.compute_fid(sys.argv[1], sys.argv[2], mode="legacy_pytorch",
    device=torch.device(sys.argv[3]), batch_size=int(sys.argv[4]), num_workers=int(sys.argv[5]),
    verbose=False, use_dataparallel=False)
print(f"FID: {value:.10f}")
"""


def run_clean_fid(a, b, args, env) -> dict:
    command = [PYTHON, "-c", CLEAN_FID_SNIPPET, str(a), str(b), args.device,
               str(args.batch_size), str(args.workers)]
    seconds, rss, out = timed_process(command, env)
    return {"seconds": seconds, "rss_mib": rss, "fid": last_number(out)}


def run_fidlens(a, b, args, env, checkpoint, preprocess, scratch) -> dict:
    scripts = ROOT / "workflow_scripts"
    total, peak, caches = 0.0, 0.0, []
    for folder in (a, b):
        cache = scratch / f"{preprocess}-{folder.name}.h5"
        cache.unlink(missing_ok=True)
        command = [PYTHON, str(scripts / "extract_features.py"), "--images", str(folder),
                   "--extractor", "inception", "--weights", str(checkpoint), "--preprocess",
                   preprocess, "--batch-size", str(args.batch_size), "--device", args.device,
                   "--workers", str(args.workers), "--out", str(cache)]
        seconds, rss, _ = timed_process(command, env)
        total, peak = total + seconds, max(peak, rss)
        caches.append(cache)
    metrics = scratch / f"{preprocess}.json"
    command = [PYTHON, str(scripts / "compute_metrics.py"), "--source", str(caches[0]),
               "--target", str(caches[1]), "--metrics", "fid", "--normalize", "none",
               "--out", str(metrics)]
    seconds, rss, _ = timed_process(command, env)
    fid = json.loads(metrics.read_text())["raw"]["fid"]
    return {"seconds": total + seconds, "rss_mib": max(peak, rss), "fid": fid}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=500, help="images per folder")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default=str(Path(__file__).parent / "_data" / "peers"))
    parser.add_argument("--only", nargs="*", default=["pytorch-fid", "torch-fidelity",
                                                      "clean-fid"])
    args = parser.parse_args()

    data = Path(args.data) / str(args.images)
    a, b = data / "a", data / "b"
    make_folder(a, args.images)
    # A second, different set: the same generator with another seed would repeat images.
    from PIL import Image

    b.mkdir(parents=True, exist_ok=True)
    for path in sorted(a.glob("*.png")):
        target = b / path.name
        if not target.exists():
            Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90).save(target)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hub = tmp / "torch-home" / "hub" / "checkpoints"
        hub.mkdir(parents=True)
        checkpoint = hub / PYTORCH_FID_FILE
        torch.save(random_state_dict(0), checkpoint)
        (hub / TORCH_FIDELITY_FILE).symlink_to(checkpoint)
        env = dict(os.environ, TORCH_HOME=str(tmp / "torch-home"), PYTHONPATH=str(ROOT / "src"))
        for mode in args.only:
            if mode == "pytorch-fid":
                peer, ours_mode = run_pytorch_fid(a, b, args, env), "pytorch-fid"
            elif mode == "torch-fidelity":
                peer, ours_mode = run_torch_fidelity(a, b, args, env, checkpoint), mode
            elif mode == "clean-fid":
                peer, ours_mode = run_clean_fid(a, b, args, env), "pytorch-fid"
            else:
                raise SystemExit(f"unknown mode {mode!r}")
            ours = run_fidlens(a, b, args, env, checkpoint, ours_mode, tmp)
            rows.append((mode, ours_mode, peer, ours))
            print(mode, peer, ours, file=sys.stderr, flush=True)

    n = 2 * args.images
    print(f"\nMachine: {platform.processor() or platform.machine()}, `nproc` {os.cpu_count()}, "
          f"device {args.device}, torch {torch.__version__}, load average "
          f"{os.getloadavg()[0]:.1f} at the end. {time.strftime('%Y-%m-%d')}. "
          f"{args.images} + {args.images} 256² PNGs, batch {args.batch_size}, "
          f"{args.workers} workers.\n")
    print("| peer (its mode) | peer: wall, images/s, peak RSS | fidlens (preprocess): wall, "
          "images/s, peak RSS | speed-up | FID peer | FID fidlens | relative difference |")
    print("|---|---|---|---:|---:|---:|---:|")
    for mode, ours_mode, peer, ours in rows:
        relative = abs(ours["fid"] - peer["fid"]) / abs(peer["fid"])
        print(f"| {mode} | {peer['seconds']:.1f} s, {n / peer['seconds']:.1f}/s, "
              f"{peer['rss_mib']:.0f} MiB | ({ours_mode}) {ours['seconds']:.1f} s, "
              f"{n / ours['seconds']:.1f}/s, {ours['rss_mib']:.0f} MiB | "
              f"**{peer['seconds'] / ours['seconds']:.2f}×** | {peer['fid']:.6f} | "
              f"{ours['fid']:.6f} | {relative:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
