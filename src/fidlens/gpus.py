"""Which GPU a job takes when several jobs share a machine with several GPUs.

Snakemake's local scheduler counts GPU jobs (`--resources gpu=N`) but hands them no device
id, so every job would otherwise run on cuda:0. Here each job claims a free device itself: it
holds an exclusive lock (fcntl.flock) on one lock file per device, in a folder shared by the
jobs of one user on one machine. The kernel drops the lock when the process ends, however it
ends (kill -9 included), so a crashed job never keeps a device. A job that finds every device
taken waits for one. The claim is logged and the device recorded in the cache (`device`).

Devices are told apart by their UUID, not their index: under SLURM every job may see its own
GPU as cuda:0 (CUDA_VISIBLE_DEVICES per job), and the UUIDs keep them apart there too.

The locking is plain Python on device keys (`claim`), so it is tested without a GPU; only
`claim_cuda_device` asks torch which devices there are.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger("fidlens")

LOCK_DIR_ENV = "FIDLENS_GPU_LOCK_DIR"
POLL_SECONDS = 2.0


@dataclass
class DeviceClaim:
    """Device `index` (in this process's numbering) with key `key`, held through `lock_path`
    until `release` or the end of the process."""

    index: int
    key: str
    lock_path: Path
    handle: IO[str] | None = field(default=None, repr=False)

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file drops the flock
            self.handle = None


def default_lock_dir() -> Path:
    """$FIDLENS_GPU_LOCK_DIR, else a folder per user under the temporary folder (node-local:
    only the jobs of one machine share GPUs)."""
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"fidlens-gpu-locks-{os.getuid()}"


def lock_file(lock_dir: Path, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key) or "unnamed"
    return Path(lock_dir) / f"gpu-{safe}.lock"


def try_claim(keys: Sequence[str], lock_dir: Path | None = None) -> DeviceClaim | None:
    """The first device of `keys` (index order) whose lock is free, now locked; None if every
    device is taken."""
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    for index, key in enumerate(keys):
        path = lock_file(lock_dir, key)
        handle = open(path, "a+", encoding="utf-8")  # kept open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        return DeviceClaim(index, key, path, handle)
    return None


def claim(
    keys: Sequence[str],
    lock_dir: Path | None = None,
    timeout_s: float | None = None,
    poll_s: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DeviceClaim:
    """A free device of `keys`, waiting (polling every `poll_s`) while all are taken;
    RuntimeError after `timeout_s` (None: wait as long as it takes)."""
    if not keys:
        raise RuntimeError("no GPU to claim: this process sees no CUDA device")
    start, told = clock(), False
    while True:
        held = try_claim(keys, lock_dir)
        if held is not None:
            return held
        if timeout_s is not None and clock() - start >= timeout_s:
            raise RuntimeError(
                f"all {len(keys)} GPUs stayed taken by other fidlens jobs for {timeout_s:g} s "
                f"(lock files in {lock_dir or default_lock_dir()}); run fewer GPU jobs at once "
                "(snakemake --resources gpu=N) or set device: cuda:N"
            )
        if not told:
            log.info("all %d GPUs are taken by other fidlens jobs; waiting for one "
                     "(lock files in %s)", len(keys), lock_dir or default_lock_dir())
            told = True
        sleep(poll_s)


def device_keys(uuids: Sequence[str | None], visible: str | None) -> list[str]:
    """A key per device in this process's order: its UUID where known, else its entry in
    CUDA_VISIBLE_DEVICES, else its index."""
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    keys = []
    for index, uuid in enumerate(uuids):
        if uuid:
            keys.append(str(uuid))
        elif index < len(entries):
            keys.append(f"visible-{entries[index]}")
        else:
            keys.append(f"index-{index}")
    return keys


# One claim per process: extraction resolves its device more than once (the script, then the
# library), and a second flock on the same file from the same process would block on itself.
_HELD: DeviceClaim | None = None


def claim_for_process(keys: Sequence[str], lock_dir: Path | None = None,
                      timeout_s: float | None = None, **kwargs) -> DeviceClaim:
    """`claim`, once per process: later calls return the device already held."""
    global _HELD
    if _HELD is not None and _HELD.handle is not None and _HELD.key in keys:
        return _HELD
    _HELD = claim(keys, lock_dir, timeout_s, **kwargs)
    log.info("using GPU cuda:%d (%s; lock %s)", _HELD.index, _HELD.key, _HELD.lock_path)
    return _HELD


def release_process_claim() -> None:
    global _HELD
    if _HELD is not None:
        _HELD.release()
        _HELD = None


def claim_cuda_device(timeout_s: float | None = None) -> DeviceClaim:
    """A free CUDA device of those this process sees, held until the process ends."""
    import torch

    count = torch.cuda.device_count()
    uuids = []
    for index in range(count):
        try:
            uuids.append(str(torch.cuda.get_device_properties(index).uuid))
        except (RuntimeError, AttributeError):
            uuids.append(None)
    return claim_for_process(device_keys(uuids, os.environ.get("CUDA_VISIBLE_DEVICES")),
                             timeout_s=timeout_s)
