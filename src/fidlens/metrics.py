"""Distribution metrics on feature arrays: FID, KID, precision/recall, density/coverage.

Pure maths: arrays in, numbers out. Nothing here reads files or knows which network made the
features. Everything is computed in float64 unless a comment says why not; the heavy matrix
products run through torch (its CPU BLAS is much faster here than numpy's OpenBLAS).

Conventions: `fake` / `x` / source is the generated set, `real` / `y` / target the real one.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import scipy.linalg
import torch

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


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


def feature_statistics(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (divided by N - 1) of the rows of `x`, in float64."""
    x = _matrix(x, min_rows=2)
    mu = x.mean(axis=0)
    centred = torch.from_numpy(x - mu)
    sigma = (centred.T @ centred).numpy() / (len(x) - 1)
    return mu, (sigma + sigma.T) / 2  # exactly symmetric, whatever the BLAS did


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0]
    if mu1.shape != (dim,) or mu2.shape != (dim,):
        raise ValueError(f"means must be vectors of the same length, got {mu1.shape}, {mu2.shape}")
    if sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"covariances must be {dim} x {dim}, got {sigma1.shape}, {sigma2.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} has NaN or Inf values")
    diff = mu1 - mu2
    tr_sqrt = trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr sqrt(sigma1 sigma2) for symmetric positive semi-definite matrices.

    sigma1 sigma2 is similar to the symmetric matrix L^T sigma2 L (sigma1 = L L^T), so its
    eigenvalues are real and non-negative and a symmetric eigensolver applies (scipy's
    sqrtm of the non-symmetric product is slow and inexact). Fast path: LAPACK's generalised
    symmetric-definite solver (dsygv, type 2: Cholesky of sigma1, then the eigenvalues of
    L^T sigma2 L). When a covariance is singular (N <= D, low-rank features) the Cholesky fails
    or leaves eigenvalues at rounding level, whose square roots would add ~1e-8 errors each;
    then fall back to the nuclear norm of F1^T F2 (sigma_i = F_i F_i^T), an SVD that takes no
    such square roots: F_i Cholesky factors when both are clearly positive definite (merely
    ill-conditioned), else eigen-factors with the null directions removed.
    """
    s1 = np.ascontiguousarray(sigma1, dtype=np.float64)
    s2 = np.ascontiguousarray(sigma2, dtype=np.float64)
    try:
        eigenvalues = scipy.linalg.eigh(
            s2, s1, type=2, eigvals_only=True, driver="gv", check_finite=False
        )
    except np.linalg.LinAlgError:  # sigma1 is not (numerically) positive definite
        eigenvalues = None
    if eigenvalues is not None:
        # Eigenvalues this small may be rounding noise of a singular direction: the norms
        # bound the absolute error of eigenvalues computed this way.
        noise = len(s1) * _EPS64 * np.linalg.norm(s1) * np.linalg.norm(s2)
        if eigenvalues.min() > noise:
            return float(np.sqrt(eigenvalues).sum())
    t1, t2 = torch.from_numpy(s1), torch.from_numpy(s2)
    lower1 = _clear_cholesky(t1)
    lower2 = _clear_cholesky(t2) if lower1 is not None else None
    if lower2 is not None:
        return _nuclear_norm_of_product(lower1, lower2)
    return _nuclear_norm_of_product(_psd_factor(t1), _psd_factor(t2))


def _clear_cholesky(sigma: torch.Tensor) -> torch.Tensor | None:
    """Cholesky factor, or None unless every pivot clears rounding level by far (a singular
    matrix can factor with a pivot at rounding level, which would act as a real direction)."""
    lower, info = torch.linalg.cholesky_ex(sigma)
    if int(info) != 0:
        return None
    floor = 10 * len(sigma) * _EPS64 * float(sigma.diagonal().max())
    return lower if float(lower.diagonal().min()) ** 2 > floor else None


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """F with F F^T = sigma, dropping eigen-directions at rounding level (numpy's matrix_rank
    rule, D * eps * max eigenvalue): taking their square roots would add sqrt(eps) errors."""
    eigenvalues, vectors = torch.linalg.eigh(sigma)
    keep = eigenvalues > sigma.shape[0] * _EPS64 * eigenvalues.max().clamp_min(0)
    return vectors[:, keep] * eigenvalues[keep].sqrt()


def _nuclear_norm_of_product(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Sum of singular values of f1^T f2 (float64).

    An SVD, not the square roots of the eigenvalues of G G^T: squaring G would square its
    condition number, and the square roots of rounding-level eigenvalues (the zeros of a
    singular G, e.g. the direction removed by centring) would add ~1e-8 each."""
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    return float(torch.linalg.svdvals(f1.T @ f2).sum())


