"""Distribution metrics on feature arrays: FID, KID, precision/recall, density/coverage, and
the exact gradient of FID with respect to one image's features.

Pure maths: arrays in, numbers out. Nothing here reads files or knows which network made the
features. Everything is computed in float64 unless a comment says why not; the heavy matrix
products run through torch (its CPU BLAS is much faster here than numpy's OpenBLAS).

Conventions: `fake` / `x` / source is the generated set, `real` / `y` / target the real one.

One module per family: `fid` (statistics, Frechet distance, the feature-space form for
N < D), `fid_gradient` (per-image FID values and gradients), `mmd` (KID), `knn` (precision /
recall, density / coverage); the names below are the public interface.
"""

from fidlens.metrics._common import DEFAULT_BLOCK_SIZE, l2_normalize
from fidlens.metrics.fid import (
    STATISTICS_RTOL,
    check_statistics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    trace_sqrt_product,
)
from fidlens.metrics.fid_gradient import FIDGradient

# KID and the k-NN metrics run on torch; they are imported on first use, so that FID alone
# (statistics, Frechet distance, gradients) imports no torch (a second saved per process).
_LAZY = {
    "kid": "mmd",
    "kid_subset_indices": "mmd",
    "kid_uses_whole_sets": "mmd",
    "kid_whole_sets": "mmd",
    "mmd2_unbiased": "mmd",
    "polynomial_kernel": "mmd",
    "density_coverage": "knn",
    "knn_radii": "knn",
    "knn_sq_radii": "knn",
    "manifold_metrics": "knn",
    "precision_recall": "knn",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"fidlens.metrics.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fidlens.metrics' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FIDGradient",
    "STATISTICS_RTOL",
    "check_statistics",
    "density_coverage",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "kid",
    "kid_subset_indices",
    "kid_uses_whole_sets",
    "kid_whole_sets",
    "knn_radii",
    "knn_sq_radii",
    "l2_normalize",
    "manifold_metrics",
    "mmd2_unbiased",
    "polynomial_kernel",
    "precision_recall",
    "trace_sqrt_product",
]
