"""Confidence intervals of every metric by subsampling without replacement, and the paired
interval of the difference between two sources measured against one target.

Pure maths: arrays in, numbers out. Source = generated set (x, fake), target = real (y, real).

Method (`INTERVAL_METHOD`). Resampling *with* replacement duplicates points: a duplicate is a
neighbour at distance 0, which shrinks k-NN radii (precision, recall, density, coverage) and
puts self-pairs off KID's diagonal. So every metric is resampled *without* replacement: each
resample keeps a subset of m = f n rows of each set (the same m in every resample; f =
`subset_fraction`), drawn independently for source and target (`subsample_plan`), and the
metric is recomputed exactly on the two subsets. This is m-out-of-n subsampling (Politis &
Romano 1994, Ann. Statist. 22, 2031; Politis, Romano & Wolf 1999, "Subsampling") with the
finite-population rescaling of the delete-d jackknife histogram (Wu 1990, Ann. Statist. 18,
1438; Shao & Wu 1989, Ann. Statist. 17, 1176): for a statistic with a root-n limit, the spread
of T_m over subsets of m of n rows is (1 - m/n) / m times the per-row variance against 1 / n
for T_n, so

    T_n - E[T_n]  ~  c (T_m - mean of T_m),     c = sqrt(f / (1 - f)),  f = m / n

(c = 1 for the default half-samples). Two sets subsampled with the same f share c.

Centring. FID has an O(1/N) bias (its expectation falls as the sets grow), and precision,
recall, density and coverage depend on N through the k-NN radii; T_m then sits away from T_n by
more than its noise. The subsample distribution is therefore centred on its own mean, not on
the full-set estimate, and the interval is the basic (reverse-percentile) one,

    [T_n - c (q_hi - mean),  T_n - c (q_lo - mean)],   q = quantiles (1 -+ level) / 2 of T_m,

an interval for E[T_n], the expected value of the N-sample statistic (for FID not the
population distance, which T_n over-estimates by its bias; for KID both agree, as KID is
unbiased). It is clipped to the metric's range (FID, density >= 0; P, R, C in [0, 1]).

Limits. The rescaling assumes the root-n regime: where the two distributions are equal (FID
near its bias, real vs real) FID is a degenerate statistic whose noise falls as 1/n, and the
interval is then conservative (at f = 1/2 about twice as wide as needed).

Groups. Each set's rows fall into min(n, 64) random groups of equal size (+-1; `fidlens.
metric_specs.interval_group_counts`) and a resample keeps whole groups, stratified so that m is
fixed. Marginally every resample is a uniformly random m-subset; the groups let FID sum per-group
sums of outer products instead of recomputing covariances (below). They bound the degrees of
freedom of the variance estimate by ~2 x 63 (standard deviation within ~6 %).

Reuse across resamples (results equal a direct computation on the same subsets, to rounding):
- FID: with m - 1 >= D, each group's sum and sum of outer products (packed upper triangles,
  float64, of the set centred on its mean) are computed once; one matrix product with the
  0/1 group-membership matrix gives every resample's covariance; one eigenvalue problem per
  resample remains (`fidlens.metrics.fid.trace_sqrt_product`). With m - 1 < D each resample
  is computed in feature space (`fid_from_features`), which is cheap there.
- KID: the kernel matrices are computed once, block by block, and multiplied by the membership
  matrix of all resamples: every resample's unbiased MMD^2 on its subsets. Where the point
  estimate is the mean over random KID subsets, the interval is widened by the variance those
  subsets add given the data (kid_std^2 / kid_subsets; the subsets are independent draws).
- k-NN: each point's list of nearest neighbours in its full set is computed once, long
  enough that its k-th neighbour within a subset is almost always on it; the list is exact
  (float64 distances) and carries a bound below which it is complete, so the subset's k-th
  neighbour is read off when it lies within the bound, and otherwise taken from the point's
  exact distances to its whole set (computed once for such points). Real x fake pairs that can
  decide a membership in any resample (d^2 up to the largest subset radius of either point)
  are found once, with exact distances, and every resample counts among them.

Paired differences (`difference_intervals`). For sources A and B against one target T, each
resample measures both against the same target subset (the target's plan depends only on the
seed and its name) with A and B subsampled independently; the interval of metric(A) -
metric(B) then comes from the resampled differences, from which T's own noise cancels.

Validation (tests/test_intervals.py): 50 pairs of sets of 200 from two fixed Gaussians in
D = 16, 100 half-samples each: 96 % (FID), 88 % (KID), 92 % (precision) of the 95 % intervals
hold the mean of the 50 estimates; over 300 such pairs FID 96 %, KID 92 %, P 96 %, R 97 %,
D 93 %, C 92 %, over 200 pairs with 200 resamples 97.5, 95.5, 97.5, 94.5, 91.5, 94.5 %.
"""

