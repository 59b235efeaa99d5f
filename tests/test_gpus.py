"""Free-GPU selection by lock files (fidlens.gpus), with fake device lists: no GPU needed.

Snakemake's local scheduler limits GPU jobs (`--resources gpu=N`) but gives them no device
id; each job claims a free device itself. These tests run the claims in this process and in
concurrent subprocesses, as jobs on one machine would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fidlens import extract, gpus


@pytest.fixture(autouse=True)
def no_process_claim():
    gpus.release_process_claim()
    yield
    gpus.release_process_claim()


KEYS = ["GPU-aaaa", "GPU-bbbb"]


def test_claims_take_free_devices_in_order_and_none_when_all_are_taken(tmp_path):
    first = gpus.try_claim(KEYS, tmp_path)
    second = gpus.try_claim(KEYS, tmp_path)
    assert (first.index, first.key) == (0, "GPU-aaaa")
    assert (second.index, second.key) == (1, "GPU-bbbb")
    assert gpus.try_claim(KEYS, tmp_path) is None
    assert f"pid {os.getpid()}" in first.lock_path.read_text()
    first.release()
    again = gpus.try_claim(KEYS, tmp_path)
    assert again.index == 0
    again.release()
    second.release()


def test_lock_file_names_are_safe_for_any_device_key(tmp_path):
    path = gpus.lock_file(tmp_path, "MIG-1/2 :x")
    assert path.parent == tmp_path and path.name == "gpu-MIG-1_2__x.lock"


def test_device_keys_prefer_uuids_then_visible_devices_then_indices():
    assert gpus.device_keys(["GPU-1", "GPU-2"], "3,5") == ["GPU-1", "GPU-2"]
    assert gpus.device_keys([None, None], "3, 5") == ["visible-3", "visible-5"]
    assert gpus.device_keys([None, "GPU-2", None], "7") == ["visible-7", "GPU-2", "index-2"]
    assert gpus.device_keys([], None) == []


def test_claim_waits_for_a_device_to_come_free(tmp_path, caplog):
    held = [gpus.try_claim(KEYS, tmp_path), gpus.try_claim(KEYS, tmp_path)]
    waits = []

    def sleep(seconds):  # the other job ends while this one waits
        waits.append(seconds)
        held[1].release()

    with caplog.at_level("INFO", logger="fidlens"):
        got = gpus.claim(KEYS, tmp_path, poll_s=0.5, sleep=sleep)
    assert got.index == 1 and waits == [0.5]
    assert "all 2 GPUs are taken" in caplog.text
    got.release()
    held[0].release()


def test_claim_times_out_with_what_to_do(tmp_path):
    held = gpus.try_claim(["only"], tmp_path)
    now = iter([0.0, 5.0, 11.0])
    with pytest.raises(RuntimeError, match=r"--resources gpu=N"):
        gpus.claim(["only"], tmp_path, timeout_s=10, sleep=lambda s: None,
                   clock=lambda: next(now))
    held.release()
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        gpus.claim([], tmp_path)


def test_one_claim_per_process(tmp_path):
    first = gpus.claim_for_process(KEYS, tmp_path)
    assert gpus.claim_for_process(KEYS, tmp_path) is first  # not a second device
    gpus.release_process_claim()
    assert gpus.try_claim(KEYS, tmp_path).index == 0


HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from fidlens import gpus
    keys, lock_dir, hold_s = json.loads(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    start = time.monotonic()
    claim = gpus.claim(keys, lock_dir, poll_s=0.05)
    print(json.dumps({"index": claim.index, "waited": time.monotonic() - start}), flush=True)
    time.sleep(hold_s)
    """
)


def holder(keys, lock_dir, hold_s):
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(keys), str(lock_dir), str(hold_s)],
        stdout=subprocess.PIPE, text=True,
    )


def test_concurrent_jobs_get_distinct_devices_and_a_third_waits(tmp_path):
    jobs = [holder(KEYS, tmp_path, 3.0), holder(KEYS, tmp_path, 3.0)]
    claimed = [json.loads(job.stdout.readline()) for job in jobs]
    assert sorted(c["index"] for c in claimed) == [0, 1]
    third = holder(KEYS, tmp_path, 0.0)
    result = json.loads(third.stdout.readline())
    assert result["waited"] > 0.5  # it got a device only when one of the two ended
    for job in [*jobs, third]:
        assert job.wait(timeout=30) == 0


def test_a_killed_job_frees_its_device(tmp_path):
    job = holder(["only"], tmp_path, 60.0)
    assert json.loads(job.stdout.readline())["index"] == 0
    assert gpus.try_claim(["only"], tmp_path) is None
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    claim = gpus.try_claim(["only"], tmp_path)
    assert claim is not None and claim.index == 0
    claim.release()


class FakeProperties:
    def __init__(self, uuid):
        self.uuid = uuid


def fake_cuda(monkeypatch, uuids):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(uuids))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: FakeProperties(uuids[i]))


def test_resolve_device_takes_a_free_gpu_and_cuda_n_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    uuids = ["GPU-0000", "GPU-1111", "GPU-2222"]
    fake_cuda(monkeypatch, uuids)
    busy = gpus.try_claim(uuids[:1], tmp_path)  # another job holds cuda:0
    assert extract.resolve_device("cuda") == torch.device("cuda", 1)
    assert extract.resolve_device("auto") == torch.device("cuda", 1)  # the same claim
    assert extract.resolve_device("cuda:0") == torch.device("cuda", 0)  # pinned: no lock
    assert (tmp_path / "gpu-GPU-1111.lock").read_text().startswith(f"pid {os.getpid()}")
    busy.release()


def test_extraction_script_records_the_device(tmp_path):
    """The cache says which device made it (`device`), outside the resume key."""
    from PIL import Image

    from fidlens.cache import read_features

    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.new("RGB", (16, 16), (40 * i, 90, 200)).save(images / f"{i}.png")
    out = tmp_path / "f.h5"
    env = {**os.environ, "FIDLENS_WEIGHTS_DIR": str(tmp_path / "w"),
           "TORCH_HOME": str(tmp_path / "t")}
    script = Path(__file__).resolve().parents[1] / "workflow_scripts" / "extract_features.py"
    result = subprocess.run(
        [sys.executable, str(script), "--images", str(images), "--extractor", "inception",
         "--weights", "random", "--batch-size", "2", "--device", "cpu", "--cpus", "1",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1 cores: 0 decoding workers, 1 torch threads on cpu" in result.stderr
    attrs = read_features(out).attrs
    assert attrs["device"] == "cpu" and attrs["cpu_threads"] == 1
    assert not attrs["tf32_matmul"]


def test_tf32_only_when_asked(monkeypatch):
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark)
    try:
        cuda = torch.device("cuda", 0)
        extract.set_exact_numerics(cuda, allow_tf32=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cudnn.benchmark  # autotuning stays off
        extract.set_exact_numerics(cuda)
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        extract.set_exact_numerics(torch.device("cpu"), allow_tf32=True)
        assert not torch.backends.cuda.matmul.allow_tf32  # the CPU changes nothing
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved
