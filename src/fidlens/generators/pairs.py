"""Good/bad pair files (seed 000 §3.1): CSV with the header
`good_dataset,good_path,bad_dataset,bad_path`, one pair per row, each path relative to its
dataset's folder (POSIX). The schema is the attention stage's (issue #9); the discard /
replace experiment and the procedural demo read and write it here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import NamedTuple

from fidlens.files import write_text_atomic

PAIR_COLUMNS = ("good_dataset", "good_path", "bad_dataset", "bad_path")


class Pair(NamedTuple):
    good_dataset: str
    good_path: str
    bad_dataset: str
    bad_path: str


def write_pairs(path: str | os.PathLike, pairs: Sequence[Pair]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PAIR_COLUMNS)
    writer.writerows(pairs)
    write_text_atomic(path, buffer.getvalue())


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Every pair of a pair file; ValueError naming the file and row for a wrong header, an
    empty field or no pairs at all. Further columns are allowed and ignored."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PAIR_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: a pair file needs the columns {', '.join(PAIR_COLUMNS)}"
                             f"; missing {', '.join(missing)} (header: {reader.fieldnames})")
        pairs = []
        for line, row in enumerate(reader, start=2):
            values = [(row[c] or "").strip() for c in PAIR_COLUMNS]
            empty = [c for c, v in zip(PAIR_COLUMNS, values, strict=True) if not v]
            if empty:
                raise ValueError(f"{path} line {line}: empty {', '.join(empty)}")
            pairs.append(Pair(*values))
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs
