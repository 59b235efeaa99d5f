"""Exact k-NN metrics: precision / recall and density / coverage."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from fidlens.metrics._common import _U32, DEFAULT_BLOCK_SIZE, _matrix, _same_dim

# ---------------------------------------------------------------------------------------------
# Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020)
# ---------------------------------------------------------------------------------------------
#
# All four need each point's distance to its k-th nearest other point in its own set (the
# radius of its k-NN ball) and, for real x fake pairs, whether the distance is within a radius.
# Membership: d <= radius for precision and recall (Kynkäänniemi et al. 2019, as torch-fidelity
# counts), d < radius for density and coverage (as Naeem et al.'s own `prdc` code counts).
#
# The results equal an exact float64 computation of every distance from differences, ties and
# duplicates included, and memory is bounded by the block size. float32 products only bound
# distances:
#
# 1. Each set is cut into blocks of nearby points (`_coherent_blocks`). One float32 product per
#    block pair, of the points centred on the row block's own centre c, gives for every pair a
#    value v with  d^2 - w <= v <= d^2,  w = width * (|x - c|^2 + |y - c|^2)  (`_Bounds`). The
#    width is relative to the distances from the local centre, so it stays far below the
#    distances within a tight cluster or a mode-collapsed set wherever that lies (centred on the
#    data's mean instead, it can exceed them all, and every pair would need an exact check).
# 2. k-NN radii (`_knn_sq_radii`): a point's m = k + CANDIDATE_MARGIN pairs with the smallest v
#    are its candidates; their exact distances give T, the k-th smallest, which is >= the
#    radius. Every other pair has d^2 >= v >= V, the m-th smallest v, so the radius is T when
#    V >= T (or T = 0). For the few other points every pair with v < T is computed exactly, one
#    block pair at a time (`_second_look`).
# 3. real x fake (`_cross_counts`): per block pair, the pairs with v up to some radius are
#    decided by v <= d^2 <= v + w, the few within w of a radius by exact distances.
#
# Within-set pairs are computed once for both of their points (symmetry).

CANDIDATE_MARGIN = 12  # candidates per point beyond k: more settle more points at first sight
N_PIVOTS = 32  # far-apart points that sort the rows into blocks of nearby points
MIN_GROUP = 64  # smaller groups of nearby points join the nearest bigger one
SMALL_WORK = 2**30  # multiply-adds below which one thread is faster than several
_TINY32 = 2.0**-149  # smallest positive float32 (subnormal)


@contextmanager
def _ieee_float32_matmul():
    """The error bounds assume true float32 products (no bf16/tf32 shortcuts)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@contextmanager
def _threads_for(multiply_adds: float):
    """One thread for small problems: on a busy machine a parallel product of small blocks
    can wait a scheduler tick for its second thread, far longer than the product takes."""
    previous = torch.get_num_threads()
    if multiply_adds < SMALL_WORK and previous > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Bounds:
    """Error bounds of one float32 product per pair (D columns of features).

    v = [x', a_x, 1] . [-2 y', 1, a_y] over D + 2 columns, where x', y' are the scaled centred
    rows rounded to float32 (relative error u = 2^-24 per entry), n_x = fl32(|x'|^2) (error
    <= D u |x'|^2) and a_x = fl32(alpha n_x), alpha = fl32(1 - f), so v = d^2 - (1 - alpha) P + E
    with P = n_x + n_y. First-order terms of |E| / P (Higham, Accuracy and Stability of
    Numerical Algorithms, 2002, §3.1: a sum of n terms is off by at most gamma_n times the sum
    of their magnitudes, here <= 2 P, in any summation order): the product 2 (D + 2) u, the
    norms D u, the rounding of x', y' and a_x 5 u, and the float64 rounding of the reference
    distance (2 D 2^-53 < u): (3 D + 10) u. f = (4 (D + 2) + 40) u leaves room for the
    higher-order terms (D u << 1), so  v <= d^2 <= v + 2 (1 - alpha) P.  Underflow to float32
    subnormals adds at most 2^-150 per operation: `slack`, in absolute terms (scaled units)."""

    def __init__(self, dim: int):
        self.alpha = float(np.float32(1.0 - (4 * (dim + 2) + 40) * _U32))
        self.width = 2.0 * (1.0 - self.alpha) * (1.0 + 2.0**-20)  # + float64 rounding of w
        self.slack = (8 * dim + 64) * _TINY32

    def limits(self, sq_radii: torch.Tensor) -> torch.Tensor:
        """float32 values v may not exceed for d^2 <= sq_radii to be possible (rounded up)."""
        return _round_up32(sq_radii + self.slack)


def _round_up32(values: torch.Tensor) -> torch.Tensor:
    """float32 values >= the float64 ones (thresholds must never shrink when rounded)."""
    v = values.to(torch.float32)
    return torch.nextafter(v, torch.full_like(v, math.inf))


class _PointSet:
    """One feature set for blocked distance bounds.

    Keeps the caller's array (N x D, float32 or float64, not copied) for exact distances and
    splits its rows into blocks of nearby points (`_coherent_blocks`), each with a centre that
    is representable in float32 (kept as float64), so that x - c rounds once in either
    precision. Distances are in units scaled by a power of two (exact): `scale`.
    """

    def __init__(self, values: np.ndarray, scale: float, block_size: int):
        self.array = values
        with warnings.catch_warnings():  # read-only input: it is only read
            warnings.simplefilter("ignore", UserWarning)
            self.tensor = torch.from_numpy(values)
        self.scale = scale
        self.scale_sq = scale * scale
        self.blocks, self.centres = _coherent_blocks(self.tensor, scale, block_size)
        self.bounds = _Bounds(values.shape[1])

    def __len__(self) -> int:
        return len(self.array)

    def operand(self, index: torch.Tensor, centre: torch.Tensor, side: str):
        """One side of the product for the rows `index` centred on `centre` (float64, D):
        [x', a_x, 1] (side "left") or [-2 x', 1, a_x] ("right"), n x (D + 2) float32, with
        x' = fl32(scale (x - centre)), and n_x = fl32(|x'|^2) (n)."""
        dim, bounds = self.array.shape[1], self.bounds
        out = torch.empty((len(index), dim + 2), dtype=torch.float32)
        body = out[:, :dim]
        rows = torch.index_select(self.tensor, 0, index)
        if rows.dtype == torch.float32 and self.scale == 1.0:
            torch.sub(rows, centre.to(torch.float32), out=body)  # c is a float32 number
        else:  # float64, scaled before rounding (float32 range, subnormals)
            body.copy_(rows.double().sub_(centre).mul_(self.scale))
        if side == "right":
            body.mul_(-2.0)  # exact
        norms = (body * body).sum(1)
        if side == "right":
            norms /= 4.0  # (-2 x')^2 summed: exactly 4 times the sum for x'
        out[:, -2:] = 1.0
        out[:, -2 if side == "left" else -1] = norms * bounds.alpha
        return out, norms


def _prepare(*sets: np.ndarray, block_size: int) -> list[_PointSet]:
    """Point sets sharing one scale: a power of two that brings the largest coordinate
    difference from the last set's mean to at most 1 when it is far from that (float32 range
    and subnormals), else 1."""
    centre = sets[-1].mean(axis=0, dtype=np.float64)
    largest = max(
        float(np.abs(bound - centre).max()) for s in sets for bound in (s.min(0), s.max(0))
    )
    scale = 1.0
    if largest > 0 and not 2.0**-30 <= largest <= 2.0**30:
        scale = 2.0 ** -math.ceil(math.log2(largest))
    return [_PointSet(s, scale, max(1, int(block_size))) for s in sets]