def fid_from_features(x, y) -> float:
    """FID between two feature sets (rows are samples), exact also when N <= D.

    When a set has no more samples than dimensions its covariance is singular for certain, and
    the trace term is computed in feature space: tr sqrt(Sx Sy) is the nuclear norm of
    Xc Yc^T / sqrt((n - 1)(m - 1)) with Xc, Yc the centred features.
    """
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    dim = x.shape[1]
    if min(len(x), len(y)) - 1 >= dim:
        return frechet_distance(*feature_statistics(x), *feature_statistics(y))
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    fx = torch.from_numpy(xc.T / math.sqrt(len(x) - 1))
    fy = torch.from_numpy(yc.T / math.sqrt(len(y) - 1))
    tr_sqrt = _nuclear_norm_of_product(fx, fy)
    diff = mu_x - mu_y
    trace_x = float((xc * xc).sum()) / (len(x) - 1)
    trace_y = float((yc * yc).sum()) / (len(y) - 1)
    return float(diff @ diff + trace_x + trace_y - 2.0 * tr_sqrt)


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
    """Unbiased MMD^2 from kernel matrices of two equally sized samples (diagonals of the
    within-set matrices left out)."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return float(within - 2.0 * k_xy.sum() / (m * m))


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


# ---------------------------------------------------------------------------------------------
# Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020)
# ---------------------------------------------------------------------------------------------
#
# All four need k-th nearest-neighbour radii within each set and the real x fake distances;
# only pairs closer than some radius matter. Blocks of pairs (memory stays bounded) go through
# three tiers, each exact in what it decides:
#
# 1. Lower bound (D >= 512): with Q an orthonormal basis of the D/8 main directions and
#    w = [Q^T x, |x - Q Q^T x|], |w_i - w_j| <= |x_i - x_j| exactly. One cheap product gives it
#    for a whole block; pairs whose bound already exceeds every radius they could fall in are
#    dropped. On features with a decaying spectrum almost all pairs go here.
# 2. Few pairs left: exact float64 distances sum((x - y)^2), pair by pair.
# 3. Many left: float32 distances for the block from one product [x, |x|^2, 1].[-2y, 1, |y|^2].
#    float32 halves the time of float64 but the expansion loses accuracy (worst case about
#    2 D u (|x|^2 + |y|^2), u = 2^-24), so its values only sort pairs out: any pair within that
#    bound of a radius is recomputed exactly in float64, and radii are taken from exact values
#    of every neighbour that could be the k-th.
#
# The results therefore equal an exact float64 computation (ties included). Centring on the
# real mean keeps |x|^2 and so the bound small; scaling by a power of two (exact) keeps float32
# clear of overflow.

MIN_PROJECTED_DIM = 512  # below this the plain float32 products are cheap enough
_DENSE_FRACTION = 0.02  # above this share of surviving pairs a block is computed in full


@contextmanager
def _ieee_float32_matmul():
    """The error bounds assume true float32 products (no bf16/tf32 shortcuts)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _error_factor(columns: int) -> float:
    """Worst case |approx - exact| <= factor * (|x|^2 + |y|^2) for the augmented float32
    product over `columns` feature columns: a sum of columns + 2 terms whose magnitudes add up
    to at most 2 (|x|^2 + |y|^2) (2 gamma_{columns+2}), the float32 rounding of inputs and
    norms (3u), and float64 centring, projection and re-checks (far below 8u)."""
    return (2.5 * (columns + 2) + 8) * _U32


