"""Batched, resumable feature extraction: one dataset through one extractor into one cache.

Batch b always holds images [b*B, (b+1)*B) of the dataset order, so a resumed run computes
exactly the batches an uninterrupted run would. Each finished batch is saved atomically in a
`.partial` folder beside the output (outside Snakemake's declared output, which Snakemake
deletes before a rerun); the cache itself appears atomically at the end.

A saved batch is reused only if the run's settings (extractor, weights, preprocessing, device
and its numeric modes) are the same AND its images still have the content hashes they had:
a sample folder regenerated under the same file names after a crash must not leak old
features into the new cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fidlens.cache import FeatureCache, write_cache
from fidlens.datasets import (
    DEFAULT_MAX_PIXELS,
    BadImageError,
    ImageSource,
    ManifestRow,
    decode_rgb,
    sha1_hex,
)
from fidlens.extractors.base import Extractor, Preprocessor
from fidlens.files import atomic_path
from fidlens.gpus import claim_cuda_device
from fidlens.provenance import package_versions_json

log = logging.getLogger("fidlens")


@dataclass(frozen=True)
class ExtractionSettings:
    batch_size: int = 50
    device: str = "auto"
    workers: int = 2
    on_bad_image: str = "error"  # "error" or "skip"
    resolution: int | None = None  # working resolution, None = native
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are bad images
    allow_tf32: bool = False  # opt-in: TF32 on CUDA (faster, ~1e-3 relative), stamped


def resolve_device(device: str) -> torch.device:
    """`cuda` without an index (and `auto` on a machine with GPUs) takes a free GPU, held
    until the process ends (fidlens.gpus: one lock file per device); `cuda:N` is used as
    given."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but CUDA is not available here")
    if device == "cuda":
        return torch.device("cuda", claim_cuda_device().index)
    return torch.device(device)