def _coherent_blocks(
    tensor: torch.Tensor,
    scale: float,
    block_size: int,
    pivots: int = N_PIVOTS,
    sample: int = 4096,
    seed: int = 0,
    chunk: int = 4096,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Row indices (int64) in blocks of at most `block_size` nearby points, and a centre for
    each block (float64, D, representable in float32).

    Rows are grouped by their nearest of `pivots` far-apart points (farthest-point traversal on
    a sample, Gonzalez 1985, which gives every well-separated cluster a pivot of its own), then
    merged (`_merged_groups`); groups larger than `block_size` are split. Only the speed
    depends on this (float32 arithmetic is fine here): tight clusters get blocks of their own,
    whose centres keep the bounds of their pairs narrow.
    """
    n, dim = tensor.shape
    rng = np.random.default_rng(seed)
    picked = torch.from_numpy(np.sort(rng.choice(n, min(n, sample), replace=False)))
    origin = tensor[picked].double().mean(0).float().double()  # a float32 number

    def scaled(rows: torch.Tensor) -> torch.Tensor:
        if rows.dtype == torch.float32 and scale == 1.0:
            return rows - origin.float()
        return ((rows.double() - origin) * scale).float()

    ref = scaled(tensor[picked])
    ref_sq = (ref * ref).sum(1)

    def sq_distances(point: torch.Tensor) -> torch.Tensor:
        return (ref_sq - 2.0 * (ref @ point) + point @ point).clamp_min(0.0)

    chosen, nearest = [0], sq_distances(ref[0])
    while len(chosen) < pivots:
        far = int(nearest.argmax())
        if float(nearest[far]) <= 0.0:
            break
        chosen.append(far)
        nearest = torch.minimum(nearest, sq_distances(ref[far]))
    pivot_rows = ref[chosen]
    pivot_sq = (pivot_rows * pivot_rows).sum(1)
    # Sums of the offsets from each row's pivot give its group's mean and mean squared
    # distance to the mean, without cancellation when the group is tight and far out.
    labels = torch.empty(n, dtype=torch.int64)
    sums = torch.zeros((len(chosen), dim), dtype=torch.float64)
    squares = torch.zeros(len(chosen), dtype=torch.float64)
    for start in range(0, n, chunk):
        rows = scaled(tensor[start : start + chunk])
        part = (pivot_sq - 2.0 * rows @ pivot_rows.T).argmin(1)
        labels[start : start + chunk] = part
        offsets = rows.sub_(pivot_rows[part])
        members = torch.zeros((len(chosen), len(rows)), dtype=torch.float32)
        members[part, torch.arange(len(rows))] = 1.0
        sums += (members @ offsets).double()
        squares.index_add_(0, part, (offsets * offsets).sum(1).double())
    sizes = torch.bincount(labels, minlength=len(chosen)).tolist()
    counts = torch.tensor(sizes, dtype=torch.float64).clamp_min(1)
    offset_means = sums / counts[:, None]
    means = pivot_rows.double() + offset_means
    spreads = squares / counts - (offset_means * offset_means).sum(1)
    groups = [
        (index, means[g], max(float(spreads[g]), 0.0))
        for g, index in enumerate(torch.split(torch.argsort(labels, stable=True), sizes))
        if len(index)
    ]
    blocks, centres = [], []
    min_group = min(MIN_GROUP, max(2, n // (4 * pivots)))
    for index, core in _merged_groups(groups, block_size, min_group):
        centre = (origin + core / scale).float().double()  # a float32 number
        for part in torch.tensor_split(index, -(-len(index) // block_size)):
            blocks.append(part.sort().values)
            centres.append(centre)
    return blocks, centres


def _merged_groups(groups: list[tuple], block_size: int, min_group: int):
    """Groups (indices, mean, mean squared distance to the mean) merged into blocks; yields
    (indices, centre) per block (larger than `block_size` only when one group is).

    A group smaller than `min_group` joins the big group with the nearest mean, as it is and
    leaving that group's mean as the centre; big groups then merge, up to `block_size` rows,
    into the block whose core (its big groups) they are most compatible with, if the merged
    core spreads out by at most a factor of 2 over the smaller of the two."""
    big = [g for g in groups if len(g[0]) >= min_group] or [max(groups, key=lambda g: len(g[0]))]
    means = torch.stack([g[1] for g in big])
    members = [[g[0]] for g in big]
    for group in groups:
        if not any(group is g for g in big):
            gaps = ((means - group[1]) ** 2).sum(1)
            members[int(gaps.argmin())].append(group[0])
    blocks = []  # [core (indices, mean, spread), member index tensors, rows]
    for core, parts in zip(big, members, strict=True):
        rows = sum(map(len, parts))
        choice, spread = None, math.inf
        for block in blocks:
            if block[2] + rows <= block_size:
                both = _merged(block[0], core)
                if both[2] <= 2.0 * min(block[0][2], core[2]) and both[2] < spread:
                    choice, spread = block, both[2]
        if choice is None:
            blocks.append([core, parts, rows])
        else:
            choice[0] = _merged(choice[0], core)
            choice[1] = choice[1] + parts
            choice[2] += rows
    for core, parts, _ in blocks:
        yield torch.cat(parts), core[1]


def _merged(a: tuple, b: tuple) -> tuple:
    """(indices, mean, mean squared distance to the mean) of two groups together."""
    na, nb = len(a[0]), len(b[0])
    n = na + nb
    gap = a[1] - b[1]
    spread = (na * a[2] + nb * b[2]) / n + na * nb / n**2 * float(gap @ gap)
    return torch.cat([a[0], b[0]]), (na * a[1] + nb * b[1]) / n, spread


def _exact_sq_distances(a: _PointSet, b: _PointSet, ia, ib, chunk: int = 128) -> torch.Tensor:
    """sum((a[ia] - b[ib])^2) pair by pair in float64, in scaled units (float64, len(ia)).

    numpy in cache-sized chunks, pairs in row order, one thread per core (numpy releases the
    GIL here): steadier than many small torch ops on a busy machine."""
    ia, ib = np.asarray(ia), np.asarray(ib)
    order = np.lexsort((ib, ia))
    ia, ib = ia[order], ib[order]
    out = np.empty(len(ia))

    def work(span: range) -> None:
        diff = np.empty((chunk, a.array.shape[1]))
        for start in span:
            stop = min(start + chunk, len(ia))
            part = diff[: stop - start]
            left, right = a.array[ia[start:stop]], b.array[ib[start:stop]]
            np.subtract(left, right, out=part, dtype=np.float64)
            out[start:stop] = np.einsum("ij,ij->i", part, part)

    starts = range(0, len(ia), chunk)
    workers = min(torch.get_num_threads(), len(starts))
    if workers > 1:  # a fresh pool each time: cheap, and safe across fork()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, [starts[w::workers] for w in range(workers)]))
    else:
        work(starts)
    result = np.empty_like(out)
    result[order] = out * a.scale_sq  # times a power of two: exact
    return torch.from_numpy(result)


def _product(left: torch.Tensor, other: _PointSet, cols: torch.Tensor, centre: torch.Tensor):
    """v (float32) for the rows behind `left` x other[cols], all centred on `centre`, and the
    columns' n_y."""
    right, norms = other.operand(cols, centre, "right")
    return left @ right.T, norms


def _knn_sq_radii(points: _PointSet, ks: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Exact squared distance (scaled units, float64, N) from each point to its k-th nearest
    other point, for each k in `ks` (section comment, step 2)."""
    n, kmax = len(points), max(ks)
    if min(ks) < 1:
        raise ValueError(f"k must be positive, got {min(ks)}")
    if n <= kmax:
        raise ValueError(f"k-NN radii with k = {kmax} need at least {kmax + 1} samples, got {n}")
    m = min(n - 1, kmax + CANDIDATE_MARGIN)
    best = torch.full((n, m), math.inf, dtype=torch.float32)
    best_index = torch.full((n, m), -1, dtype=torch.int64)
    for a, (rows, centre) in enumerate(zip(points.blocks, points.centres, strict=True)):
        left, _ = points.operand(rows, centre, "left")
        for cols in points.blocks[a:]:
            values, _ = _product(left, points, cols, centre)
            if cols is rows:
                values.fill_diagonal_(math.inf)  # no pairs of a point with itself
            _keep_smallest(best, best_index, rows, values, cols)
            if cols is not rows:
                _keep_smallest(best, best_index, cols, values.T.contiguous(), rows)
    # Exact distances of the candidates, once per pair ((i, j) and (j, i) are often both).
    owners, others = torch.arange(n).repeat_interleave(m), best_index.flatten()
    keys = torch.minimum(owners, others) * n + torch.maximum(owners, others)
    pairs, where = torch.unique(keys, return_inverse=True)
    exact = _exact_sq_distances(points, points, pairs // n, pairs % n)[where]
    exact = exact.view(n, m).sort(dim=1).values
    sq_radii = {k: exact[:, k - 1].clone() for k in ks}
    limit = exact[:, kmax - 1]  # >= every radius sought
    settled = (best[:, -1].double() - points.bounds.slack >= limit) | (limit == 0)
    unsettled = (~settled).nonzero().flatten()
    if len(unsettled):
        _second_look(points, unsettled, limit, sq_radii)
    return sq_radii


def _keep_smallest(best, best_index, rows, values, cols) -> None:
    """Merge the block `values` (len(rows) x len(cols)) into each row's m smallest so far."""
    m = best.shape[1]
    top, where = values.topk(min(m, values.shape[1]), dim=1, largest=False)
    merged = torch.cat([best[rows], top], dim=1)
    indices = torch.cat([best_index[rows], cols[where]], dim=1)
    top, where = merged.topk(m, dim=1, largest=False)
    best[rows] = top
    best_index[rows] = indices.gather(1, where)


def _second_look(points: _PointSet, which, limit, sq_radii) -> None:
    """Radii of the points `which` that their candidates did not settle: every pair with
    v <= limit + slack (limit: the candidates' kmax-th exact value, >= every radius sought) is
    computed exactly, one block pair at a time, keeping each row's kmax smallest values; the
    k-th radius is the smaller of the candidates' k-th value and the k-th of these (every pair
    left out has d^2 >= limit)."""
    kmax = max(sq_radii)
    wanted = torch.zeros(len(points), dtype=torch.bool)
    wanted[which] = True
    for rows, centre in zip(points.blocks, points.centres, strict=True):
        mine = rows[wanted[rows]]
        if len(mine) == 0:
            continue
        left, _ = points.operand(mine, centre, "left")
        thresholds = points.bounds.limits(limit[mine])[:, None]
        nearest = torch.full((len(mine), kmax), math.inf, dtype=torch.float64)
        for cols in points.blocks:
            values, _ = _product(left, points, cols, centre)
            values[mine[:, None] == cols[None, :]] = math.inf  # no pairs of a point with itself
            ii, jj = (values <= thresholds).nonzero(as_tuple=True)
            if len(ii) == 0:
                continue
            exact = torch.full(values.shape, math.inf, dtype=torch.float64)
            exact[ii, jj] = _exact_sq_distances(points, points, mine[ii], cols[jj])
            merged = torch.cat([nearest, exact], dim=1)
            nearest = merged.topk(kmax, dim=1, largest=False).values
        for k, radii in sq_radii.items():
            radii[mine] = torch.minimum(radii[mine], nearest[:, k - 1])


def manifold_metrics(
    fake,
    real,
    k_pr: int = 3,
    k_dc: int = 5,
    which: tuple[str, ...] = ("pr", "dc"),
    block_size: int = DEFAULT_BLOCK_SIZE,
    real_sq_radii: dict[int, np.ndarray] | None = None,
    fake_sq_radii: dict[int, np.ndarray] | None = None,
) -> dict[str, float]:
    """Precision and recall (k = k_pr) and density and coverage (k = k_dc) of generated
    `fake` (M x D) against `real` (N x D) features, float32 or float64, exact.

    With r_k(p) a point's distance to its k-th nearest other point of its own set:
    precision = fraction of fake inside some real ball, d(f, r) <= r_k(r); recall = fraction of
    real inside some fake ball, d(r, f) <= r_k(f) (Kynkäänniemi et al. 2019, k = k_pr);
    density = (1 / (k M)) sum_fake #{real r: d(f, r) < r_k(r)}; coverage = fraction of real
    whose nearest fake lies strictly inside its own ball (Naeem et al. 2020, k = k_dc, with the
    strict `<` of their `prdc` code). `block_size` bounds the rows per block, and so memory
    (a few block_size^2 floats); it does not change the result.

    real_sq_radii / fake_sq_radii: precomputed exact squared k-NN radii of a set in original
    units ({k: (N,) float64}, from `knn_sq_radii`, e.g. a per-dataset statistics file), used
    instead of computing them; each k this call needs must be present (real: k_pr for pr,
    k_dc for dc; fake: k_pr for pr), with one finite, non-negative value per row. The result
    is bit-for-bit the same as without them (the radii are rescaled by an exact power of two,
    barring under/overflow). Raises ValueError for radii that fail these checks.
    """
    unknown = set(which) - {"pr", "dc"}
    if unknown or not which:
        raise ValueError(f"`which` must name 'pr' and/or 'dc', got {which}")
    fake = _matrix(fake, "fake features", min_rows=2, keep_float32=True)
    real = _matrix(real, "real features", min_rows=2, keep_float32=True)
    _same_dim(fake, real)
    fake_set, real_set = _prepare(fake, real, block_size=block_size)
    work = (len(fake) ** 2 / 2 + len(real) ** 2 / 2 + len(fake) * len(real)) * fake.shape[1]
    real_ks = tuple(sorted({k for k, name in ((k_pr, "pr"), (k_dc, "dc")) if name in which}))
    given_real = _given_radii(real_sq_radii, real_ks, real_set, "real_sq_radii")
    given_fake = _given_radii(fake_sq_radii, (k_pr,) if "pr" in which else (), fake_set,
                              "fake_sq_radii")  # fmt: skip
    with _ieee_float32_matmul(), _threads_for(work):
        real_radii = given_real or _knn_sq_radii(real_set, real_ks)
        fake_radius = None
        if "pr" in which:
            fake_radius = (given_fake or _knn_sq_radii(fake_set, (k_pr,)))[k_pr]
        counts = _cross_counts(
            real_set,
            fake_set,
            real_radii.get(k_pr) if "pr" in which else None,
            real_radii.get(k_dc) if "dc" in which else None,
            fake_radius,
        )
    result = {}
    if "pr" in which:
        result["precision"] = float(counts["fake_in_real_pr"].double().mean())
        result["recall"] = float(counts["real_in_fake_pr"].double().mean())
    if "dc" in which:
        result["density"] = float(counts["density_hits"].sum()) / (k_dc * len(fake))
        result["coverage"] = float(counts["real_covered"].double().mean())
    return result


def _cross_counts(real: _PointSet, fake: _PointSet, real_pr, real_dc, fake_pr) -> dict:
    """One blocked pass over real (rows) x fake (columns) pairs (section comment, step 3).
    Radii: exact squared distances in scaled units (float64), None where not asked for."""
    bounds = real.bounds
    present = [r for r in (real_pr, real_dc) if r is not None]
    row_limit = bounds.limits(torch.maximum(*present) if len(present) == 2 else present[0])
    col_limit = bounds.limits(fake_pr) if fake_pr is not None else None
    out = {
        "fake_in_real_pr": torch.zeros(len(fake), dtype=torch.bool),
        "real_in_fake_pr": torch.zeros(len(real), dtype=torch.bool),
        "density_hits": torch.zeros(len(fake), dtype=torch.int64),
        "real_covered": torch.zeros(len(real), dtype=torch.bool),
    }
    for rows, centre in zip(real.blocks, real.centres, strict=True):
        left, row_norms = real.operand(rows, centre, "left")
        for cols in fake.blocks:
            values, col_norms = _product(left, fake, cols, centre)
            mask = values <= row_limit[rows][:, None]
            if col_limit is not None:
                mask |= values <= col_limit[cols][None, :]
            ii, jj = mask.nonzero(as_tuple=True)
            if len(ii) == 0:
                continue
            v = values[ii, jj].double()
            width = bounds.width * (row_norms[ii].double() + col_norms[jj].double())
            lower, upper = v - bounds.slack, v + width + bounds.slack
            ii, jj = rows[ii], cols[jj]
            tests = {}  # name -> (squared radius per pair, strict)
            if real_pr is not None:
                tests["fake_in_real_pr"] = (real_pr[ii], False)
                tests["real_in_fake_pr"] = (fake_pr[jj], False)
            if real_dc is not None:
                tests["dc"] = (real_dc[ii], True)
            inside = {}
            unsure = torch.zeros(len(ii), dtype=torch.bool)
            for name, (radius, strict) in tests.items():
                inside[name] = upper < radius if strict else upper <= radius
                outside = lower >= radius if strict else lower > radius
                unsure |= ~inside[name] & ~outside
            if unsure.any():
                where = unsure.nonzero().flatten()
                exact = _exact_sq_distances(real, fake, ii[where], jj[where])
                for name, (radius, strict) in tests.items():
                    limit = radius[where]
                    inside[name][where] = exact < limit if strict else exact <= limit
            if real_pr is not None:
                out["fake_in_real_pr"][jj[inside["fake_in_real_pr"]]] = True
                out["real_in_fake_pr"][ii[inside["real_in_fake_pr"]]] = True
            if real_dc is not None:
                hits = inside["dc"]
                out["density_hits"] += torch.bincount(jj[hits], minlength=len(fake))
                out["real_covered"][ii[hits]] = True
    return out


def precision_recall(fake, real, k: int = 3, block_size: int = DEFAULT_BLOCK_SIZE):
    """(precision, recall) of generated `fake` against `real` features (d <= radius)."""
    result = manifold_metrics(fake, real, k_pr=k, which=("pr",), block_size=block_size)
    return result["precision"], result["recall"]


def density_coverage(fake, real, k: int = 5, block_size: int = DEFAULT_BLOCK_SIZE):
    """(density, coverage) of generated `fake` against `real` features (d < radius)."""
    result = manifold_metrics(fake, real, k_dc=k, which=("dc",), block_size=block_size)
    return result["density"], result["coverage"]


def knn_radii(x, k: int = 3, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """Exact distance from each row of `x` (N x D) to its k-th nearest other row (float64, N);
    duplicates of a row count as neighbours at distance 0."""
    return np.sqrt(knn_sq_radii(x, (k,), block_size)[k])


def knn_sq_radii(
    x, ks: tuple[int, ...] = (3,), block_size: int = DEFAULT_BLOCK_SIZE
) -> dict[int, np.ndarray]:
    """Exact squared distance from each row of `x` (N x D, float32 or float64, finite) to its
    k-th nearest other row, for each k in `ks`: {k: (N,) float64}, in the ORIGINAL units of
    `x` (duplicates count as neighbours at distance 0).

    Each value is the float64 sum of squared differences of one pair of rows (the same
    arithmetic `manifold_metrics` does), so passing these to `manifold_metrics` gives
    bit-for-bit its own radii: internally distances are in units scaled by a power of two
    chosen from the sets (`_prepare`), and converting is exact barring under/overflow.
    Raises ValueError for k < 1 or N <= max(ks)."""
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks:
        raise ValueError("ks must name at least one k")
    x = _matrix(x, min_rows=2, keep_float32=True)
    (points,) = _prepare(x, block_size=block_size)
    with _ieee_float32_matmul(), _threads_for(len(x) ** 2 / 2 * x.shape[1]):
        squared = _knn_sq_radii(points, ks)
    return {k: values.numpy() / points.scale_sq for k, values in squared.items()}


def _given_radii(radii, ks: tuple[int, ...], points: _PointSet, name: str):
    """Precomputed squared radii (original units) of `points` for the ks needed, checked and
    converted to its scaled units (float64 tensors), or None when none are given."""
    if radii is None or not ks:
        return None
    out = {}
    for k in ks:
        if k not in radii:
            raise ValueError(f"{name}: no radii for k = {k} (given: {sorted(radii)})")
        values = np.asarray(radii[k])
        if values.shape != (len(points),):
            raise ValueError(
                f"{name}[{k}]: expected {len(points)} radii (one per row), got shape "
                f"{values.shape}"
            )
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"{name}[{k}]: radii must be floating point, got {values.dtype}")
        values = values.astype(np.float64)
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"{name}[{k}]: radii must be finite and non-negative")
        out[k] = torch.from_numpy(values * points.scale_sq)  # times a power of two: exact
    return out
