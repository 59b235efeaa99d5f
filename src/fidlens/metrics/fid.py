"""FID: feature statistics, checks of outside statistics, the Frechet distance, and the exact
feature-space form for N < D."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

from fidlens.metrics._common import _EPS64, _matrix, _same_dim

# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


# Rows per chunk of the scatter: a float64 centred copy of 2048 rows (16 KB each at D = 2048)
# keeps the working set small while each rank-k update still runs near BLAS peak.
STATISTICS_CHUNK_ROWS = 2048


def feature_statistics(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D x D, divided by N - 1) of the rows of `x`
    (N x D, float32 or float64; N >= 2), in float64.

    float32 input is never copied whole: the mean is summed in float64, and the scatter is a
    sum of symmetric rank-k updates (BLAS dsyrk) of float64 centred chunks of
    STATISTICS_CHUNK_ROWS rows. Raises ValueError for non-finite values or N < 2."""
    x = _matrix(x, min_rows=2, keep_float32=True)
    mu = x.mean(axis=0, dtype=np.float64)
    sigma = _scatter(x, mu)
    sigma /= len(x) - 1
    return mu, sigma


def _scatter(x: np.ndarray, mu: np.ndarray, chunk: int = STATISTICS_CHUNK_ROWS) -> np.ndarray:
    """(X - mu)^T (X - mu) (D x D, float64), exactly symmetric: symmetric rank-k updates
    (BLAS dsyrk) compute one triangle, half the work of a general product, and it is mirrored.

    Each chunk is centred into a C-ordered float64 buffer whose transpose is the Fortran
    operand dsyrk wants (no copy by f2py); the accumulator is Fortran-ordered and updated in
    place (beta = 1)."""
    dim = x.shape[1]
    lower = np.zeros((dim, dim), order="F")
    buffer = np.empty((min(chunk, len(x)), dim))
    for start in range(0, len(x), chunk):
        part = buffer[: min(chunk, len(x) - start)]
        np.subtract(x[start : start + chunk], mu, out=part, dtype=np.float64)
        lower = scipy.linalg.blas.dsyrk(
            1.0, part.T, beta=1.0, c=lower, trans=0, lower=1, overwrite_c=1
        )
    # dsyrk leaves the strictly upper triangle as it was (zeros): add the mirrored lower one.
    lower += np.tril(lower, -1).T
    return lower.T  # C-ordered view; the matrix is exactly symmetric


# Statistics from other tools are often stored in float32: symmetry and positive
# semi-definiteness are required to this precision, relative to the largest eigenvalue.
STATISTICS_RTOL = 1e-6


def check_statistics(mu, sigma, name: str = "statistics") -> tuple[np.ndarray, np.ndarray]:
    """Validate a mean (D,) and covariance (D x D) that come from outside this package's own
    computation (a user's arrays, another tool's statistics file) and return them as float64,
    the covariance exactly symmetrised.

    Required: finite values, shapes that agree, sigma symmetric and positive semi-definite
    within STATISTICS_RTOL x its largest eigenvalue (pytorch-fid refuses such input too).
    Raises ValueError naming `name` and the offending value.
    """
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1:
        raise ValueError(f"{name}: the mean must be a vector, got shape {mu.shape}")
    dim = len(mu)
    if sigma.shape != (dim, dim):
        raise ValueError(f"{name}: the covariance must be {dim} x {dim}, got {sigma.shape}")
    for what, value in (("mean", mu), ("covariance", sigma)):
        bad = int(np.count_nonzero(~np.isfinite(value)))
        if bad:
            raise ValueError(f"{name}: the {what} has {bad} NaN or Inf values")
    scale = float(np.abs(np.diagonal(sigma)).max(initial=0.0))
    asymmetry = float(np.abs(sigma - sigma.T).max(initial=0.0))
    if asymmetry > STATISTICS_RTOL * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(
            f"{name}: the covariance is not symmetric (max |sigma - sigma^T| = {asymmetry:.3g} "
            f"against a largest variance of {scale:.3g})"
        )
    sigma = (sigma + sigma.T) / 2
    # A Cholesky of sigma + tol I succeeds exactly when no eigenvalue is below -tol; the
    # eigenvalues are computed only to name the offending one.
    shift = STATISTICS_RTOL * max(float(np.trace(np.abs(sigma))), np.finfo(np.float64).tiny)
    _, info = lapack.dpotrf(sigma + shift * np.eye(dim), lower=1)
    if info != 0:
        eigenvalues = np.linalg.eigvalsh(sigma)
        raise ValueError(
            f"{name}: the covariance is not positive semi-definite: eigenvalue "
            f"{eigenvalues[0]:.6g} against a largest of {eigenvalues[-1]:.6g} (tolerance "
            f"{STATISTICS_RTOL:g} relative); a covariance cannot have negative eigenvalues"
        )
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson & Landau 1982;
    FID, Heusel et al. 2017): |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2).

    Both statistics are validated by `check_statistics` (they may come from anywhere).
    Raises ValueError for invalid statistics or differing dimensions.
    """
    mu1, sigma1 = check_statistics(mu1, sigma1, "mu1/sigma1")
    mu2, sigma2 = check_statistics(mu2, sigma2, "mu2/sigma2")
    if len(mu1) != len(mu2):
        raise ValueError(f"means must be vectors of the same length, got {mu1.shape}, {mu2.shape}")
    return _frechet_distance(mu1, sigma1, mu2, sigma2)


def _frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The formula on float64 statistics known to be valid (computed here, or checked)."""
    diff = mu1 - mu2
    tr_sqrt = trace_sqrt_product(sigma1, sigma2)
    traces = float(np.trace(sigma1) + np.trace(sigma2))
    return _nonnegative_fid(float(diff @ diff) + traces - 2.0 * tr_sqrt, traces)


