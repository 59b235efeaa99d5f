"""fidlens.metrics.fid_gradient: the closed-form per-image FID values and gradients against
direct FID computations and autograd (float64), at N > D and at N < D (the exact feature-space
form: autograd through `eigh` is undefined on a singular covariance)."""

import numpy as np
import pytest
import torch

from fidlens.metrics import feature_statistics, fid_from_features
from fidlens.metrics.fid_gradient import FIDGradient, _rank_one_trace_sqrt

# (source N, target M, D): both full rank; both singular; target more singular than source.
CASES = [(60, 80, 12), (20, 30, 40), (25, 15, 40)]


def sets(n, m, dim, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mix + 0.3, rng.normal(size=(m, dim)) @ mix.T


def comparison(x, y) -> FIDGradient:
    return FIDGradient(*feature_statistics(y), *feature_statistics(x), len(x))


def torch_fid(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """FID of two feature sets by autograd-friendly formulas: N > D, sum of the square roots
    of the eigenvalues of R Sx R (R = sqrt(Sy), a constant); otherwise the nuclear norm of
    Xc Yc^T / sqrt((n - 1)(m - 1)) over its nonzero singular values (centring leaves one zero,
    whose singular vectors are arbitrary)."""
    n, m, dim = len(x), len(y), x.shape[1]
    xc, yc = x - x.mean(0), y - y.mean(0)
    sx, sy = xc.T @ xc / (n - 1), yc.T @ yc / (m - 1)
    mean_term = ((x.mean(0) - y.mean(0)) ** 2).sum()
    if min(n, m) - 1 >= dim:
        values, vectors = torch.linalg.eigh(sy.detach())
        root = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
        tr_sqrt = torch.linalg.eigvalsh(root @ sx @ root).clamp_min(0).sqrt().sum()
    else:
        singular = torch.linalg.svdvals(xc @ yc.T / np.sqrt((n - 1) * (m - 1)))
        tr_sqrt = singular[: min(n, m, dim) - 1].sum()
    return mean_term + sx.trace() + sy.trace() - 2 * tr_sqrt


def autograd_row(x: np.ndarray, y: np.ndarray, row: np.ndarray, index: int | None):
    """FID and its gradient with respect to `row`, put at `index` of x (None: appended)."""
    variable = torch.tensor(row, dtype=torch.float64, requires_grad=True)
    base = torch.from_numpy(x)
    if index is None:
        stacked = torch.cat([base, variable[None]])
    else:
        stacked = torch.cat([base[:index], variable[None], base[index + 1 :]])
    value = torch_fid(stacked, torch.from_numpy(y))
    value.backward()
    return value.item(), variable.grad.numpy()


def assert_gradient_close(got, want, rtol=1e-9):
    assert np.abs(got - want).max() <= rtol * np.abs(want).max()


@pytest.mark.parametrize("n,m,dim", CASES)
def test_fid_equals_the_exact_fid(n, m, dim):
    x, y = sets(n, m, dim)
    assert comparison(x, y).fid == pytest.approx(fid_from_features(x, y), rel=1e-12)


@pytest.mark.parametrize("n,m,dim", CASES)
def test_member_gradients_equal_autograd(n, m, dim):
    x, y = sets(n, m, dim)
    grads = comparison(x, y).member_gradients(x[:4])
    for i in range(4):
        value, want = autograd_row(x, y, x[i], i)
        assert value == pytest.approx(fid_from_features(x, y), rel=1e-10)
        assert_gradient_close(grads[i], want)


@pytest.mark.parametrize("n,m,dim", CASES)
def test_leave_one_out_equals_fid_without_the_image(n, m, dim):
    x, y = sets(n, m, dim)
    got = comparison(x, y).leave_one_out(x[:6])
    want = [fid_from_features(np.delete(x, i, axis=0), y) for i in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("n,m,dim", CASES)
def test_added_image_value_and_gradient(n, m, dim):
    x, y = sets(n, m, dim)
    extra = sets(3, 2, dim, seed=1)[0]
    values, grads = comparison(x, y).added(extra)
    for i, row in enumerate(extra):
        value, want = autograd_row(x, y, row, None)
        assert values[i] == pytest.approx(fid_from_features(np.vstack([x, row]), y), rel=1e-12)
        assert values[i] == pytest.approx(value, rel=1e-10)
        assert_gradient_close(grads[i], want)


@pytest.mark.parametrize("n,m,dim", CASES)
def test_swapped_pair_value_and_gradient(n, m, dim):
    x, y = sets(n, m, dim)
    good = sets(1, 2, dim, seed=2)[0][0]
    value, grad = comparison(x, y).swapped(x[5], good)
    swapped = x.copy()
    swapped[5] = good
    assert value == pytest.approx(fid_from_features(swapped, y), rel=1e-12)
    assert_gradient_close(grad, autograd_row(x, y, good, 5)[1])


SECULAR_CASES = ["distinct", "repeated poles", "zero poles", "zero weights"]


@pytest.mark.parametrize(
    "case,rho",
    [(case, 0.7) for case in SECULAR_CASES]
    + [(case, -0.02) for case in SECULAR_CASES]
    + [("downdate to zero", -0.02)],
)
def test_rank_one_trace_sqrt_equals_the_eigenvalues(case, rho):
    rng = np.random.default_rng(3)
    d, w = np.sort(rng.uniform(0.01, 2.0, 30)), rng.normal(size=30)
    if case == "repeated poles":
        d[5:9] = d[5]
        d[20:22] = d[20]
    elif case in ("zero poles", "downdate to zero"):
        d[:7] = 0.0
    elif case == "zero weights":
        w[[2, 11, 17]] = 0.0
    if rho < 0:
        # A downdate stays positive semi-definite when |rho| sum w^2 / d <= 1 (and w = 0 on
        # zero poles); equality removes a direction: one eigenvalue becomes exactly 0.
        w[d == 0] = 0.0
        share = 1.0 if case == "downdate to zero" else 0.9
        w *= np.sqrt(share / (-rho * (w[d > 0] ** 2 / d[d > 0]).sum()))
    eigenvalues = np.linalg.eigvalsh(np.diag(d) + rho * np.outer(w, w))
    got, grad = _rank_one_trace_sqrt(d, w, rho, gradient=True)
    # Eigenvalues at rounding level are zeros (their square roots would be ~1e-8 of noise).
    zero = eigenvalues <= 1e-13 * eigenvalues.max()
    want = np.sqrt(np.where(zero, 0.0, eigenvalues)).sum()
    assert got == pytest.approx(want, rel=1e-12)
    if case in ("distinct", "zero weights"):
        variable = torch.tensor(w, requires_grad=True)
        update = torch.diag(torch.from_numpy(d)) + rho * torch.outer(variable, variable)
        torch.linalg.eigvalsh(update).sqrt().sum().backward()
        assert_gradient_close(grad, variable.grad.numpy())


def test_errors_name_the_problem():
    x, y = sets(20, 20, 5)
    with pytest.raises(ValueError, match="at least 3 images"):
        FIDGradient(*feature_statistics(y), *feature_statistics(x[:2]), 2)
    with pytest.raises(ValueError, match="dimensions differ"):
        FIDGradient(*feature_statistics(y[:, :4]), *feature_statistics(x), 20)
    with pytest.raises(ValueError, match="4 dimensions, the statistics 5"):
        comparison(x, y).member_gradients(np.zeros((2, 4)))
