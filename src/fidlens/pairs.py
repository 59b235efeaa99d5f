"""Good/bad image pairs: the pair-file schema (seed 000's good image above its bad twin).

A pair file is a CSV with the columns `good_dataset,good_path,bad_dataset,bad_path`: each row
names a good image and the bad image it stands for, each by a configured dataset and the
image's path relative to that dataset's folder or zip (POSIX, as the dataset's manifest lists
it). The demo writes one (each `gen_strong` image with the `real_a` image it was made from);
the generator and discard/replace stages write the same schema.

Light on purpose (csv only): the workflow validates pair files while it parses.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fidlens.files import atomic_path

PAIR_COLUMNS = ("good_dataset", "good_path", "bad_dataset", "bad_path")
DEMO_GOOD_SET = "real_a"  # the demo's pairs: real_a images (good) ...


class PairFileError(ValueError):
    """A pair file that does not follow the schema or names what does not exist."""


@dataclass(frozen=True)
class Pair:
    good_dataset: str
    good_path: str
    bad_dataset: str
    bad_path: str
    row: int = 0  # line of the file (the header is line 1); 0 for pairs made in memory

    def as_row(self) -> dict[str, str]:
        return {column: getattr(self, column) for column in PAIR_COLUMNS}


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """The pairs of a pair file, in file order (further columns are allowed and ignored; blank
    lines are skipped).

    Raises FileNotFoundError for a missing file and PairFileError, naming the file and the
    line, for a header without the four columns or a row with an empty one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [field.strip() for field in next(reader, [])]
        missing = [column for column in PAIR_COLUMNS if column not in header]
        if missing:
            raise PairFileError(
                f"{path}: line 1 must be a header with the columns {','.join(PAIR_COLUMNS)}; "
                f"missing {', '.join(missing)} (found: {','.join(header) or 'an empty file'})"
            )
        where = [header.index(column) for column in PAIR_COLUMNS]
        pairs = []
        for line, fields in enumerate(reader, start=2):
            if all(not field.strip() for field in fields):
                continue
            values = [fields[i].strip() if i < len(fields) else "" for i in where]
            empty = [column for column, value in zip(PAIR_COLUMNS, values, strict=True)
                     if not value]
            if empty:
                raise PairFileError(f"{path}: line {line} has no {', '.join(empty)}")
            pairs.append(Pair(*values, row=line))
    return pairs


def write_pairs(path: str | os.PathLike, pairs: Sequence[Pair]) -> None:
    """Write a pair file atomically (header first)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PAIR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for pair in pairs:
            writer.writerow(pair.as_row())


def pair_problems(
    pairs: Sequence[Pair], images: Mapping[str, Sequence[str] | None], where: str
) -> list[str]:
    """Every pair that names a dataset not configured (not a key of `images`) or an image its
    dataset does not hold. `images[name]` is the dataset's image list, or None when it is not
    known yet (a dataset a workflow rule writes): its rows are checked for the name only.
    `where` starts each message (the config key and file)."""
    problems = []
    listed = {name: set(paths) for name, paths in images.items() if paths is not None}
    for pair in pairs:
        for role in ("good", "bad"):
            dataset, relpath = getattr(pair, f"{role}_dataset"), getattr(pair, f"{role}_path")
            if dataset not in images:
                problems.append(
                    f"{where} line {pair.row}: {role}_dataset {dataset!r} is not a configured "
                    f"dataset (configured: {', '.join(images)})"
                )
            elif dataset in listed and relpath not in listed[dataset]:
                problems.append(
                    f"{where} line {pair.row}: {role}_path {relpath!r} is not an image of "
                    f"dataset {dataset!r} (paths are relative to the dataset's folder or zip)"
                )
    return problems


def pairs_of_source(pairs: Sequence[Pair], source: str) -> list[Pair]:
    """The pairs whose bad image belongs to `source` (a comparison's generated set)."""
    return [pair for pair in pairs if pair.bad_dataset == source]


def demo_bad_set(generated: Mapping[str, float]) -> str | None:
    """... and the demo's generated set whose copies of them are the bad images: the
    strongest (the first of equals), whose defects are plainest; None without one."""
    if not generated:
        return None
    strongest = max(generated.values())
    return next(name for name, strength in generated.items() if strength == strongest)