def _nonnegative_fid(value: float, traces: float) -> float:
    """FID is a squared distance: a negative value can only be rounding (equal
    distributions), and is then reported as such; anything beyond rounding is a bug."""
    if value >= 0:
        return value
    if -value <= 1e-9 * max(traces, 1.0):
        warnings.warn(
            f"FID = {value:.3g} is below 0 by rounding only: the two statistics are equal to "
            "working precision (FID 0)",
            stacklevel=3,
        )
        return value
    raise ValueError(f"FID = {value:.6g} < 0 beyond rounding (traces {traces:.6g})")


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
    lower1 = _clear_cholesky(s1)
    lower2 = _clear_cholesky(s2) if lower1 is not None else None
    if lower2 is not None:
        return _nuclear_norm_of_product(lower1, lower2)
    return _nuclear_norm_of_product(_psd_factor(s1), _psd_factor(s2))


def _clear_cholesky(sigma: np.ndarray) -> np.ndarray | None:
    """Cholesky factor, or None unless every pivot clears rounding level by far (a singular
    matrix can factor with a pivot at rounding level, which would act as a real direction)."""
    lower, info = lapack.dpotrf(sigma, lower=1, clean=1)
    if info != 0:
        return None
    floor = 10 * len(sigma) * _EPS64 * float(sigma.diagonal().max())
    return lower if float(lower.diagonal().min()) ** 2 > floor else None


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F with F F^T = sigma, dropping eigen-directions at rounding level (numpy's matrix_rank
    rule, D * eps * max eigenvalue): taking their square roots would add sqrt(eps) errors."""
    eigenvalues, vectors = scipy.linalg.eigh(sigma, check_finite=False)
    keep = eigenvalues > sigma.shape[0] * _EPS64 * max(float(eigenvalues.max()), 0.0)
    return vectors[:, keep] * np.sqrt(eigenvalues[keep])


def _nuclear_norm_of_product(f1: np.ndarray, f2: np.ndarray) -> float:
    """Sum of singular values of f1^T f2 (float64).

    An SVD, not the square roots of the eigenvalues of G G^T: squaring G would square its
    condition number, and the square roots of rounding-level eigenvalues (the zeros of a
    singular G, e.g. the direction removed by centring) would add ~1e-8 each."""
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    return float(scipy.linalg.svdvals(f1.T @ f2, check_finite=False).sum())


def fid_from_features(x, y) -> float:
    """FID between two feature sets (rows are samples), exact also when N <= D.

    When a set has no more samples than dimensions its covariance is singular for certain, and
    the trace term is computed in feature space: tr sqrt(Sx Sy) is the nuclear norm of
    Xc Yc^T / sqrt((n - 1)(m - 1)) with Xc, Yc the centred features.
    """
    x = _matrix(x, "x", min_rows=2, keep_float32=True)
    y = _matrix(y, "y", min_rows=2, keep_float32=True)
    _same_dim(x, y)
    dim = x.shape[1]
    if min(len(x), len(y)) - 1 >= dim:
        return _frechet_distance(*feature_statistics(x), *feature_statistics(y))
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    fx = xc.T / math.sqrt(len(x) - 1)
    fy = yc.T / math.sqrt(len(y) - 1)
    tr_sqrt = _nuclear_norm_of_product(fx, fy)
    diff = mu_x - mu_y
    trace_x = float((xc * xc).sum()) / (len(x) - 1)
    trace_y = float((yc * yc).sum()) / (len(y) - 1)
    return _nonnegative_fid(
        float(diff @ diff) + trace_x + trace_y - 2.0 * tr_sqrt, trace_x + trace_y
    )
