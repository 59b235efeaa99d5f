"""FID of a weighted generated set against fixed real statistics, its analytic gradient, an
L-BFGS solver on per-image log-weights, and resampling with replacement by weights.

Notation: generated features x_i (n rows, D columns), weights p_i >= 0 summing to 1, and the
real set's mean m and covariance S_r = F F^T (F: D x r, the eigen-directions of S_r above
rounding level, computed once). The weighted statistics are

    mu_p    = sum_i p_i x_i
    Sigma_p = c sum_i p_i (x_i - mu_p)(x_i - mu_p)^T,    c = M / (M - 1),

so that a multiset of M rows with counts k_i gives, with p = k / M, exactly the unbiased
sample mean and covariance that FID uses, and uniform weights (M = n) give the generated
set's own FID. The Fréchet distance is

    FID(p) = |mu_p - m|^2 + tr Sigma_p + tr S_r - 2 tr sqrt(Sigma_p S_r).

The trace term is taken in the r-dimensional frame of F: Sigma_p S_r is similar to
C = F^T Sigma_p F (r x r), so tr sqrt(Sigma_p S_r) = sum_j sqrt(lambda_j(C)): one symmetric
eigendecomposition per evaluation. C is the weighted covariance of the rows of P = X F
(projected once, n x r), so an evaluation costs two n x r x r products and one r x r eigh.

Gradient (p on the simplex; entries up to one shared constant, which the log-weight chain
rule removes). With z_i = P_i - P^T p and C = V diag(lambda) V^T,

    dFID/dp_i = 2 x_i . (mu_p - m) + c |x_i - mu_p|^2 - c z_i^T C^{-1/2} z_i,

since d tr sqrt(C) = tr(C^{-1/2} dC) / 2 and dC/dp_i = c z_i z_i^T (+ a constant). When C is
singular (fewer generated rows than r) the inverse square root is taken on its range, which
holds every dC (all z_i lie in it). The solver optimises log-weights theta, p = softmax(theta):
dFID/dtheta_j = p_j (g_j - sum_i p_i g_i).

Everything is float64 torch on the CPU or a GPU. Pure maths: no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import torch

_EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Reference:
    """A real set's statistics for repeated Fréchet distances against it: its mean, a factor
    F of its covariance (sigma = F F^T, directions at rounding level dropped) and tr sigma."""

    mean: np.ndarray
    factor: np.ndarray
    trace: float

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def rank(self) -> int:
        return int(self.factor.shape[1])


def reference_from_statistics(mean, sigma) -> Reference:
    """Factor a real set's (mean, covariance) once: sigma = V diag(l) V^T, F = V sqrt(l) over
    the eigenvalues above D * eps * max(l) (numpy's matrix_rank rule, as fidlens.metrics)."""
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    dim = mean.shape[0] if mean.ndim == 1 else -1
    if mean.ndim != 1 or sigma.shape != (dim, dim):
        raise ValueError(f"need a D-vector and a D x D matrix, got {mean.shape}, {sigma.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(sigma).all()):
        raise ValueError("the reference statistics have NaN or Inf values")
    symmetric = torch.from_numpy((sigma + sigma.T) / 2)
    eigenvalues, vectors = torch.linalg.eigh(symmetric)
    keep = eigenvalues > dim * _EPS64 * float(eigenvalues.max().clamp_min(0))
    factor = (vectors[:, keep] * eigenvalues[keep].sqrt()).numpy()
    return Reference(mean=mean, factor=np.ascontiguousarray(factor), trace=float(np.trace(sigma)))


def sample_correction(size: int) -> float:
    """c = M / (M - 1): weights k / M of a multiset of M rows then give its unbiased covariance."""
    if size < 2:
        raise ValueError(f"a sample needs at least 2 rows for a covariance, got {size}")
    return size / (size - 1)


def softmax(log_weights) -> np.ndarray:
    theta = np.asarray(log_weights, dtype=np.float64)
    shifted = np.exp(theta - theta.max())
    return shifted / shifted.sum()


class WeightedFrechet:
    """FID between the weighted rows of `features` (a generated set, n x D) and a `Reference`
    (a real set), for any weights: `fid(p)`, `fid_and_gradient(p)`, and the log-weight form
    the solver uses, `log_weight_objective(theta)`.

    The features are centred on their own mean first (every term but the mean difference is
    translation invariant), which keeps tr Sigma_p = c (sum p_i |x_i|^2 - |mu_p|^2) free of
    cancellation, and projected onto the reference's factor once."""

    def __init__(self, features, reference: Reference, device: str | torch.device = "cpu"):
        x = np.asarray(features)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"features must be N x D with N >= 2, got shape {x.shape}")
        if x.shape[1] != reference.dim:
            raise ValueError(
                f"feature dimensions differ: features {x.shape[1]}, reference {reference.dim}"
            )
        if not np.isfinite(x).all():
            raise ValueError("features have NaN or Inf values")
        self.n, self.dim = x.shape
        self.reference = reference
        self.device = torch.device(device)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(self.device)
        shift = t.mean(dim=0)
        self._x = t - shift
        self._target = torch.from_numpy(reference.mean).to(self.device) - shift
        self._sq_norms = (self._x * self._x).sum(dim=1)
        factor = torch.from_numpy(reference.factor).to(self.device)
        self._projected = self._x @ factor  # P = X F, n x r
        self._reference_trace = reference.trace

    def uniform(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)

    def fid(self, weights, correction: float | None = None) -> float:
        """FID of the weighted statistics; `correction` c defaults to n / (n - 1)."""
        return self._evaluate(weights, correction, gradient=False)[0]

    def fid_of_counts(self, counts) -> float:
        """FID of the multiset holding row i counts[i] times (exactly the FID of those rows)."""
        counts = np.asarray(counts, dtype=np.float64)
        size = counts.sum()
        return self.fid(counts / size, sample_correction(int(round(size))))

    def fid_and_gradient(self, weights, correction: float | None = None):
        """(FID, dFID/dp as a float64 array; entries up to one shared additive constant)."""
        value, gradient = self._evaluate(weights, correction, gradient=True)
        return value, gradient.cpu().numpy()

    def log_weight_objective(self, log_weights, correction: float | None = None):
        """(FID, dFID/dtheta) at p = softmax(theta)."""
        p = softmax(log_weights)
        value, gradient = self._evaluate(p, correction, gradient=True)
        g = gradient.cpu().numpy()
        return value, p * (g - p @ g)

    def _evaluate(self, weights, correction, gradient: bool):
        with _threads_for(self.n * self._projected.shape[1] ** 2, self.device):
            return self._evaluate_here(weights, correction, gradient)

    def _evaluate_here(self, weights, correction, gradient: bool):
        c = sample_correction(self.n) if correction is None else float(correction)
        p = torch.as_tensor(np.asarray(weights, dtype=np.float64), device=self.device)
        if p.shape != (self.n,):
            raise ValueError(f"need {self.n} weights, got shape {tuple(p.shape)}")
        mu = self._x.T @ p
        diff = mu - self._target
        trace_p = c * (p @ self._sq_norms - mu @ mu)
        z = self._projected - self._projected.T @ p
        weighted = z * p.clamp_min(0).sqrt()[:, None]
        cov = c * (weighted.T @ weighted)
        eigenvalues, vectors = torch.linalg.eigh((cov + cov.T) / 2)
        keep = eigenvalues > len(cov) * _EPS64 * float(eigenvalues.max().clamp_min(0))
        kept = eigenvalues[keep]
        value = diff @ diff + trace_p + self._reference_trace - 2.0 * kept.sqrt().sum()
        if not gradient:
            return float(value), None
        distances = self._sq_norms - 2.0 * (self._x @ mu) + mu @ mu  # |x_i - mu_p|^2
        b = (z @ vectors[:, keep]) * kept.pow(-0.25)
        grad = 2.0 * (self._x @ diff) + c * distances - c * (b * b).sum(dim=1)
        return float(value), grad


# Below this many multiply-adds per product an evaluation runs on one thread: small products
# (the demo's 50 images) are dominated by thread hand-offs, which a busy machine makes slow
# (measured: 4 ms per evaluation on one thread, 20 ms on two, for 50 rows x 124 columns).
SMALL_PRODUCT = 2e7


@contextmanager
def _threads_for(multiply_adds: float, device: torch.device):
    if device.type != "cpu" or multiply_adds >= SMALL_PRODUCT or torch.get_num_threads() == 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# The solver
# ---------------------------------------------------------------------------------------------


@dataclass
class Optimum:
    """What `minimise_fid` found: the weights, the FID before (uniform) and after, and how."""

    log_weights: np.ndarray
    weights: np.ndarray
    fid_uniform: float
    fid: float
    iterations: int
    evaluations: int
    seconds: float
    stop_reason: str
    # Best FID so far after each evaluation: (evaluation, seconds since the start, FID).
    trace: list[tuple[int, float, float]] = field(default_factory=list)

    def fid_at(self, seconds: float) -> float:
        """Best FID reached within `seconds` of the start (uniform FID before any step)."""
        reached = [fid for _, elapsed, fid in self.trace if elapsed <= seconds]
        return min(reached) if reached else self.fid_uniform

    def effective_sample_size(self) -> float:
        """1 / sum p_i^2: n for uniform weights, 1 when one image holds all the weight."""
        return float(1.0 / np.sum(self.weights**2))


class _OutOfTime(Exception):
    pass


def minimise_fid(
    objective: WeightedFrechet,
    max_iterations: int = 1000,
    time_limit_s: float | None = None,
    tolerance: float = 1e-12,
    history: int = 20,
    correction: float | None = None,
    progress: Callable[[int, float, float], None] | None = None,
) -> Optimum:
    """Minimise FID(softmax(theta)) over the log-weights theta with L-BFGS (scipy's L-BFGS-B,
    no bounds), from uniform weights (theta = 0).

    Stops after `max_iterations` iterations, when an iteration lowers the FID by less than
    `tolerance` relative to the uniform-weight FID, or once `time_limit_s` seconds have passed
    (then the best point evaluated so far is returned). `progress(iteration, seconds, fid)` is
    called after every iteration."""
    if max_iterations < 1:
        raise ValueError("max_iterations must be at least 1")
    start = time.perf_counter()
    theta0 = np.zeros(objective.n)
    fid0, grad0 = objective.log_weight_objective(theta0, correction)
    # Scaled to 1 at the start, so that L-BFGS-B's tolerance (relative to max(|f|, 1)) is
    # relative to the uniform-weight FID, whatever the features' scale.
    scale = abs(fid0) if fid0 != 0 else 1.0
    state = {"best": fid0, "theta": theta0, "evaluations": 1, "iterations": 0, "started": False}
    trace = [(1, time.perf_counter() - start, fid0)]

    def fun(theta):
        if not state["started"] and not theta.any():  # L-BFGS-B starts at theta0
            state["started"] = True
            return fid0 / scale, grad0 / scale
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
            raise _OutOfTime
        value, grad = objective.log_weight_objective(theta, correction)
        state["evaluations"] += 1
        if value < state["best"]:
            state["best"], state["theta"] = value, theta.copy()
        trace.append((state["evaluations"], time.perf_counter() - start, state["best"]))
        return value / scale, grad / scale

    def callback(theta):
        state["iterations"] += 1
        if progress is not None:
            progress(state["iterations"], time.perf_counter() - start, state["best"])

    try:
        result = scipy.optimize.minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={
                "maxiter": int(max_iterations),
                "maxfun": 20 * int(max_iterations) + 20,
                "ftol": float(tolerance),
                "gtol": 0.0,
                "maxcor": int(history),
                "maxls": 40,
            },
        )
        reason = str(result.message)
    except _OutOfTime:
        reason = f"time limit of {time_limit_s:g} s reached"
    theta = state["theta"]
    return Optimum(
        log_weights=theta,
        weights=softmax(theta),
        fid_uniform=fid0,
        fid=state["best"],
        iterations=state["iterations"],
        evaluations=state["evaluations"],
        seconds=time.perf_counter() - start,
        stop_reason=reason,
        trace=trace,
    )


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


def systematic_counts(weights, size: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each row is drawn when `size` rows are drawn with replacement with
    probabilities `weights`, by systematic resampling: one uniform offset u, draws at
    (u + k) / size, k = 0 .. size - 1, on the cumulative weights. Each row is drawn
    floor(size p_i) or ceil(size p_i) times (an unbiased, low-variance multinomial draw), so
    uniform weights with size = n give every row exactly once."""
    p = np.asarray(weights, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0 or (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
        raise ValueError("weights must be a non-empty vector of finite non-negative numbers")
    if size < 1:
        raise ValueError("size must be at least 1")
    cumulative = np.cumsum(p / p.sum())
    # Rounding never sends a draw past the last row with weight (nor onto a zero weight).
    cumulative[np.flatnonzero(p > 0)[-1]:] = math.inf
    positions = (rng.random() + np.arange(size)) / size
    rows = np.searchsorted(cumulative, positions, side="right")
    return np.bincount(rows, minlength=len(p)).astype(np.int64)


def counts_to_indices(counts) -> np.ndarray:
    """Row indices of a multiset: row i repeated counts[i] times."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.repeat(np.arange(len(counts)), counts)
