"""Input checks shared by the metric families; float64 unless said otherwise."""

from __future__ import annotations

import numpy as np

_EPS64 = float(np.finfo(np.float64).eps)
_U32 = 2.0**-24  # unit roundoff of float32

DEFAULT_BLOCK_SIZE = 2048  # products of 2048 x (D + 2) blocks run near peak speed here


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _matrix(x, name: str = "features", min_rows: int = 1, keep_float32=False) -> np.ndarray:
    """A 2-D float64 array (no copy when it already is one; float32 kept as it is if asked)
    with finite values."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N x D), got shape {x.shape}")
    if len(x) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {len(x)}")
    if not (keep_float32 and x.dtype == np.float32):
        x = np.ascontiguousarray(x, dtype=np.float64)
    bad_rows = int(np.count_nonzero(~np.isfinite(x).all(axis=1)))
    if bad_rows:
        raise ValueError(f"{name} has {bad_rows} rows with NaN or Inf values")
    return x


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")


def l2_normalize(x) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (float64). All-zero rows stay zero, as in
    torch.nn.functional.normalize: they have no direction to keep."""
    x = _matrix(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
