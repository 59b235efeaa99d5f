"""What every output records about how it was made."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version

# Marks every output computed with randomly initialised network weights.
RANDOM_INIT = "random-init"

TRACKED_PACKAGES = ("fidlens", "torch", "torchvision", "numpy", "scipy", "h5py", "pillow")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change the numbers."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def package_versions_json() -> str:
    return json.dumps(package_versions(), sort_keys=True)
