"""Atomic file output: a reader (or the next Snakemake job) sees the old file or the whole
new one, never a half-written one, even if the writer is killed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP_PREFIX = ".{name}.tmp-"


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writes of `path` left behind (SIGKILL skips
    every cleanup); one target has one writer at a time (Snakemake's lock), so any other
    process's temporary is stale. Returns what was removed."""
    path = Path(path)
    own = f"{_TMP_PREFIX.format(name=path.name)}{os.getpid()}"
    stale = [p for p in path.parent.glob(_TMP_PREFIX.format(name=path.name) + "*")
             if p.name != own]
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return stale


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` if the block succeeds and is
    removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{_TMP_PREFIX.format(name=path.name)}{os.getpid()}")
    remove_stale_temporaries(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
