"""Atomic output: the old file or the whole new one, never a half-written one."""

import pytest

from fidlens.files import atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_temporaries_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "A.h5"
    leftover = tmp_path / ".A.h5.tmp-4242"  # a SIGKILLed writer skips every cleanup
    leftover.write_bytes(b"half a cache")
    other = tmp_path / ".B.h5.tmp-4242"  # another target's write is not ours to remove
    other.write_bytes(b"x")
    write_text_atomic(target, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".B.h5.tmp-4242", "A.h5"]