from __future__ import annotations

import hashlib
import math
import sys
import warnings
import zlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fidlens.metric_specs import INTERVAL_GROUPS, K_DC, K_PR, interval_group_counts
from fidlens.metrics import knn as _knn
from fidlens.metrics._common import DEFAULT_BLOCK_SIZE, _matrix, _same_dim
from fidlens.metrics.fid import _frechet_distance, fid_from_features

# The interval maths from resampled values (no torch) lives in interval_bounds; re-exported.
from fidlens.metrics.interval_bounds import (  # noqa: F401
    DEFAULT_LEVEL,
    METRIC_RANGES,
    difference_intervals,
    interval_scale,
    kid_extra_variance,
    metric_intervals,
    subsample_interval,
)
from fidlens.metrics.mmd import polynomial_kernel

DEFAULT_RESAMPLES = 200
DEFAULT_FRACTION = 0.5
INTERVAL_METHOD = (
    "subsampling without replacement (m-out-of-n, whole random groups, source and target "
    "independently), centred on the subsample mean, scaled by sqrt(f/(1-f)), basic interval"
)
# Memory limits (bytes): the per-group outer products of FID kept between resample chunks, the
# covariances of one chunk of resamples, one chunk of the k-NN counting.
GRAM_CACHE_BYTES = 3 * 2**30
GRAM_CHUNK_BYTES = 2**30
COUNT_CHUNK_ELEMENTS = 10_000_000
# real x fake pairs kept for the k-NN counts; beyond this (a collapsed generator inside a
# few huge balls) each resample is computed directly instead, with a warning.
MAX_PAIRS = 20_000_000
# A subset's k-th neighbour is missing from a point's list with probability at most this.
LIST_MISS_PROBABILITY = 1e-9


def _progress(total: int, desc: str, progress: bool):
    return tqdm(total=total, desc=desc, unit="resample", disable=not progress, file=sys.stderr,
                mininterval=2.0)  # fmt: skip


