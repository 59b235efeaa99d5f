"""Batched, resumable feature extraction: one dataset through one extractor into one cache.

Batch b always holds images [b*B, (b+1)*B) of the dataset order, so a resumed run computes
exactly the batches an uninterrupted run would. Each finished batch is saved atomically in a
`.partial` folder beside the output (outside Snakemake's declared output, which Snakemake
deletes before a rerun); the cache itself appears atomically at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fidlens.cache import FeatureCache, write_cache
from fidlens.datasets import BadImageError, ImageSource, decode_rgb, sha1_hex
from fidlens.extractors.base import Extractor, Preprocessor
from fidlens.files import atomic_path
from fidlens.provenance import package_versions_json

log = logging.getLogger("fidlens")


@dataclass(frozen=True)
class ExtractionSettings:
    batch_size: int = 50
    device: str = "auto"
    workers: int = 2
    on_bad_image: str = "error"  # "error" or "skip"
    resolution: int | None = None  # working resolution, None = native


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but CUDA is not available here")
    return torch.device(device)


class _DecodedImages(torch.utils.data.Dataset):
    """Reads, hashes, decodes and preprocesses one image; errors are returned, not raised,
    so the main process can name the file and apply the on_bad_image policy."""

    def __init__(self, source: ImageSource, preprocess: Preprocessor, resolution: int | None):
        self.source, self.preprocess, self.resolution = source, preprocess, resolution

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        relpath = self.source.images[index]
        try:
            data = self.source.read_bytes(relpath)
            digest = sha1_hex(data)
            tensor = self.preprocess(decode_rgb(data, self.resolution))
            return index, digest, tensor, None
        except (BadImageError, OSError) as error:
            return index, None, None, str(error)


def _keep_list(batch):
    return batch


def extract_features(
    source: ImageSource,
    extractor: Extractor,
    out_path: str | Path,
    settings: ExtractionSettings | None = None,
    dataset_name: str | None = None,
    progress: bool = True,
) -> FeatureCache:
    """Extract every image of `source` with `extractor` and write the cache to `out_path`."""
    settings = settings or ExtractionSettings()
    out_path = Path(out_path)
    label = f"dataset {dataset_name!r} ({source.root})" if dataset_name else str(source.root)
    device = resolve_device(settings.device)
    # channels_last weights and inputs: the faster convolution kernels on CPU and GPU alike.
    model = extractor.to(device, memory_format=torch.channels_last).eval()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    provenance = {
        **extractor.provenance(),
        "dataset": dataset_name or source.root.name,
        "source_path": str(source.root.resolve()),
        "source_kind": source.kind,
        "resolution": settings.resolution or "native",
        "on_bad_image": settings.on_bad_image,
        "batch_size": settings.batch_size,
        "package_versions": package_versions_json(),
    }
    partial = _PartialRun(out_path, _run_key(source, provenance))
    batches = _batches(len(source), settings.batch_size)
    todo = [b for b in range(len(batches)) if not partial.has(b)]
    if len(todo) < len(batches):
        log.info("resuming %s: %d of %d batches already done", label, len(batches) - len(todo),
                 len(batches))
    loader = torch.utils.data.DataLoader(
        _DecodedImages(source, extractor.preprocessor(), settings.resolution),
        batch_sampler=[batches[b] for b in todo],
        num_workers=settings.workers,
        collate_fn=_keep_list,
        pin_memory=device.type == "cuda",
    )
    bar = tqdm(total=len(source), initial=len(source) - sum(len(batches[b]) for b in todo),
               desc=f"{extractor.name} {provenance['dataset']}", unit="img",
               disable=not progress, file=sys.stderr, mininterval=2.0)
    with torch.inference_mode():
        for b, items in zip(todo, loader, strict=True):
            partial.save(b, _run_batch(model, items, source, label, settings, device))
            bar.update(len(items))
    bar.close()
    cache = partial.assemble(len(batches), source, provenance)
    write_cache(out_path, cache)
    partial.remove()
    if cache.skipped:
        log.warning("%s: skipped %d bad images:\n  %s", label, len(cache.skipped),
                    "\n  ".join(cache.skipped))
    return cache


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
        batch = torch.stack([item[2] for item in good]).to(device, non_blocking=True)
        outputs = model(batch.contiguous(memory_format=torch.channels_last))
        for name, value in outputs.items():
            result[name] = value.float().cpu().numpy()
    return result


def _batches(n: int, batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
    return [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]


def _run_key(source: ImageSource, provenance: dict) -> str:
    """Partial results are reused only for the same images and the same settings."""
    payload = {key: value for key, value in provenance.items() if key != "package_versions"}
    payload["images"] = source.images
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class _PartialRun:
    def __init__(self, out_path: Path, key: str):
        self.folder = out_path.with_name(f".{out_path.name}.partial")
        key_file = self.folder / "key.txt"
        if self.folder.exists() and (not key_file.exists() or key_file.read_text() != key):
            shutil.rmtree(self.folder)  # made for other images or settings: start afresh
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)

    def _file(self, b: int) -> Path:
        return self.folder / f"batch_{b:07d}.npz"

    def has(self, b: int) -> bool:
        return self._file(b).exists()

    def save(self, b: int, arrays: dict[str, np.ndarray]) -> None:
        with atomic_path(self._file(b)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # atomic: a killed run never leaves a half batch

    def load_all(self, n_batches: int) -> Iterator[dict[str, np.ndarray]]:
        for b in range(n_batches):
            with np.load(self._file(b)) as data:
                yield {name: data[name] for name in data.files}

    def assemble(self, n_batches: int, source: ImageSource, provenance: dict) -> FeatureCache:
        parts = list(self.load_all(n_batches))
        index = np.concatenate([p["index"] for p in parts])
        skipped = [str(s) for p in parts for s in p["skipped"]]
        if index.size == 0:
            raise BadImageError(
                f"{provenance['dataset']} ({source.root}): none of its {len(source)} images "
                "could be read:\n  " + "\n  ".join(skipped)
            )
        with_output = [p for p in parts if "features" in p]
        logits = (
            np.concatenate([p["logits"] for p in with_output]) if "logits" in with_output[0]
            else None
        )
        attrs = {**provenance, "n_images": int(index.size), "n_skipped": len(skipped)}
        return FeatureCache(
            features=np.concatenate([p["features"] for p in with_output]),
            attrs=attrs,
            paths=[source.images[i] for i in index],
            sha1=[str(s) for p in parts for s in p["sha1"]],
            logits=logits,
            skipped=skipped,
        )

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
