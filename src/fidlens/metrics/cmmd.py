"""CMMD: the maximum mean discrepancy of CLIP embeddings with a Gaussian RBF kernel
(Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image
Generation", CVPR).

Constants as in the authors' code (google-research/google-research, cmmd/distance.py):
bandwidth sigma = 10 (`_SIGMA`), so k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), and the value
reported x 1000 (`_SCALE`). The embeddings are unit-normalised first, as their embedding code
does (scenic's CLIP `encode_image(normalize=True)`, cmmd/embedding.py).

Estimator: the paper's unbiased MMD^2 (Gretton et al. 2012, JMLR 13, Lemma 6): the within-set
kernel means leave out the diagonal. The authors' code computes the biased (V-statistic)
form, the means over all pairs including i = j; `cmmd(..., unbiased=False)` gives that one.
The two differ by O(1/N): the within-set means of the biased form include the n diagonal
terms k(x_i, x_i) = 1.
"""

from __future__ import annotations

import torch

from fidlens.metrics._common import _matrix, _same_dim, l2_normalize

CMMD_SIGMA = 10.0  # google-research cmmd/distance.py `_SIGMA`
CMMD_SCALE = 1000.0  # cmmd/distance.py `_SCALE`: "to make the metric more human readable"
CMMD_BLOCK = 4096  # rows per block of kernel values (4096^2 float64 = 128 MiB)


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _rbf_sum(a: torch.Tensor, b: torch.Tensor, gamma: float, block: int, skip_diagonal: bool):
    """sum_{i, j} exp(-gamma ||a_i - b_j||^2) over blocks of rows; with `skip_diagonal` (a is
    b) the i = j terms (each exactly 1) are left out. Float64 throughout."""
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    sq_a, sq_b = (a * a).sum(1), (b * b).sum(1)
    for i in range(0, len(a), block):
        rows, sq_rows = a[i : i + block], sq_a[i : i + block]
        for j in range(0, len(b), block):
            distances = (
                sq_rows[:, None] + sq_b[None, j : j + block] - 2.0 * rows @ b[j : j + block].T
            )
            kernel = torch.exp(-gamma * distances.clamp_min(0.0))
            total += kernel.sum()
            if skip_diagonal and i == j:
                total -= kernel.diagonal().sum()
    return float(total)


def rbf_mmd2(
    x, y, sigma: float = CMMD_SIGMA, unbiased: bool = True, block: int = CMMD_BLOCK, device=None
) -> float:
    """MMD^2 between the rows of x (m x D) and y (n x D), m and n may differ, with the
    Gaussian kernel k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), in float64.

    unbiased (Gretton et al. 2012, Lemma 6): sum_{i != j} k(x_i, x_j) / (m (m - 1))
    + sum_{i != j} k(y_i, y_j) / (n (n - 1)) - 2 sum_{i, j} k(x_i, y_j) / (m n);
    biased (their Eq. 5, the V-statistic): the first two sums over all i, j divided by m^2, n^2.
    Kernel sums run in blocks of `block` rows (memory O(block^2)); `device` None = CUDA when
    available, else the CPU. Raises ValueError for fewer than 2 rows, NaN/Inf or differing D.
    """
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    where = _device(device)
    tx, ty = torch.from_numpy(x).to(where), torch.from_numpy(y).to(where)
    gamma = 1.0 / (2.0 * sigma**2)
    m, n = len(x), len(y)
    if unbiased:
        within_x = _rbf_sum(tx, tx, gamma, block, True) / (m * (m - 1))
        within_y = _rbf_sum(ty, ty, gamma, block, True) / (n * (n - 1))
    else:
        within_x = _rbf_sum(tx, tx, gamma, block, False) / (m * m)
        within_y = _rbf_sum(ty, ty, gamma, block, False) / (n * n)
    return within_x + within_y - 2.0 * _rbf_sum(tx, ty, gamma, block, False) / (m * n)


def cmmd(
    x,
    y,
    sigma: float = CMMD_SIGMA,
    scale: float = CMMD_SCALE,
    unbiased: bool = True,
    normalize: bool = True,
    block: int = CMMD_BLOCK,
    device=None,
) -> float:
    """CMMD between CLIP image embeddings x (m x D, generated) and y (n x D, real): rows
    unit-normalised (`normalize`, as the authors' embedding code), then `scale` x MMD^2 with
    the Gaussian RBF kernel of bandwidth `sigma` (`rbf_mmd2`). Defaults are the paper's: sigma
    10, x 1000, the unbiased estimator. Unitless; 0 for equal distributions (the unbiased
    estimate may be slightly negative by sampling noise). Raises ValueError as `rbf_mmd2`.
    """
    if normalize:
        x, y = l2_normalize(x), l2_normalize(y)
    return scale * rbf_mmd2(x, y, sigma=sigma, unbiased=unbiased, block=block, device=device)


# What the metric JSON records as `cmmd_method`.
CMMD_METHOD = (
    f"CMMD (Jayasumana et al. 2024): {CMMD_SCALE:g} x unbiased MMD^2, Gaussian RBF kernel "
    f"sigma {CMMD_SIGMA:g}, embeddings unit-normalised (google-research cmmd's constants); "
    "CLIP-type extractors only, no confidence interval"
)