def _device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------
# Which rows each resample keeps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SubsamplePlan:
    """The rows each resample keeps of one set of n rows.

    group_of: (n,) int64, each row's group; chosen: (R, B) bool, the groups each resample
    keeps; members: (R, m) int64, the rows each resample keeps, ascending. Every resample keeps
    m rows; marginally each is a uniformly random m-subset of the n rows.
    """

    n: int
    group_of: np.ndarray
    chosen: np.ndarray
    members: np.ndarray
    seed: int = 0
    stream: str = ""

    @property
    def resamples(self) -> int:
        return self.members.shape[0]

    @property
    def size(self) -> int:
        return self.members.shape[1]

    @property
    def groups(self) -> int:
        return self.chosen.shape[1]

    @property
    def fraction(self) -> float:
        return self.size / self.n

    def mask(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(stop - start, n) bool: which rows resamples start..stop keep."""
        return self.chosen[start:stop][:, self.group_of]

    def digest(self) -> str:
        """sha256 (first 16 hex digits) of the member indices: equal plans, equal digests."""
        data = np.ascontiguousarray(self.members, dtype="<i8").tobytes()
        return hashlib.sha256(data + f"{self.n}".encode()).hexdigest()[:16]


def subsample_plan(
    n: int,
    resamples: int = DEFAULT_RESAMPLES,
    fraction: float = DEFAULT_FRACTION,
    seed: int = 0,
    stream: str = "",
    max_groups: int = INTERVAL_GROUPS,
) -> SubsamplePlan:
    """Seeded subsamples of a set of n rows, without replacement.

    The rows are split at random into min(n, max_groups) groups of equal size (+-1); each of
    `resamples` resamples keeps round(fraction x) of the x larger groups and round(fraction y)
    of the y others (so every resample keeps the same number of rows, about fraction n). The
    random stream is numpy's default_rng([seed, crc32(stream)]): pass a label naming the set's
    role and name (e.g. "target:ffhq"), so that two comparisons against one target get the same
    target subsets (what the paired differences need) and different sets independent ones.
    Raises ValueError for fewer than 2 rows, resamples < 1 or a fraction giving no subset.
    """
    n, resamples = int(n), int(resamples)
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    counts = interval_group_counts(n, fraction, max_groups)
    groups, large = counts["groups"], counts["large"]
    rng = np.random.default_rng([int(seed), zlib.crc32(stream.encode())])
    sizes = np.full(groups, counts["group_size"], dtype=np.int64)
    sizes[:large] += 1
    group_of = np.empty(n, dtype=np.int64)
    group_of[rng.permutation(n)] = np.repeat(np.arange(groups), sizes)
    chosen = np.zeros((resamples, groups), dtype=bool)
    large_ids, small_ids = np.arange(large), np.arange(large, groups)
    for r in range(resamples):
        chosen[r, rng.choice(large_ids, counts["take_large"], replace=False)] = True
        chosen[r, rng.choice(small_ids, counts["take_small"], replace=False)] = True
    members = np.stack([np.flatnonzero(row[group_of]) for row in chosen])
    return SubsamplePlan(n, group_of, chosen, members, int(seed), stream)


# ---------------------------------------------------------------------------------------------
# FID on every resample
# ---------------------------------------------------------------------------------------------


def fid_resamples(
    x, y, plan_x: SubsamplePlan, plan_y: SubsamplePlan, device="auto", progress: bool = False
) -> np.ndarray:
    """FID between x[plan_x.members[r]] and y[plan_y.members[r]] for every resample r (R,).

    x: (n_x, D) source, y: (n_y, D) target features. With both subsets larger than D + 1 the
    covariances come from per-group sums of outer products (module docstring), else each
    resample is computed in feature space by `fid_from_features`. CUDA (device "auto") for the
    products when present; the eigenvalue problems run on the CPU in float64.
    Raises ValueError for plans that do not fit the arrays.
    """
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    _check_plans(x, y, plan_x, plan_y)
    dim, resamples = x.shape[1], plan_x.resamples
    work = resamples * (min(plan_x.size, plan_y.size, dim) ** 3 + dim * (len(x) + len(y)))
    with _knn._threads_for(work):
        return _fid_resamples(x, y, plan_x, plan_y, device, progress)


def _fid_resamples(x, y, plan_x, plan_y, device, progress) -> np.ndarray:
    dim, resamples = x.shape[1], plan_x.resamples
    out = np.empty(resamples)
    bar = _progress(resamples, "FID resamples", progress)
    if min(plan_x.size, plan_y.size) - 1 < dim:
        tasks = (
            (r, fid_from_features, (x[plan_x.members[r]], y[plan_y.members[r]]))
            for r in range(resamples)
        )
        _side_by_side(tasks, out, bar)
        return out
    dev = _device(device)
    sides = [_GroupSums(a, plan, dev) for a, plan in ((x, plan_x), (y, plan_y))]
    cache = (plan_x.groups + plan_y.groups) * 8 * dim * (dim + 1) // 2 <= GRAM_CACHE_BYTES
    per_resample = 2 * 8 * dim * (dim + 1) // 2
    chunk = max(1, min(resamples, GRAM_CHUNK_BYTES // per_resample))

    def tasks():
        for start in range(0, resamples, chunk):
            stop = min(start + chunk, resamples)
            pairs = zip(*(side.statistics(start, stop, cache) for side in sides), strict=True)
            for r, ((mu_x, cov_x), (mu_y, cov_y)) in enumerate(pairs, start):
                yield r, _frechet_distance, (mu_x, cov_x, mu_y, cov_y)

    _side_by_side(tasks(), out, bar)
    return out


def _side_by_side(tasks, out: np.ndarray, bar) -> None:
    """out[r] = call(*args) for every (r, call, args), as many at once as torch has threads,
    each with one BLAS thread: LAPACK's eigensolvers gain little from a second thread and lose
    much when the cores are busy (measured 6x slower with two OpenBLAS threads at D = 2048 on
    a loaded 2-core machine), while resamples are independent. At most 2 x threads tasks are
    in flight (each holds two D x D matrices)."""
    workers = max(1, torch.get_num_threads())
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        pending: dict = {}
        for r, call, args in tasks:
            pending[pool.submit(call, *args)] = r
            if len(pending) >= 2 * workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    out[pending.pop(future)] = future.result()
                    bar.update()
        for future in as_completed(pending):
            out[pending[future]] = future.result()
            bar.update()
    bar.close()


class _GroupSums:
    """One set's per-group sums and packed sums of outer products (centred on its mean)."""

    def __init__(self, values: np.ndarray, plan: SubsamplePlan, device: torch.device):
        self.mean = values.mean(axis=0)
        self.centred = torch.from_numpy(values - self.mean)  # float64
        self.plan, self.device = plan, device
        dim = values.shape[1]
        self.upper = torch.triu_indices(dim, dim, device=device)
        self.rows = [torch.from_numpy(np.flatnonzero(plan.group_of == g)) for g in
                     range(plan.groups)]  # fmt: skip
        self.sums = torch.stack([self.centred[rows].sum(0) for rows in self.rows]).to(device)
        self.grams = None

    def _grams(self, groups) -> torch.Tensor:
        """(len(groups), D (D + 1) / 2) packed upper triangles of X_g^T X_g (float64)."""
        out = torch.empty((len(groups), self.upper.shape[1]), dtype=torch.float64,
                          device=self.device)  # fmt: skip
        for index, g in enumerate(groups):
            part = self.centred[self.rows[g]].to(self.device)
            out[index] = (part.T @ part)[self.upper[0], self.upper[1]]
        return out

    def statistics(self, start: int, stop: int, cache: bool):
        """(mean, covariance) in float64 numpy of resamples start..stop."""
        chosen = torch.from_numpy(self.plan.chosen[start:stop].astype(np.float64)).to(self.device)
        if cache:
            if self.grams is None:
                self.grams = self._grams(range(self.plan.groups))
            packed = chosen @ self.grams
        else:
            packed = None
            for first in range(0, self.plan.groups, 8):
                batch = range(first, min(first + 8, self.plan.groups))
                part = chosen[:, first : batch.stop] @ self._grams(batch)
                packed = part if packed is None else packed + part
        sums = chosen @ self.sums
        m, dim = self.plan.size, len(self.mean)
        for packed_r, sum_r in zip(packed, sums, strict=True):
            gram = torch.zeros((dim, dim), dtype=torch.float64, device=self.device)
            gram[self.upper[0], self.upper[1]] = packed_r
            gram[self.upper[1], self.upper[0]] = packed_r
            offset = sum_r / m
            cov = gram.addr_(offset, offset, alpha=-m).div_(m - 1)  # in place: D x D once
            yield self.mean + offset.cpu().numpy(), cov.cpu().numpy()


# ---------------------------------------------------------------------------------------------
# KID on every resample
# ---------------------------------------------------------------------------------------------


def kid_resamples(
    x,
    y,
    plan_x: SubsamplePlan,
    plan_y: SubsamplePlan,
    block: int = 2048,
    device="auto",
    progress: bool = False,
) -> np.ndarray:
    """KID's unbiased MMD^2 (cubic polynomial kernel; Binkowski et al. 2018, with
    `fidlens.metrics.mmd2_unbiased`'s formula) between x[plan_x.members[r]] and
    y[plan_y.members[r]] for every resample r (R,), float64.

    Kernel blocks of `block` rows are computed once and multiplied by the 0/1 membership
    matrices: sum_{i, j in S} k(x_i, x_j) = z^T K z for all resamples at once. Memory
    O(block^2 + (n_x + n_y) R). Raises ValueError for plans that do not fit the arrays.
    """
    x, y = _matrix(x, "x", min_rows=2), _matrix(y, "y", min_rows=2)
    _same_dim(x, y)
    _check_plans(x, y, plan_x, plan_y)
    work = (len(x) + len(y)) ** 2 * (x.shape[1] + plan_x.resamples)
    with _knn._threads_for(work):
        return _kid_resamples(x, y, plan_x, plan_y, block, _device(device), progress)


def _kid_resamples(x, y, plan_x, plan_y, block, dev, progress) -> np.ndarray:
    tx, ty = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    zx = torch.from_numpy(plan_x.mask().T.astype(np.float64)).to(dev)  # n_x x R
    zy = torch.from_numpy(plan_y.mask().T.astype(np.float64)).to(dev)
    blocks = _row_blocks(len(x), block), _row_blocks(len(y), block)
    steps = len(blocks[0]) * (len(blocks[0]) + 1) // 2 + len(blocks[1]) * (len(blocks[1]) + 1) // 2
    bar = tqdm(total=steps + len(blocks[0]) * len(blocks[1]), desc="KID kernel blocks",
               disable=not progress, file=sys.stderr, mininterval=2.0)  # fmt: skip
    within_x = _within_sums(tx, zx, blocks[0], bar)
    within_y = _within_sums(ty, zy, blocks[1], bar)
    cross = torch.zeros(plan_x.resamples, dtype=torch.float64, device=dev)
    for i in blocks[0]:
        for j in blocks[1]:
            kernel = polynomial_kernel(tx[i], ty[j])
            cross += (zx[i] * (kernel @ zy[j])).sum(0)
            bar.update()
    bar.close()
    m, n = plan_x.size, plan_y.size
    values = within_x / (m * (m - 1)) + within_y / (n * (n - 1)) - 2.0 * cross / (m * n)
    return values.cpu().numpy()


def _row_blocks(n: int, block: int) -> list[slice]:
    return [slice(start, min(start + block, n)) for start in range(0, n, max(1, int(block)))]


def _within_sums(t: torch.Tensor, z: torch.Tensor, blocks, bar) -> torch.Tensor:
    """sum_{i != j, both in S} k(t_i, t_j) for every resample S (columns of z)."""
    total = torch.zeros(z.shape[1], dtype=torch.float64, device=t.device)
    for a, i in enumerate(blocks):
        for j in blocks[a:]:
            kernel = polynomial_kernel(t[i], t[j])
            if i == j:
                kernel.fill_diagonal_(0.0)  # no pairs of a point with itself
            part = (z[i] * (kernel @ z[j])).sum(0)
            total += part if i == j else 2.0 * part
            bar.update()
    return total


# ---------------------------------------------------------------------------------------------
# Precision, recall, density and coverage on every resample
# ---------------------------------------------------------------------------------------------


@dataclass
class _Lists:
    """Each point's m candidate neighbours in its own set: `index` (n x m, int64) and exact
    squared distances `sq` (n x m, float64, ascending, in the point set's scaled units); every
    point not on a list has d^2 >= `bound` (n, float64; inf when the list holds all others)."""

    index: torch.Tensor
    sq: torch.Tensor
    bound: torch.Tensor
    rows: dict = field(default_factory=dict)  # point -> exact d^2 to every point of its set


def list_length(k: int, fraction: float, n: int) -> int:
    """Neighbours kept per point: the fewest m >= k + CANDIDATE_MARGIN such that fewer than k
    of them fall in a subset (each with probability `fraction`) has probability at most
    LIST_MISS_PROBABILITY (binomial tail), capped at n - 1."""
    m = k + _knn.CANDIDATE_MARGIN
    while m < n - 1 and stats.binom.cdf(k - 1, m, fraction) > LIST_MISS_PROBABILITY:
        m += 1
    return min(m, n - 1)


def _neighbour_lists(points, m: int) -> _Lists:
    """The m nearest other points of each point (by the float32 lower bounds of knn.py), their
    exact squared distances (float64, from differences), and the bound below which the list is
    complete: every pair left out has v >= the m-th smallest v, and d^2 >= v - slack."""
    n = len(points)
    best = torch.full((n, m), math.inf, dtype=torch.float32)
    best_index = torch.full((n, m), -1, dtype=torch.int64)
    for a, (rows, centre) in enumerate(zip(points.blocks, points.centres, strict=True)):
        left, _ = points.operand(rows, centre, "left")
        for cols in points.blocks[a:]:
            values, _ = _knn._product(left, points, cols, centre)
            if cols is rows:
                values.fill_diagonal_(math.inf)  # no pairs of a point with itself
            _knn._keep_smallest(best, best_index, rows, values, cols)
            if cols is not rows:
                _knn._keep_smallest(best, best_index, cols, values.T.contiguous(), rows)
    owners, others = torch.arange(n).repeat_interleave(m), best_index.flatten()
    keys = torch.minimum(owners, others) * n + torch.maximum(owners, others)
    pairs, where = torch.unique(keys, return_inverse=True)
    exact = _knn._exact_sq_distances(points, points, pairs // n, pairs % n)[where].view(n, m)
    exact, order = exact.sort(dim=1, stable=True)
    if m >= n - 1:
        bound = torch.full((n,), math.inf, dtype=torch.float64)
    else:
        bound = best[:, -1].double() - points.bounds.slack
    return _Lists(best_index.gather(1, order), exact, bound)


def _exact_row(points, lists: _Lists, i: int) -> np.ndarray:
    """Exact squared distances from point i to every point of its set (itself: inf), cached."""
    if i not in lists.rows:
        n = len(points)
        row = _knn._exact_sq_distances(points, points, torch.full((n,), i), torch.arange(n))
        row = row.numpy().copy()
        row[i] = math.inf
        lists.rows[i] = row
    return lists.rows[i]


def _subset_radii(points, lists: _Lists, plan: SubsamplePlan, ks) -> tuple[dict, int]:
    """{k: (R, n) float64}: each member's squared distance to its k-th nearest other member of
    its subset (NaN for rows a resample leaves out), and the number of (resample, point) pairs
    whose list was too short (then the point's exact row decides)."""
    n, m = lists.index.shape
    radii = {k: np.full((plan.resamples, n), np.nan) for k in ks}
    chunk = max(1, COUNT_CHUNK_ELEMENTS // max(1, n * m))
    misses = 0
    for start in range(0, plan.resamples, chunk):
        stop = min(start + chunk, plan.resamples)
        mask = torch.from_numpy(plan.mask(start, stop))
        inside = mask[:, lists.index]  # (chunk, n, m): is each candidate in the subset
        counts = inside.cumsum(dim=2, dtype=torch.int32)
        for k in ks:
            reached = counts >= k
            position = reached.to(torch.uint8).argmax(dim=2)  # first candidate reaching k
            value = lists.sq.gather(1, position.T).T  # (chunk, n)
            ok = reached[:, :, -1] & (value <= lists.bound)
            radii[k][start:stop] = torch.where(mask & ok, value, math.nan).numpy()
            for r, i in (mask & ~ok).nonzero().tolist():
                row = _exact_row(points, lists, i)[plan.members[start + r]]
                radii[k][start + r, i] = np.partition(row, k - 1)[k - 1]
                misses += 1
    return radii, misses


def _cross_pairs(real, fake, real_limit, fake_limit, max_pairs: int):
    """Every real x fake pair with d^2 <= real_limit[real] or d^2 <= fake_limit[fake] (float64,
    scaled units; -inf: none): (real index, fake index, exact d^2), or None when more than
    `max_pairs` pairs are candidates."""
    bounds = real.bounds
    row_limit = bounds.limits(torch.from_numpy(real_limit))
    col_limit = bounds.limits(torch.from_numpy(fake_limit)) if fake_limit is not None else None
    found_rows, found_cols, total = [], [], 0
    for rows, centre in zip(real.blocks, real.centres, strict=True):
        left, _ = real.operand(rows, centre, "left")
        for cols in fake.blocks:
            values, _ = _knn._product(left, fake, cols, centre)
            mask = values <= row_limit[rows][:, None]
            if col_limit is not None:
                mask |= values <= col_limit[cols][None, :]
            ii, jj = mask.nonzero(as_tuple=True)
            total += len(ii)
            if total > max_pairs:
                return None
            found_rows.append(rows[ii])
            found_cols.append(cols[jj])
    ii, jj = torch.cat(found_rows), torch.cat(found_cols)
    exact = _knn._exact_sq_distances(real, fake, ii, jj).numpy()
    ii, jj = ii.numpy(), jj.numpy()
    keep = exact <= real_limit[ii]
    if fake_limit is not None:
        keep |= exact <= fake_limit[jj]
    return ii[keep], jj[keep], exact[keep]


def _largest(radii: list[np.ndarray], n: int) -> np.ndarray:
    """Per point, the largest of its radii over resamples and ks (-inf if never a member)."""
    out = np.full(n, -math.inf)
    for value in radii:
        with warnings.catch_warnings():  # all-NaN columns: points no resample keeps
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.fmax(out, np.nanmax(value, axis=0))
    return out


def manifold_resamples(
    fake,
    real,
    plan_fake: SubsamplePlan,
    plan_real: SubsamplePlan,
    k_pr: int = K_PR,
    k_dc: int = K_DC,
    which: tuple[str, ...] = ("pr", "dc"),
    block_size: int = DEFAULT_BLOCK_SIZE,
    max_pairs: int = MAX_PAIRS,
    lengths: tuple[int, int] | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Precision, recall (k_pr) and density, coverage (k_dc) of fake[plan_fake.members[r]]
    against real[plan_real.members[r]] for every resample r, exactly as
    `fidlens.metrics.manifold_metrics` computes them on those subsets (d <= radius for P/R,
    d < radius for D/C; ties and duplicates included).

    fake: (n_f, D), real: (n_r, D) features, float32 or float64. Returns ({name: (R,) float64},
    info): info counts the work reused or redone (`list_lengths`, `list_misses`, `pairs`,
    `direct`: True when more than `max_pairs` real x fake pairs could matter, so that every
    resample was computed directly). `lengths` overrides the neighbour-list lengths (real,
    fake), for tests. Raises ValueError for subsets too small for k, or bad plans.
    """
    unknown = set(which) - {"pr", "dc"}
    if unknown or not which:
        raise ValueError(f"`which` must name 'pr' and/or 'dc', got {which}")
    fake = _matrix(fake, "fake features", min_rows=2, keep_float32=True)
    real = _matrix(real, "real features", min_rows=2, keep_float32=True)
    _same_dim(fake, real)
    _check_plans(fake, real, plan_fake, plan_real)
    real_ks = sorted({k for k, name in ((k_pr, "pr"), (k_dc, "dc")) if name in which})
    for k, plan, side in ((max(real_ks), plan_real, "real"), (k_pr, plan_fake, "fake")):
        if (side == "real" or "pr" in which) and plan.size <= k:
            raise ValueError(
                f"k-NN radii with k = {k} need subsets of at least {k + 1} {side} points, "
                f"got {plan.size}: raise subset_fraction"
            )
    work = (len(fake) ** 2 / 2 + len(real) ** 2 / 2 + len(fake) * len(real)) * fake.shape[1]
    with _knn._ieee_float32_matmul(), _knn._threads_for(work):
        fake_set, real_set = _knn._prepare(fake, real, block_size=block_size)
        sets = [(real_set, plan_real, tuple(real_ks))]
        if "pr" in which:
            sets.append((fake_set, plan_fake, (k_pr,)))
        radii, info = [], {"list_lengths": [], "list_misses": 0}
        for index, (points, plan, ks) in enumerate(sets):
            if lengths is not None:
                length = min(lengths[index], len(points) - 1)
            else:
                length = list_length(max(ks), (plan.size - 1) / (plan.n - 1), len(points))
            lists = _neighbour_lists(points, length)
            found, misses = _subset_radii(points, lists, plan, ks)
            radii.append(found)
            info["list_lengths"].append(length)
            info["list_misses"] += misses
        real_radii = radii[0]
        fake_radius = radii[1][k_pr] if "pr" in which else None
        real_limit = _largest(list(real_radii.values()), len(real))
        fake_limit = None if fake_radius is None else _largest([fake_radius], len(fake))
        pairs = _cross_pairs(real_set, fake_set, real_limit, fake_limit, max_pairs)
    if pairs is None:
        warnings.warn(
            f"k-NN intervals: more than {max_pairs} real x fake pairs fall inside some subset's "
            "radius (a collapsed generator?); each resample is computed directly (slow)",
            stacklevel=2,
        )
        info |= {"pairs": None, "direct": True}
        return _direct_manifold(fake, real, plan_fake, plan_real, k_pr, k_dc, which,
                                block_size, progress), info  # fmt: skip
    info |= {"pairs": len(pairs[0]), "direct": False}
    with _knn._threads_for(work):  # one thread for small sets: elementwise work
        counts = _count_resamples(pairs, plan_fake, plan_real, real_radii, fake_radius,
                                  k_pr, k_dc, which, progress)  # fmt: skip
    return counts, info


def _count_resamples(pairs, plan_fake, plan_real, real_radii, fake_radius, k_pr, k_dc, which,
                     progress) -> dict[str, np.ndarray]:  # fmt: skip
    """The four metrics of every resample from the pairs that can matter."""
    ii, jj, sq = (torch.from_numpy(a) for a in pairs)
    resamples, n_real, n_fake = plan_real.resamples, plan_real.n, plan_fake.n
    out = {name: np.empty(resamples) for name in ("precision", "recall", "density", "coverage")}
    chunk = max(1, min(resamples, COUNT_CHUNK_ELEMENTS // max(1, len(sq))))
    bar = _progress(resamples, "k-NN resamples", progress)
    tensors = {k: torch.from_numpy(v) for k, v in real_radii.items()}
    fake_tensor = torch.from_numpy(fake_radius) if fake_radius is not None else None
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        rows = torch.arange(stop - start)[:, None]
        valid = (torch.from_numpy(plan_real.mask(start, stop))[:, ii]
                 & torch.from_numpy(plan_fake.mask(start, stop))[:, jj])  # fmt: skip
        if "pr" in which:
            hit = valid & (sq <= tensors[k_pr][start:stop][:, ii])
            seen = torch.zeros((stop - start, n_fake), dtype=torch.bool)
            seen[rows.expand_as(hit)[hit], jj.expand_as(hit)[hit]] = True
            out["precision"][start:stop] = seen.sum(1).numpy() / plan_fake.size
            hit = valid & (sq <= fake_tensor[start:stop][:, jj])
            seen = torch.zeros((stop - start, n_real), dtype=torch.bool)
            seen[rows.expand_as(hit)[hit], ii.expand_as(hit)[hit]] = True
            out["recall"][start:stop] = seen.sum(1).numpy() / plan_real.size
        if "dc" in which:
            hit = valid & (sq < tensors[k_dc][start:stop][:, ii])
            out["density"][start:stop] = hit.sum(1).numpy() / (k_dc * plan_fake.size)
            seen = torch.zeros((stop - start, n_real), dtype=torch.bool)
            seen[rows.expand_as(hit)[hit], ii.expand_as(hit)[hit]] = True
            out["coverage"][start:stop] = seen.sum(1).numpy() / plan_real.size
        bar.update(stop - start)
    bar.close()
    names = (("precision", "recall") if "pr" in which else ()) + (
        ("density", "coverage") if "dc" in which else ()
    )
    return {name: out[name] for name in names}


def _direct_manifold(fake, real, plan_fake, plan_real, k_pr, k_dc, which, block_size,
                     progress) -> dict[str, np.ndarray]:  # fmt: skip
    values: dict[str, list[float]] = {}
    bar = _progress(plan_real.resamples, "k-NN resamples (direct)", progress)
    for r in range(plan_real.resamples):
        result = _knn.manifold_metrics(fake[plan_fake.members[r]], real[plan_real.members[r]],
                                       k_pr=k_pr, k_dc=k_dc, which=which,
                                       block_size=block_size)  # fmt: skip
        for name, value in result.items():
            values.setdefault(name, []).append(value)
        bar.update()
    bar.close()
    return {name: np.asarray(v) for name, v in values.items()}


def _check_plans(x, y, plan_x: SubsamplePlan, plan_y: SubsamplePlan) -> None:
    if plan_x.n != len(x) or plan_y.n != len(y):
        raise ValueError(
            f"subsample plans for {plan_x.n} and {plan_y.n} rows do not fit sets of {len(x)} "
            f"and {len(y)} rows"
        )
    if plan_x.resamples != plan_y.resamples:
        raise ValueError(
            f"the plans hold {plan_x.resamples} and {plan_y.resamples} resamples; they must agree"
        )


# ---------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------


def resample_metrics(
    source,
    target,
    plan_source: SubsamplePlan,
    plan_target: SubsamplePlan,
    metrics=("fid", "kid", "pr", "dc"),
    k_pr: int = K_PR,
    k_dc: int = K_DC,
    device="auto",
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Every asked-for metric (`metrics`: fid, kid, pr, dc) on every resample: ({"fid": (R,),
    "kid_mean": (R,), "precision": ..., "recall", "density", "coverage"}, info), with
    source = generated (x), target = real (y). "kid_mean" is the unbiased MMD^2 of the two
    subsets (the expectation of KID however its subsets are drawn). info: the k-NN's reuse
    counts (`manifold_resamples`)."""
    draws: dict[str, np.ndarray] = {}
    info: dict = {}
    if "fid" in metrics:
        draws["fid"] = fid_resamples(source, target, plan_source, plan_target, device, progress)
    if "kid" in metrics:
        draws["kid_mean"] = kid_resamples(source, target, plan_source, plan_target,
                                          device=device, progress=progress)  # fmt: skip
    which = tuple(name for name in ("pr", "dc") if name in metrics)
    if which:
        found, info = manifold_resamples(source, target, plan_source, plan_target, k_pr, k_dc,
                                         which, progress=progress)  # fmt: skip
        draws.update(found)
    return draws, info
