"""Exact FID of one image's contribution, and its gradient, at O(D^2) per image or less.

For Grad-CAM of FID (seed 000 §4.1; seed 002) each image is treated as the N-th image of the
generated (source) set: starting from statistics (mu0, sigma0) of m = N - 1 images,

    mu'    = ((N - 1) / N) mu0 + f / N
    sigma' = ((N - 2) / (N - 1)) sigma0 + (1 / N) (f - mu0)(f - mu0)^T

(the usual one-sample update of the unbiased covariance). FID(mu_r, sigma_r, mu', sigma') is a
function of the image's features f, and its gradient is what the attention maps back-propagate.

Everything is computed in a basis fixed per comparison: with sigma_r = F F^T (F: D x r, the
eigen-factor with rounding-level directions removed), tr sqrt(sigma' sigma_r) is the trace of
the square root of S' = F^T sigma' F (r x r), and with M = F^T sigma_g F = Q diag(l) Q^T (one
eigendecomposition per comparison) S' is a diagonal-plus-rank-one matrix in the Q basis:
S' = a diag(l) + rho w w^T, w = (F Q)^T (f - mu0). Its trace square root differs from
sum sqrt(a l) by a one-dimensional integral whose integrand costs O(r) (Sherman-Morrison on the
resolvent; `_rank_one_trace_sqrt`), and so does its gradient in w. So nothing is
differentiated through an eigensolver, and an image costs O(D r) after the per-comparison
factorisation:

- `member_gradients`: an image of the source set, re-added to the set without it: then S' is M
  itself and d FID / d f needs only M's eigenvectors (no integral);
- `leave_one_out`: FID of the source set without each image (a rank-one downdate);
- `added`: an image that is not in the set, added as the (N + 1)-th;
- `swapped`: a member replaced by another image (few pairs: one eigendecomposition each).

Singular covariances (N <= D, low-rank features) are exact too: eigenvalues at rounding level
(numpy's matrix_rank rule) are zeros, and the square root's derivative is taken on the range,
where the rank does not change when one image moves (one image re-added to N - 1 others keeps
N - 1 directions).
"""

from __future__ import annotations

import numpy as np

from fidlens.metrics._common import _EPS64, _matrix
from fidlens.metrics.fid import _nonnegative_fid, _psd_factor, check_statistics

_STEP = 0.25  # trapezoid step in u = log s (see _rank_one_trace_sqrt)