def set_exact_numerics(device: torch.device, allow_tf32: bool = False) -> None:
    """IEEE float32 on CUDA: no TF32 in matrix products or convolutions (TF32 keeps 10
    mantissa bits and moves features by ~1e-3 relative) unless `allow_tf32` opts in, and no
    cuDNN autotuning (it may pick different kernels from run to run). Nothing to change on
    the CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(allow_tf32)
        torch.backends.cudnn.allow_tf32 = bool(allow_tf32)
        torch.backends.cudnn.benchmark = False


def device_provenance(device: torch.device) -> dict[str, str | bool]:
    """The device type and model and the numeric modes that change float results (the CPU
    thread count too: it changes how convolutions split their sums, ~1e-5 relative); part of
    the resume key, so a resumed cache never mixes batches computed in different ways."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model() or platform.machine()
    return {
        "device_type": device.type,
        "device_name": name,
        "cpu_threads": torch.get_num_threads(),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


class _DecodedImages(torch.utils.data.Dataset):
    """Reads, hashes, decodes and preprocesses one image; errors are returned, not raised,
    so the main process can name the file and apply the on_bad_image policy.

    The image goes back as a numpy array, not a tensor: DataLoader workers hand tensors over
    through shared memory (/dev/shm, 64 MB in a default Docker container, where a batch of
    299² float images does not fit and the run hangs), numpy arrays through a pipe."""

    def __init__(self, source: ImageSource, preprocess: Preprocessor, settings):
        self.source, self.preprocess = source, preprocess
        self.resolution, self.max_pixels = settings.resolution, settings.max_pixels

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        relpath = self.source.images[index]
        try:
            data = self.source.read_bytes(relpath)
            digest = sha1_hex(data)
            prepared = self.preprocess(decode_rgb(data, self.resolution, self.max_pixels))
            if isinstance(prepared, torch.Tensor):
                prepared = prepared.numpy()
            return index, digest, prepared, None
        except (BadImageError, OSError) as error:
            return index, None, None, str(error)


def _keep_list(batch):
    return batch


@contextmanager
def _worker_failures_explained(settings: ExtractionSettings):
    """A decoding worker that dies (out of memory, a signal) ends the job with the cause and
    what to change, instead of torch's bare message."""
    try:
        yield
    except RuntimeError as error:
        if "DataLoader worker" not in str(error) and "shared memory" not in str(error):
            raise
        raise RuntimeError(
            f"an image-decoding worker failed: {error}. Decoding uses {settings.workers} "
            f"worker processes with batches of {settings.batch_size}: lower `threads` (fewer "
            "workers) or `batch_size`, or give the machine or container more memory (for "
            "shared memory: docker run --shm-size)"
        ) from error


def extract_features(
    source: ImageSource,
    extractor: Extractor,
    out_path: str | Path,
    settings: ExtractionSettings | None = None,
    dataset_name: str | None = None,
    progress: bool = True,
    manifest: list[ManifestRow] | None = None,
) -> FeatureCache:
    """Extract every image of `source` with `extractor` and write the cache to `out_path`.

    `manifest` (rows of the dataset's manifest, see `fidlens.datasets.read_manifest`) gives
    the content hashes that saved batches are checked against, and every image read must
    still have its manifest hash; without one, the files of saved batches are hashed again.
    Raises BadImageError (a bad image, with on_bad_image "error"), ValueError (a manifest
    that does not list this dataset's images, or an image changed since its manifest).
    """
    settings = settings or ExtractionSettings()
    out_path = Path(out_path)
    label = f"dataset {dataset_name!r} ({source.root})" if dataset_name else str(source.root)
    expected = _manifest_hashes(source, manifest, label)
    if source.broken and settings.on_bad_image == "error":
        raise BadImageError(
            f"{label}: {len(source.broken)} broken symbolic links:\n  "
            + "\n  ".join(source.broken)
            + "\n(mend or remove them, or set on_bad_image: skip to leave them out, listed)"
        )
    device = torch.device("cpu") if extractor.cpu_only else resolve_device(settings.device)
    set_exact_numerics(device, settings.allow_tf32)
    model = extractor.prepare(device)  # its memory layout (channels_last) is its own choice
    provenance = {
        **extractor.provenance(),
        **device_provenance(device),
        "dataset": dataset_name or source.root.name,
        "source_path": str(source.root.resolve()),
        "source_kind": source.kind,
        "resolution": settings.resolution or "native",
        "on_bad_image": settings.on_bad_image,
        "max_image_pixels": settings.max_pixels,
        "batch_size": settings.batch_size,
        "package_versions": package_versions_json(),
        "device": str(device),  # which GPU of several (not in the resume key)
    }
    partial = _PartialRun(out_path, _run_key(source, provenance))
    batches = _batches(len(source), settings.batch_size)
    content = _ContentHashes(source, expected)
    todo = [b for b in range(len(batches)) if not partial.has(b, content, batches[b])]
    if len(todo) < len(batches):
        log.info("resuming %s: %d of %d batches already done", label, len(batches) - len(todo),
                 len(batches))
    loader = torch.utils.data.DataLoader(
        _DecodedImages(source, extractor.preprocessor(), settings),
        batch_sampler=[batches[b] for b in todo],
        num_workers=settings.workers,
        collate_fn=_keep_list,
    )
    bar = tqdm(total=len(source), initial=len(source) - sum(len(batches[b]) for b in todo),
               desc=f"{extractor.name} {provenance['dataset']}", unit="img",
               disable=not progress, file=sys.stderr, mininterval=2.0)
    with torch.inference_mode(), _worker_failures_explained(settings):
        for b, items in zip(todo, loader, strict=True):
            content.check(items, label)
            arrays = _run_batch(model, items, source, label, settings, device)
            arrays["content_sha1"] = np.array(content.of(batches[b]), dtype="U40")
            partial.save(b, arrays)
            bar.update(len(items))
    bar.close()
    cache = partial.assemble(len(batches), source, provenance, skipped=source.broken,
                             logit_names=extractor.logit_names)
    write_cache(out_path, cache)
    partial.remove()
    if cache.skipped:
        log.warning("%s: skipped %d bad images:\n  %s", label, len(cache.skipped),
                    "\n  ".join(cache.skipped))
    return cache


def _manifest_hashes(source: ImageSource, manifest, label: str) -> list[str] | None:
    """The manifest's sha1 per image of `source`, after checking it lists the same images."""
    if manifest is None:
        return None
    listed = [row.path for row in manifest]
    if listed != source.images:
        extra = sorted(set(listed) - set(source.images))[:5]
        absent = sorted(set(source.images) - set(listed))[:5]
        raise ValueError(
            f"{label}: the manifest does not list the images the dataset holds now "
            f"({len(listed)} listed, {len(source.images)} found; only in the manifest: "
            f"{extra or 'none'}; only in the dataset: {absent or 'none'}). Make the manifest "
            "again (snakemake reruns it when the dataset changes)."
        )
    return [row.sha1 for row in manifest]


class _ContentHashes:
    """sha1 of each image's bytes: from the manifest when there is one, else read and hashed
    on demand (only the images of saved batches need it before they are read anyway)."""

    def __init__(self, source: ImageSource, expected: list[str] | None):
        self.source, self.expected = source, expected
        self._hashed: dict[int, str] = {}

    def of(self, indices: list[int]) -> list[str]:
        if self.expected is not None:
            return [self.expected[i] for i in indices]
        return [self._hash(i) for i in indices]

    def _hash(self, index: int) -> str:
        if index not in self._hashed:
            try:
                self._hashed[index] = sha1_hex(self.source.read_bytes(self.source.images[index]))
            except OSError:
                self._hashed[index] = ""  # unreadable: it is reported when the batch runs
        return self._hashed[index]

    def check(self, items, label: str) -> None:
        """Every image read must be the one the manifest (or the first hashing) saw."""
        for index, digest, _, _ in items:
            if digest is None:
                continue
            if self.expected is None:
                self._hashed.setdefault(index, digest)
            elif digest != self.expected[index]:
                raise ValueError(
                    f"{label}: image {self.source.images[index]!r} changed after its manifest "
                    f"was made (sha1 {digest}, manifest {self.expected[index]}); make the "
                    "manifest again"
                )


def _run_batch(model, items, source, label, settings, device) -> dict[str, np.ndarray]:
    good = [item for item in items if item[3] is None]
    skipped = []
    for index, _, _, reason in items:
        if reason is None:
            continue
        relpath = source.images[index]
        if settings.on_bad_image == "error":
            raise BadImageError(
                f"{label}: cannot read image {relpath!r}: {reason} "
                "(set on_bad_image: skip to leave bad images out, listed in the cache)"
            )
        skipped.append(f"{relpath}: {reason}")
    result = {
        "index": np.array([item[0] for item in good], dtype=np.int64),
        "sha1": np.array([item[1] for item in good], dtype="U40"),
        "skipped": np.array(skipped, dtype=str),
    }
    if good:
        outputs = model(model.collate([item[2] for item in good], device))
        for name, value in outputs.items():
            result[name] = _as_array(value)
        if model.keep_output:  # images the extractor leaves out (dlib: no face found)
            keep = result[model.keep_output].astype(bool)
            result["excluded"] = np.array(
                [f"{source.images[i]}: {model.excluded_reason}" for i in result["index"][~keep]],
                dtype=str,
            )
            for name in ("index", "sha1", *outputs):
                result[name] = result[name][keep]
    return result


def _as_array(value) -> np.ndarray:
    """An output as numpy: floating point as float32, other dtypes (bool, int) kept."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value


def _batches(n: int, batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
    return [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]


def _run_key(source: ImageSource, provenance: dict) -> str:
    """Partial results are reused only for the same images and the same settings."""
    payload = {
        key: value
        for key, value in provenance.items()
        if key not in ("package_versions", "device")
    }
    payload["images"] = source.images
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# What a saved batch holds besides the extractor's outputs.
_BOOKKEEPING = ("index", "sha1", "skipped", "excluded", "content_sha1")


class _PartialRun:
    """Saved batches of an interrupted run, each with the content hashes of its images."""

    def __init__(self, out_path: Path, key: str):
        self.folder = out_path.with_name(f".{out_path.name}.partial")
        key_file = self.folder / "key.txt"
        if self.folder.exists() and (not key_file.exists() or key_file.read_text() != key):
            shutil.rmtree(self.folder)  # made for other images or settings: start afresh
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)

    def _file(self, b: int) -> Path:
        return self.folder / f"batch_{b:07d}.npz"

    def has(self, b: int, content: _ContentHashes, indices: list[int]) -> bool:
        """Batch b is saved and was made from the images' present content; a stale one is
        removed."""
        path = self._file(b)
        if not path.exists():
            return False
        try:
            with np.load(path) as data:
                saved = [str(s) for s in data["content_sha1"]]
        except (OSError, KeyError, ValueError):
            saved = None
        if saved == content.of(indices):
            return True
        log.info("discarding saved batch %d: its images changed since it was computed", b)
        path.unlink()
        return False

    def save(self, b: int, arrays: dict[str, np.ndarray]) -> None:
        with atomic_path(self._file(b)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # atomic: a killed run never leaves a half batch

    def load_all(self, n_batches: int) -> Iterator[dict[str, np.ndarray]]:
        for b in range(n_batches):
            with np.load(self._file(b)) as data:
                yield {name: data[name] for name in data.files}

    def assemble(
        self,
        n_batches: int,
        source: ImageSource,
        provenance: dict,
        skipped: list[str],
        logit_names=None,
    ) -> FeatureCache:
        parts = list(self.load_all(n_batches))
        index = np.concatenate([p["index"] for p in parts])
        skipped = [*skipped, *(str(s) for p in parts for s in p["skipped"])]
        excluded = [str(s) for p in parts for s in p.get("excluded", ())]
        if index.size == 0:
            if excluded:
                raise ValueError(
                    f"{provenance['dataset']} ({source.root}): the extractor left out every "
                    f"one of its {len(excluded)} readable images ({provenance.get('extractor')}"
                    f": {provenance.get('excluded_reason', 'excluded')}); nothing to compare"
                )
            raise BadImageError(
                f"{provenance['dataset']} ({source.root}): none of its {len(source)} images "
                "could be read:\n  " + "\n  ".join(skipped)
            )
        with_output = [p for p in parts if p["index"].size]
        outputs = {
            name: np.concatenate([p[name] for p in with_output])
            for name in with_output[0]
            if name not in _BOOKKEEPING
        }
        attrs = {
            **provenance,
            "n_images": int(index.size),
            "n_skipped": len(skipped),
            "n_excluded": len(excluded),
        }
        return FeatureCache(
            features=outputs.pop("features"),
            attrs=attrs,
            paths=[source.images[i] for i in index],
            sha1=[str(s) for p in parts for s in p["sha1"]],
            logits=outputs.pop("logits", None),
            skipped=skipped,
            outputs=outputs,
            excluded=excluded,
            logit_names=list(logit_names) if logit_names else None,
        )

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