def _augmented(values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """[v, |v|^2, 1] in float32 and |v|^2 in float64 for float64 rows v."""
    sq_norms = np.einsum("ij,ij->i", values, values)
    out = np.empty((len(values), values.shape[1] + 2), dtype=np.float32)
    out[:, :-2] = values
    out[:, -2] = sq_norms
    out[:, -1] = 1.0
    return torch.from_numpy(out), torch.from_numpy(sq_norms)


def _right(left: torch.Tensor) -> torch.Tensor:
    """[-2v, 1, |v|^2] from [v, |v|^2, 1] (built per block to save memory)."""
    return torch.cat([-2.0 * left[:, :-2], left[:, -1:], left[:, -2:-1]], dim=1)


class _PointSet:
    """One feature set prepared for blocked squared distances (see the section comment).

    Keeps the caller's array (float32 or float64, not copied) for exact re-checks; distances
    are in units scaled by a power of two, so they are the input's times scale^2 exactly.
    """

    def __init__(self, values, centre, scale, basis: np.ndarray | None, chunk: int = 4096):
        self.array = values
        self.scale_sq = scale * scale
        self.projected = basis is not None
        n, dim = values.shape
        self.left = torch.empty((n, dim + 2), dtype=torch.float32)
        self.sq_norms = torch.empty(n, dtype=torch.float64)
        if self.projected:
            basis = torch.from_numpy(basis)
            self.lb_left = torch.empty((n, basis.shape[1] + 3), dtype=torch.float32)
            self.lb_norms = torch.empty(n, dtype=torch.float64)
        for start in range(0, n, chunk):  # in chunks: no full float64 copy of the features
            rows = slice(start, start + chunk)
            centred = (values[rows].astype(np.float64) - centre) * scale
            self.left[rows], self.sq_norms[rows] = _augmented(centred)
            if self.projected:
                # The residual from its own product (not |v|^2 - |Q^T v|^2, which cancels).
                centred = torch.from_numpy(centred)
                coords = centred @ basis
                residual = torch.linalg.vector_norm(centred - coords @ basis.T, dim=1)
                self.lb_left[rows], self.lb_norms[rows] = _augmented(
                    torch.cat([coords, residual[:, None]], dim=1).numpy()
                )

    def __len__(self) -> int:
        return len(self.array)

    def exact_sq_distances(self, other: _PointSet, ia, ib, chunk: int = 128) -> torch.Tensor:
        """sum((self[ia] - other[ib])^2) pair by pair in float64.

        numpy in cache-sized chunks, pairs in row order, one thread per core (numpy releases
        the GIL here): steadier than many small torch ops on a busy machine, and the fastest
        variant measured here."""
        ia, ib = np.asarray(ia), np.asarray(ib)
        order = np.lexsort((ib, ia))
        ia, ib = ia[order], ib[order]
        out = np.empty(len(ia))

        def work(span: range) -> None:
            diff = np.empty((chunk, self.array.shape[1]))
            for start in span:
                stop = min(start + chunk, len(ia))
                part = diff[: stop - start]
                np.subtract(
                    self.array[ia[start:stop]],
                    other.array[ib[start:stop]],
                    out=part,
                    dtype=np.float64,
                )
                out[start:stop] = np.einsum("ij,ij->i", part, part)

        starts = range(0, len(ia), chunk)
        workers = min(torch.get_num_threads(), len(starts))
        if workers > 1:  # a fresh pool each time: cheap, and safe across fork()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, [starts[w::workers] for w in range(workers)]))
        else:
            work(starts)
        result = np.empty_like(out)
        result[order] = out * self.scale_sq  # times a power of two: exact
        return torch.from_numpy(result)


def _prepare(*sets: np.ndarray, projection_dim: int | None) -> list[_PointSet]:
    centre = sets[-1].mean(axis=0, dtype=np.float64)  # any common point works; the real mean
    # keeps norms (and so the float32 error bound) small
    largest = max(
        float(np.abs(bound - centre).max()) for s in sets for bound in (s.min(0), s.max(0))
    )
    scale = 2.0 ** -math.ceil(math.log2(largest)) if largest > 0 else 1.0
    dim = sets[0].shape[1]
    if projection_dim is None:
        projection_dim = dim // 8 if dim >= MIN_PROJECTED_DIM else 0
    basis = _main_directions(sets, centre, projection_dim) if 0 < projection_dim < dim else None
    return [_PointSet(s, centre, scale, basis) for s in sets]


def _main_directions(sets, centre, count: int, sample: int = 4096, seed: int = 0) -> np.ndarray:
    """An orthonormal D x count basis near the top principal directions (randomised range
    finder on a sample). Only speed depends on how good it is; orthonormality is exact to
    float64 rounding (Householder QR), which is what the lower bound needs."""
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(len(s), min(len(s), sample // len(sets)), replace=False))
            for s in sets]  # fmt: skip
    centred = torch.from_numpy(
        np.concatenate([s[r] for s, r in zip(sets, rows, strict=True)]) - centre.astype(np.float32)
    ).float()
    probe = torch.from_numpy(rng.standard_normal((centred.shape[1], count), dtype=np.float32))
    range_ = centred.T @ (centred @ probe)  # one power iteration sharpens the top directions
    return torch.linalg.qr(range_.double()).Q.numpy()


def _round_up32(values: torch.Tensor) -> torch.Tensor:
    """float32 values >= the float64 ones (thresholds must never shrink when rounded)."""
    v = values.to(torch.float32)
    return torch.nextafter(v, torch.full_like(v, math.inf))


def _blocks(n: int, size: int) -> list[slice]:
    """Contiguous blocks of about `size` rows, none smaller than min(size, n)."""
    count = max(1, n // size)
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


class _BoundUse:
    """Stops computing lower bounds in a pass where they keep failing to thin blocks out
    (features without dominant directions): they would only add their cost."""

    def __init__(self):
        self.tried = self.failed = 0

    @property
    def worth_it(self) -> bool:
        return self.tried < 4 or self.failed < 0.75 * self.tried

    def record(self, thinned_out: bool) -> None:
        self.tried += 1
        self.failed += not thinned_out


def _block_pairs(
    a: _PointSet,
    b: _PointSet,
    rows: slice,
    cols: slice,
    row_limit,
    col_limit,
    diagonal=False,
    bounds: _BoundUse | None = None,
):
    """Pairs of a[rows] x b[cols] whose squared distance may be <= row_limit[i] or
    <= col_limit[j] (limits in float64; col_limit may be None). Returns global indices, the
    value and its error bound (0: exact), dropping every pair that surely exceeds both.
    `diagonal`: rows and cols are the same points; pairs of a point with itself are left out."""
    limit_r = row_limit[rows]
    limit_c = col_limit[cols] if col_limit is not None else None

    def within(block, factor, norms_a, norms_b, slack=0.0):
        if diagonal:
            block.fill_diagonal_(math.inf)
        bound_r = factor * (norms_a[rows] + norms_b[cols].max()) + slack
        mask = block <= _round_up32(limit_r + bound_r)[:, None]
        if limit_c is not None:
            bound_c = factor * (norms_b[cols] + norms_a[rows].max()) + slack
            mask |= block <= _round_up32(limit_c + bound_c)[None, :]
        return mask

    if a.projected and (bounds is None or bounds.worth_it):
        lower = a.lb_left[rows] @ _right(b.lb_left[cols]).T
        factor = _error_factor(a.lb_left.shape[1] - 2)
        # The float64 projection and residual are off by far less than this slack.
        slack = 1e-8 * float(max(a.lb_norms.max(), b.lb_norms.max()))
        mask = within(lower, factor, a.lb_norms, b.lb_norms, slack)
        thinned_out = torch.count_nonzero(mask) <= _DENSE_FRACTION * mask.numel()
        if bounds is not None:
            bounds.record(thinned_out)
        if thinned_out:
            ii, jj = mask.nonzero(as_tuple=True)
            ii, jj = ii + rows.start, jj + cols.start
            exact = a.exact_sq_distances(b, ii, jj)
            keep = exact <= row_limit[ii]
            if col_limit is not None:
                keep |= exact <= col_limit[jj]
            return ii[keep], jj[keep], exact[keep], torch.zeros(int(keep.sum()), dtype=exact.dtype)
    approx = a.left[rows] @ _right(b.left[cols]).T
    factor = _error_factor(a.left.shape[1] - 2)
    ii, jj = within(approx, factor, a.sq_norms, b.sq_norms).nonzero(as_tuple=True)
    values = approx[ii, jj].double()
    ii, jj = ii + rows.start, jj + cols.start
    errors = factor * (a.sq_norms[ii] + b.sq_norms[jj])
    keep = values - errors <= row_limit[ii]
    if col_limit is not None:
        keep |= values - errors <= col_limit[jj]
    return ii[keep], jj[keep], values[keep], errors[keep]


def _knn_sq_radii(points: _PointSet, ks: tuple[int, ...], block_size: int) -> dict:
    """Exact squared distance to the k-th nearest other point, for each k in `ks`.

    Keeps, per point, the kmax smallest upper bounds (value + error) seen so far: their
    largest bounds the radius from above, so pairs beyond it are never needed. Every pair that
    can be within the final radius is collected, with its value and error, for `_kth`."""
    n, kmax = len(points), max(ks)
    if n <= kmax:
        raise ValueError(f"k-NN radii with k = {kmax} need at least {kmax + 1} samples, got {n}")
    blocks = _blocks(n, max(block_size, kmax + 1))
    upper = torch.empty((n, kmax), dtype=torch.float64)
    found: list[tuple] = []
    bounds = _BoundUse()
    # Each block against itself first: a first upper bound for every point.
    for rows in blocks:
        upper[rows] = _first_upper_bounds(points, rows, kmax)
        ii, jj, values, errors = _block_pairs(
            points, points, rows, rows, upper[:, -1], None, diagonal=True, bounds=bounds
        )
        found.append((ii, jj, values, errors))
        # These pairs include the ones behind the first bounds: recount from them alone.
        upper[rows] = math.inf
        _tighten(upper, ii, values + errors)
    # Then every pair of different blocks once, serving both of its points.
    for a, rows in enumerate(blocks):
        for cols in blocks[a + 1 :]:
            ii, jj, values, errors = _block_pairs(
                points, points, rows, cols, upper[:, -1], upper[:, -1], bounds=bounds
            )
            found.append((ii, jj, values, errors))
            found.append((jj, ii, values, errors))
            _tighten(upper, torch.cat([ii, jj]), (values + errors).repeat(2))
        found = [_still_needed(found, upper)]  # bounds have tightened: drop what they exclude
    return {k: _kth(points, *found[0], k, n) for k in ks}


def _still_needed(found: list[tuple], upper: torch.Tensor) -> tuple:
    rows, cols, values, errors = (torch.cat(column) for column in zip(*found, strict=True))
    keep = values - errors <= upper[rows, -1]
    return rows[keep], cols[keep], values[keep], errors[keep]


def _first_upper_bounds(points: _PointSet, rows: slice, kmax: int) -> torch.Tensor:
    """Upper bounds on the squared distances to the kmax nearest others, from the block of
    `rows` alone: exact distances to the nearest few by the lower bound, or the float32
    distances plus their error bound."""
    if points.projected:
        lower = points.lb_left[rows] @ _right(points.lb_left[rows]).T
        lower.fill_diagonal_(math.inf)
        count = min(kmax + 4, lower.shape[1] - 1)
        nearest = lower.topk(count, dim=1, largest=False).indices + rows.start
        own = torch.arange(rows.start, rows.stop).repeat_interleave(count)
        exact = points.exact_sq_distances(points, own, nearest.flatten())
        return exact.view(-1, count).sort(dim=1).values[:, :kmax]
    approx = points.left[rows] @ _right(points.left[rows]).T
    approx.fill_diagonal_(math.inf)
    factor = _error_factor(points.left.shape[1] - 2)
    row_bound = factor * (points.sq_norms[rows] + points.sq_norms[rows].max())
    return approx.topk(kmax, dim=1, largest=False).values.double() + row_bound[:, None]


def _sort_by_row(rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Permutation ordering pairs by row, then by value."""
    order = torch.argsort(values, stable=True)
    return order[torch.argsort(rows[order], stable=True)]


def _row_starts(sorted_rows: torch.Tensor, n: int) -> torch.Tensor:
    return torch.searchsorted(sorted_rows, torch.arange(n, dtype=sorted_rows.dtype))


def _tighten(upper: torch.Tensor, rows: torch.Tensor, bounds: torch.Tensor) -> None:
    """Merge new upper bounds into each row's kmax smallest."""
    if len(rows) == 0:
        return
    kmax = upper.shape[1]
    order = _sort_by_row(rows, bounds)
    rows, bounds = rows[order], bounds[order]
    touched, counts = torch.unique_consecutive(rows, return_counts=True)
    slot = torch.arange(len(rows)) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    keep = slot < kmax
    fresh = torch.full((len(touched), kmax), math.inf, dtype=upper.dtype)
    where = torch.repeat_interleave(torch.arange(len(touched)), counts)
    fresh[where[keep], slot[keep]] = bounds[keep]
    upper[touched] = torch.cat([upper[touched], fresh], dim=1).sort(dim=1).values[:, :kmax]


def _kth(points, rows, cols, values, errors, k: int, n: int) -> torch.Tensor:
    """Exact k-th smallest squared distance per row from candidate pairs with error bounds.

    The candidates hold every pair that can be within the k-th distance t. With lower/upper
    bounds l = v - e, h = v + e: t <= H (the k-th smallest h) and t >= L (the k-th smallest l);
    pairs with h < L are surely below t (s of them), pairs with l > H surely above. So t is the
    (k - s)-th smallest exact value among the rest, which are recomputed exactly if needed."""
    low, high = values - errors, values + errors
    kth_high = _kth_per_row(rows, high, k, n)
    kth_low = _kth_per_row(rows, low, k, n)
    below = high < kth_low[rows]
    band = ~below & (low <= kth_high[rows])
    surely_below = torch.bincount(rows[below], minlength=n)
    rows, cols, values, errors = rows[band], cols[band], values[band], errors[band]
    unsure = errors > 0
    values = values.clone()
    values[unsure] = points.exact_sq_distances(points, rows[unsure], cols[unsure])
    return _kth_per_row(rows, values, k - surely_below, n)


def _kth_per_row(rows: torch.Tensor, values: torch.Tensor, k, n: int) -> torch.Tensor:
    """k-th smallest value in each row's group (k an int or one per row; groups big enough)."""
    order = _sort_by_row(rows, values)
    starts = _row_starts(rows[order], n)
    return values[order][starts + (torch.as_tensor(k) - 1)]


def manifold_metrics(
    fake,
    real,
    k_pr: int = 3,
    k_dc: int = 5,
    which: tuple[str, ...] = ("pr", "dc"),
    block_size: int = DEFAULT_BLOCK_SIZE,
    projection_dim: int | None = None,
) -> dict[str, float]:
    """Precision and recall (k = k_pr, membership d <= radius) and density and coverage
    (k = k_dc), from one blocked pass over the real x fake distances.

    precision = fraction of fake inside some real k_pr-ball; recall = fraction of real inside
    some fake k_pr-ball; density = (1 / (k_dc M)) sum_fake #{real balls (k_dc) containing it};
    coverage = fraction of real whose nearest fake lies inside its own k_dc-ball.
    `projection_dim` (None: automatic, 0: off) only changes the speed, never the result.
    """
    unknown = set(which) - {"pr", "dc"}
    if unknown or not which:
        raise ValueError(f"`which` must name 'pr' and/or 'dc', got {which}")
    fake = _matrix(fake, "fake features", min_rows=2, keep_float32=True)
    real = _matrix(real, "real features", min_rows=2, keep_float32=True)
    _same_dim(fake, real)
    fake_set, real_set = _prepare(fake, real, projection_dim=projection_dim)
    with _ieee_float32_matmul():
        real_ks = {k for k, name in ((k_pr, "pr"), (k_dc, "dc")) if name in which}
        real_radii = _knn_sq_radii(real_set, tuple(sorted(real_ks)), block_size)
        fake_radius = _knn_sq_radii(fake_set, (k_pr,), block_size)[k_pr] if "pr" in which else None
        counts = _cross_counts(
            real_set,
            fake_set,
            real_radii.get(k_pr) if "pr" in which else None,
            real_radii.get(k_dc) if "dc" in which else None,
            fake_radius,
            block_size,
        )
    result = {}
    if "pr" in which:
        result["precision"] = float(counts["fake_in_real_pr"].double().mean())
        result["recall"] = float(counts["real_in_fake_pr"].double().mean())
    if "dc" in which:
        result["density"] = float(counts["density_hits"].sum()) / (k_dc * len(fake))
        result["coverage"] = float(counts["real_covered"].double().mean())
    return result


def _cross_counts(real, fake, real_pr, real_dc, fake_pr, block_size):
    """One blocked pass over real (rows) x fake (columns) squared distances."""
    present = [r for r in (real_pr, real_dc) if r is not None]
    row_limit = torch.maximum(*present) if len(present) == 2 else present[0]
    out = {
        "fake_in_real_pr": torch.zeros(len(fake), dtype=torch.bool),
        "real_in_fake_pr": torch.zeros(len(real), dtype=torch.bool),
        "density_hits": torch.zeros(len(fake), dtype=torch.int64),
        "real_covered": torch.zeros(len(real), dtype=torch.bool),
    }
    bounds = _BoundUse()
    for cols in _blocks(len(fake), block_size):
        for rows in _blocks(len(real), block_size):
            ii, jj, values, errors = _block_pairs(
                real, fake, rows, cols, row_limit, fake_pr, bounds=bounds
            )
            tests = {}
            if real_pr is not None:
                tests["fake_in_real_pr"] = real_pr[ii]
                tests["real_in_fake_pr"] = fake_pr[jj]
            if real_dc is not None:
                tests["dc"] = real_dc[ii]
            inside = {name: values + errors <= radius for name, radius in tests.items()}
            unsure = torch.zeros_like(values, dtype=torch.bool)
            for name, radius in tests.items():
                unsure |= ~inside[name] & (values - errors <= radius)
            if unsure.any():
                where = unsure.nonzero().flatten()
                exact = real.exact_sq_distances(fake, ii[where], jj[where])
                for name, radius in tests.items():
                    inside[name][where] = exact <= radius[where]
            if real_pr is not None:
                out["fake_in_real_pr"][jj[inside["fake_in_real_pr"]]] = True
                out["real_in_fake_pr"][ii[inside["real_in_fake_pr"]]] = True
            if real_dc is not None:
                hits = inside["dc"]
                out["density_hits"] += torch.bincount(jj[hits], minlength=len(fake))
                out["real_covered"][ii[hits]] = True
    return out


def precision_recall(fake, real, k: int = 3, block_size: int = DEFAULT_BLOCK_SIZE):
    """(precision, recall) of generated `fake` against `real` features."""
    result = manifold_metrics(fake, real, k_pr=k, which=("pr",), block_size=block_size)
    return result["precision"], result["recall"]


def density_coverage(fake, real, k: int = 5, block_size: int = DEFAULT_BLOCK_SIZE):
    """(density, coverage) of generated `fake` against `real` features."""
    result = manifold_metrics(fake, real, k_dc=k, which=("dc",), block_size=block_size)
    return result["density"], result["coverage"]


def knn_radii(
    x, k: int = 3, block_size: int = DEFAULT_BLOCK_SIZE, projection_dim: int | None = None
) -> np.ndarray:
    """Exact distance from each row to its k-th nearest other row (float64)."""
    x = _matrix(x, min_rows=2, keep_float32=True)
    (points,) = _prepare(x, projection_dim=projection_dim)
    with _ieee_float32_matmul():
        squared = _knn_sq_radii(points, (k,), block_size)[k]
    return np.sqrt(squared.numpy() / points.scale_sq)