class FIDGradient:
    """One (source, target) comparison: target statistics (mu_r, sigma_r) and the source set's
    (mu_g, sigma_g, from n_g images) fixed; an O(D^3) factorisation at construction, then O(D^2)
    per image.

    mu_r, mu_g: (D,); sigma_r, sigma_g: (D, D) unbiased covariances (any source: they are
    validated with `check_statistics`). Raises ValueError for invalid statistics, differing
    dimensions, or n_g < 3 (leaving one image out must leave a covariance).

    Attributes: `fid` (float, the comparison's FID, from the same factorisation the per-image
    values use, so that differences between them are exact), `n`, `dim`, `rank` (of F^T sigma_g F).
    """

    def __init__(self, mu_r, sigma_r, mu_g, sigma_g, n_g: int):
        mu_r, sigma_r = check_statistics(mu_r, sigma_r, "target statistics")
        mu_g, sigma_g = check_statistics(mu_g, sigma_g, "source statistics")
        if len(mu_r) != len(mu_g):
            raise ValueError(f"feature dimensions differ: {len(mu_g)} vs {len(mu_r)}")
        if int(n_g) < 3:
            raise ValueError(f"the source set needs at least 3 images, got n_g = {n_g}")
        self.n, self.dim = int(n_g), len(mu_r)
        self.mu_r, self.mu_g, self.sigma_g = mu_r, mu_g, sigma_g
        self.trace_r, self.trace_g = float(np.trace(sigma_r)), float(np.trace(sigma_g))
        self.factor = _psd_factor(sigma_r)  # F: D x r
        self._eigen = _Eigen(_congruence(self.factor, sigma_g))
        self.basis = self.factor @ self._eigen.vectors  # F Q: D x r
        self.rank = int(self._eigen.keep.sum())
        diff = mu_g - mu_r
        self.fid = _nonnegative_fid(
            float(diff @ diff) + self.trace_r + self.trace_g - 2.0 * self._eigen.trace_sqrt,
            self.trace_r + self.trace_g,
        )

    def _fid(self, mu, trace_sigma, trace_sqrt) -> np.ndarray:
        diff = mu - self.mu_r
        return np.einsum("...i,...i->...", diff, diff) + self.trace_r + trace_sigma - 2 * trace_sqrt

    def member_gradients(self, x) -> np.ndarray:
        """x: (B, D) features of images IN the source set. Returns (B, D) float64 d FID / d f,
        each image re-added as the N-th image to the set without it (so FID is `self.fid`):
        2 (mu - mu_r) / N + 2 u / N - 2 F S^(-1/2) F^T u / N with u = f - mu_{-i} and S = M
        (its pseudo-inverse square root on the range)."""
        x = self._rows(x)
        n = self.n
        u = (x - self.mu_g) * (n / (n - 1))
        return 2.0 / n * (self.mu_g - self.mu_r + u - self._eigen.inverse_sqrt(u, self.basis))

    def leave_one_out(self, x) -> np.ndarray:
        """x: (B, D) features of images IN the source set. Returns (B,) the exact FID of the
        source set without each image: mu_{-i} = mu - u / (N - 1), sigma_{-i} =
        ((N - 1) / (N - 2)) sigma - N / ((N - 1)(N - 2)) u u^T with u = f - mu."""
        x = self._rows(x)
        n = self.n
        alpha, beta = (n - 1) / (n - 2), n / ((n - 1) * (n - 2))
        u = x - self.mu_g
        w = u @ self.basis
        trace_sqrt = np.array(
            [_rank_one_trace_sqrt(alpha * self._eigen.values, row, -beta)[0] for row in w]
        )
        trace_sigma = alpha * self.trace_g - beta * np.einsum("ij,ij->i", u, u)
        values = self._fid(self.mu_g - u / (n - 1), trace_sigma, trace_sqrt)
        return np.maximum(values, 0.0)

    def added(self, f) -> tuple[np.ndarray, np.ndarray]:
        """f: (B, D) features of images NOT in the source set, each added as the (n_g + 1)-th.
        Returns (B,) FID and (B, D) d FID / d f (O(D r) per image)."""
        f = self._rows(f)
        m = self.n
        a, rho = (m - 1) / m, 1.0 / (m + 1)
        u = f - self.mu_g
        w = u @ self.basis
        trace_sqrt, grad_w = zip(
            *(_rank_one_trace_sqrt(a * self._eigen.values, row, rho, gradient=True) for row in w),
            strict=True,
        )
        mu = self.mu_g + u / (m + 1)
        trace_sigma = a * self.trace_g + rho * np.einsum("ij,ij->i", u, u)
        fid = self._fid(mu, trace_sigma, np.array(trace_sqrt))
        gradient = 2.0 / (m + 1) * (mu - self.mu_r + u) - 2.0 * np.stack(grad_w) @ self.basis.T
        return np.maximum(fid, 0.0), gradient

    def swapped(self, bad, good) -> tuple[float, np.ndarray]:
        """bad: (D,) features of a member of the source set; good: (D,) an image put in its
        place. Returns the FID of the swapped set and d FID / d(good) (D,). One
        eigendecomposition per call (O(D^3)): meant for a few good/bad pairs."""
        bad, good = self._rows(bad)[0], self._rows(good)[0]
        n = self.n
        u0 = bad - self.mu_g
        mu_without = self.mu_g - u0 / (n - 1)
        sigma = (n - 1) / (n - 2) * self.sigma_g - n / ((n - 1) * (n - 2)) * np.outer(u0, u0)
        u = good - mu_without
        mu = mu_without + u / n
        sigma = (n - 2) / (n - 1) * sigma + np.outer(u, u) / n
        eigen = _Eigen(_congruence(self.factor, sigma))
        fid = float(self._fid(mu, float(np.trace(sigma)), eigen.trace_sqrt))
        basis = self.factor @ eigen.vectors
        gradient = 2.0 / n * (mu - self.mu_r + u - eigen.inverse_sqrt(u[None], basis)[0])
        return max(fid, 0.0), gradient

    def _rows(self, x) -> np.ndarray:
        x = _matrix(np.atleast_2d(x), "features")
        if x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions, the statistics {self.dim}")
        return x


