"""KID: unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018)."""

from __future__ import annotations

import numpy as np
import torch

from fidlens.metrics._common import _matrix, _same_dim

# ---------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------


def kid_subset_indices(
    n_x: int, n_y: int, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the KID subsets: two int arrays (n_subsets x size), drawn without
    replacement within each subset from numpy's default_rng(seed). The size is
    min(subset_size, n_x, n_y). Draw once and reuse them for raw and normalised features."""
    size = min(int(subset_size), int(n_x), int(n_y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set (got {n_x} and {n_y})")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be positive, got {n_subsets}")
    rng = np.random.default_rng(seed)
    index_x = np.empty((n_subsets, size), dtype=np.int64)
    index_y = np.empty((n_subsets, size), dtype=np.int64)
    for subset in range(n_subsets):
        index_x[subset] = rng.choice(n_x, size, replace=False)
        index_y[subset] = rng.choice(n_y, size, replace=False)
    return index_x, index_y


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k(a, b) = (a . b / D + 1)^3, the kernel of KID."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, JMLR 13, Lemma 6) from the kernel matrices of
    samples of sizes m and n, which may differ (k_xx: m x m, k_yy: n x n, k_xy: m x n):
    sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def _subset_mmd2(xs: torch.Tensor, ys: torch.Tensor) -> float:
    kernels = polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys)
    return mmd2_unbiased(*kernels)


def kid(x, y, indices: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """KID: mean and population standard deviation of the unbiased polynomial-kernel MMD^2
    over the subsets given by `indices` (from `kid_subset_indices`)."""
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    index_x, index_y = (np.asarray(i, dtype=np.int64) for i in indices)
    if index_x.shape != index_y.shape or index_x.ndim != 2:
        raise ValueError("indices must be two arrays of the same shape (n_subsets x size)")
    if index_x.max() >= len(x) or index_y.max() >= len(y):
        raise ValueError("KID subset indices do not fit these feature sets")
    n_subsets, size = index_x.shape
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    pairs = zip(torch.from_numpy(index_x), torch.from_numpy(index_y), strict=True)
    # Kernel matrices of whole sets once, when that is cheaper than products per subset.
    cheaper = (len(x) + len(y)) ** 2 <= 2 * n_subsets * size**2
    if cheaper and max(len(x), len(y)) <= 4096:  # at most 3 x 128 MiB of kernel values
        k_xx, k_yy = polynomial_kernel(tx, tx), polynomial_kernel(ty, ty)
        k_xy = polynomial_kernel(tx, ty)
        values = [mmd2_unbiased(k_xx[i][:, i], k_yy[j][:, j], k_xy[i][:, j]) for i, j in pairs]
    else:
        values = [_subset_mmd2(tx[i], ty[j]) for i, j in pairs]
    values = np.asarray(values)
    return float(values.mean()), float(values.std())


def kid_uses_whole_sets(n_x: int, n_y: int, subset_size: int) -> bool:
    """True when neither set is larger than the subset size. Subsets of min(subset_size, n_x,
    n_y) rows then hold (nearly) the whole sets, so their estimates (nearly) agree and their
    spread says nothing about KID's uncertainty: KID is then one estimate on the whole sets
    (`kid_whole_sets`), with no standard deviation."""
    return int(n_x) <= int(subset_size) and int(n_y) <= int(subset_size)


def kid_whole_sets(x, y, block: int = 4096) -> float:
    """KID as one unbiased MMD^2 estimate with the polynomial kernel of KID (Bińkowski et al.
    2018, §4) on all of x (m x D) and y (n x D), m and n may differ (`mmd2_unbiased`).
    Kernel sums in blocks of `block` rows: memory O(block^2), float64."""
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    m, n = len(x), len(y)
    within_x = _kernel_sum(tx, tx, block, off_diagonal=True) / (m * (m - 1))
    within_y = _kernel_sum(ty, ty, block, off_diagonal=True) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * _kernel_sum(tx, ty, block) / (m * n))


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, block: int, off_diagonal=False) -> float:
    """sum_{i, j} k(a_i, b_j) over blocks of rows; `off_diagonal` (a is b): i != j only."""
    total = 0.0
    for i in range(0, len(a), block):
        for j in range(0, len(b), block):
            kernel = polynomial_kernel(a[i : i + block], b[j : j + block])
            total += float(kernel.sum())
            if off_diagonal and i == j:
                total -= float(kernel.diagonal().sum())
    return total
