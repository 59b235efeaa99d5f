"""Provenance: package versions carry the git commit of the checkout fidlens was imported from."""

import subprocess
from pathlib import Path

import pytest

from fidlens import provenance

REPO = Path(__file__).resolve().parents[1]


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def no_repo_above(tmp_path, monkeypatch):
    """Git looks for no repository above tmp_path (wherever the temporary folder lies)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    return tmp_path


def _package(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text("")
    return folder


def test_this_checkout_records_its_commit():
    head = _git(REPO, "rev-parse", "HEAD")
    recorded = provenance.package_versions()["fidlens_git"]
    assert recorded in (head, f"{head}-dirty")
    assert provenance.git_commit() == recorded
    assert Path(provenance.PACKAGE_DIR) == REPO / "src" / "fidlens"


def test_outside_a_git_checkout_says_so(no_repo_above, monkeypatch):
    monkeypatch.setattr(provenance, "PACKAGE_DIR", _package(no_repo_above / "site" / "fidlens"))
    assert provenance.package_versions()["fidlens_git"] == "not a git checkout"


def test_dirty_only_for_changes_to_tracked_files(no_repo_above):
    package = _package(no_repo_above / "repo" / "src" / "pkg")
    _git(package.parents[1], "init", "-q")
    _git(package.parents[1], "add", ".")
    _git(package.parents[1], "commit", "-q", "-m", "one")
    head = _git(package, "rev-parse", "HEAD")
    (package / "notes.txt").write_text("untracked")  # untracked files do not count
    assert provenance._git_commit_cached(str(package)) == head
    (package / "__init__.py").write_text("changed = True\n")
    provenance._git_commit_cached.cache_clear()
    assert provenance.git_commit(package) == f"{head}-dirty"


def test_a_package_merely_inside_another_repository_is_no_checkout(no_repo_above):
    # e.g. a virtualenv inside the user's own project: that project's commit is not ours.
    outer = no_repo_above / "project"
    _package(outer)
    _git(outer, "init", "-q")
    _git(outer, "add", ".")
    _git(outer, "commit", "-q", "-m", "theirs")
    installed = _package(outer / ".venv" / "site-packages" / "fidlens")
    assert provenance.git_commit(installed) == "not a git checkout"


def test_git_runs_once_per_process_and_folder(no_repo_above, monkeypatch):
    package = _package(no_repo_above / "once" / "fidlens")
    calls = []
    real_git = provenance._git
    monkeypatch.setattr(provenance, "_git", lambda *args: calls.append(args) or real_git(*args))
    first = provenance.git_commit(package)
    count = len(calls)
    assert provenance.git_commit(package) == first and len(calls) == count > 0