def _congruence(factor: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """F^T sigma F, exactly symmetric."""
    product = factor.T @ (sigma @ factor)
    return (product + product.T) / 2


class _Eigen:
    """Eigendecomposition of a symmetric PSD r x r matrix with rounding-level eigenvalues
    (below r * eps * max, numpy's matrix_rank rule) set to zero."""

    def __init__(self, matrix: np.ndarray):
        values, self.vectors = np.linalg.eigh(matrix)
        top = max(float(values[-1]), 0.0) if len(values) else 0.0
        self.keep = values > len(values) * _EPS64 * top
        self.values = np.where(self.keep, values, 0.0)
        self.trace_sqrt = float(np.sqrt(self.values).sum())

    def inverse_sqrt(self, u: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """Rows u (B, D) -> F S^(-1/2) F^T u on the range of S (basis = F Q: D x r)."""
        kept = basis[:, self.keep]
        return ((u @ kept) / np.sqrt(self.values[self.keep])) @ kept.T


def _rank_one_trace_sqrt(d, w, rho: float, gradient: bool = False):
    """tr sqrt(diag(d) + rho w w^T) for d >= 0 (r,) and a positive semi-definite result, and
    optionally its gradient with respect to w (r,).

    The change from tr sqrt(diag(d)) is an integral with an O(r) integrand: for PSD A,
    sqrt(a) = (2 / pi) int_0^inf a / (a + s^2) ds, so

        tr sqrt(A) - tr sqrt(D) = (2 / pi) int_0^inf s^2 [tr (D + s^2)^-1 - tr (A + s^2)^-1] ds,

    and by Sherman-Morrison tr (D + s^2)^-1 - tr (A + s^2)^-1 = rho g2 / (1 + rho g1) with
    g1 = sum w_k^2 / (d_k + s^2), g2 = sum w_k^2 / (d_k + s^2)^2. With s = e^u the integrand is
    analytic in the strip |Im u| < pi / 2 (its singularities lie at s^2 = -d_k and s^2 = -t_j,
    the eigenvalues), so the trapezoid rule with step h converges like exp(-pi^2 / h)
    (Trefethen & Weideman 2014): h = 1/4 leaves ~1e-17 relative, over a range of u that covers
    every eigenvalue's scale with 40 units to spare on each side. About 400 nodes: O(400 r) per
    image, no eigensolver, no root finding.

    Downdates (rho < 0) that remove a direction (the N < D case: one image fewer) make
    1 + rho g1 vanish as s -> 0; it is computed as delta0 + |rho| s^2 sum w^2 / (d (d + s^2))
    with delta0 = 1 + rho g1(0) set to 0 when it is at rounding level, so that no rounding-level
    eigenvalue contributes its square root (~1e-8).
    """
    d, w = np.asarray(d, np.float64), np.asarray(w, np.float64)
    w2 = w * w
    base = float(np.sqrt(np.maximum(d, 0.0)).sum())
    grad = np.zeros_like(w) if gradient else None
    if rho == 0 or not w2.any():
        return base, grad
    top = float(d.max(initial=0.0)) + abs(rho) * float(w2.sum())
    positive = d[d > _EPS64 * top]
    bottom = min(float(positive.min()) if len(positive) else top, top) * 1e-4
    u = np.arange(0.5 * np.log(bottom) - 40.0, 0.5 * np.log(top) + 40.0, _STEP)
    s2 = np.exp(2.0 * u)
    inv = 1.0 / (d[None, :] + s2[:, None])  # (nodes, r)
    g1, g2 = inv @ w2, (inv * inv) @ w2
    if rho > 0:
        denominator = 1.0 + rho * g1
    else:
        # Weight on zero eigenvalues can only be rounding (else the result is not PSD).
        live = d > 0
        rounding = 8 * len(d) * _EPS64 * top
        if abs(rho) * float(w2[~live].sum()) > rounding:
            raise ValueError(
                "the downdate is not positive semi-definite: it has weight on a zero eigenvalue"
            )
        w2 = np.where(live, w2, 0.0)
        g1, g2 = inv @ w2, (inv * inv) @ w2
        terms = w2[live] / d[live]
        delta0 = 1.0 + rho * float(terms.sum())
        # The smallest eigenvalue is about delta0 / (|rho| sum w^2 / d^2): within rounding of
        # zero (numpy's matrix_rank rule, as for every other eigenvalue) it is zero.
        smallest = delta0 / (-rho * float((terms / d[live]).sum()))
        if smallest < -rounding:
            raise ValueError(
                f"the downdate is not positive semi-definite (an eigenvalue of {smallest:.3g})"
            )
        if abs(smallest) <= rounding:
            delta0 = 0.0
        ratio = np.zeros_like(d)
        ratio[live] = terms
        denominator = delta0 - rho * s2 * (inv @ ratio)
    # Trapezoid in u: ds = s du, so each node weighs s * s^2 * integrand * h.
    weight = (2.0 / np.pi) * _STEP * s2 * np.sqrt(s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(denominator > 0, rho * g2 / denominator, 0.0)
    change = float(weight @ integrand)
    if gradient:
        # d/dw_k [rho g2 / (1 + rho g1)] = 2 rho w_k [inv_k^2 / den - rho g2 inv_k / den^2]
        first = weight * rho / denominator
        second = weight * rho * rho * g2 / denominator**2
        grad = 2.0 * w * (first @ (inv * inv) - second @ inv)
    return base + change, grad
