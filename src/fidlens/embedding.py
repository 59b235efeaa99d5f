"""PaCMAP maps of feature spaces (seed 001 §VI-D, Fig. 3): where a generated set's features lie
among a real set's.

For one extractor and one comparison, the source (generated) and target (real) features are
embedded together in two dimensions with PaCMAP (Wang, Huang, Rudin & Shaposhnik, "Understanding
how dimension reduction tools work", JMLR 22(201), 2021; the `pacmap` package). Source and
target points that mix in the map are close in the extractor's feature space; red- or
blue-dominated regions are where the sets differ.

The maths (`subsample_rows`, `pca_scores`, `pacmap_coordinates`, `embed_pair`) takes arrays and
returns arrays; `embed_caches` is the I/O edge (reads two HDF5 caches, writes the coordinates CSV
and its provenance JSON). Everything is deterministic: the subsample and PaCMAP's pair sampling
are seeded, its nearest-neighbour index runs on one thread, and the PCA before it is exact (an
eigendecomposition in float64 with fixed signs) where PaCMAP's own is a randomised SVD.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from fidlens.cache import FeatureCache, read_features
from fidlens.files import atomic_path, write_text_atomic
from fidlens.metric_specs import NORMALIZE_MODES
from fidlens.provenance import RANDOM_INIT, TRACKED_PACKAGES, package_versions

ROLES = ("source", "target")
# PaCMAP reduces inputs of more than 100 dimensions to 100 by PCA before its nearest-neighbour
# search (pacmap.preprocess_X); we do the same reduction exactly, in float64.
PCA_COMPONENTS = 100
# Fewest points PaCMAP embeds: its neighbour scale uses each point's 4th to 6th neighbours
# (pacmap.generate_pair); with fewer its map is NaN. Hence at least 3 per set.
MIN_POINTS = 6
MIN_POINTS_PER_SET = 3
EMBEDDING_PACKAGES = (*TRACKED_PACKAGES, "pacmap", "numba", "faiss-cpu", "scikit-learn")
CSV_COLUMNS = ("dataset", "relpath", "role", "row", "normalization", "x", "y")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class PacmapSettings:
    """PaCMAP's parameters (its defaults). n_neighbors: nearest-neighbour pairs per point;
    mn_ratio / fp_ratio: mid-near and further pairs per neighbour pair; num_iters: Adam steps
    of its three phases (the mid-near weight falls from 1000 to 3, then holds, then is 0)."""

    n_neighbors: int = 10
    mn_ratio: float = 0.5
    fp_ratio: float = 2.0
    num_iters: tuple[int, int, int] = (100, 100, 250)

    def __post_init__(self):
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        if self.mn_ratio < 0 or self.fp_ratio <= 0:
            raise ValueError(
                f"mn_ratio must be >= 0 and fp_ratio > 0, got {self.mn_ratio}, {self.fp_ratio}"
            )
        if len(self.num_iters) != 3 or min(self.num_iters) < 0 or sum(self.num_iters) < 1:
            raise ValueError(
                f"num_iters must be three phase lengths >= 0 (not all 0), got {self.num_iters}"
            )


@dataclass
class Embedding:
    """A 2-D map of the kept source rows followed by the kept target rows.

    coordinates: (len(source_rows) + len(target_rows), 2) float64 (PaCMAP's float32 values).
    source_rows, target_rows: indices of the kept rows in each input array (sorted int64).
    pca_components: dimensions PaCMAP received (after the exact PCA; the input's if <= 100).
    """

    coordinates: np.ndarray
    source_rows: np.ndarray
    target_rows: np.ndarray
    pca_components: int
    settings: PacmapSettings = field(default_factory=PacmapSettings)


# ---------------------------------------------------------------- the maths


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (float64), all-zero rows kept zero: the same as
    fidlens.metrics.l2_normalize, without importing torch for it."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def subsample_rows(n: int, max_points: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of the rows kept of a set of n: all of them when max_points is None or
    n <= max_points, else max_points drawn without replacement by
    numpy.random.default_rng([seed, stream]) (stream 0 for the source, 1 for the target, so a
    target keeps the same rows in every comparison). Raises ValueError for max_points < 1."""
    if max_points is not None and max_points < 1:
        raise ValueError(f"max_points must be >= 1 or None, got {max_points}")
    if max_points is None or n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([int(seed), int(stream)])
    return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)


def pca_scores(points: np.ndarray, components: int = PCA_COMPONENTS) -> np.ndarray:
    """Principal-component scores of (N, D) points, in float64: (N, min(components, D, N)).

    Exact: an eigendecomposition of the smaller of the Gram (N x N) and scatter (D x D) matrices
    of the centred points; each component's sign is fixed so that its largest-magnitude score is
    positive (so the map's orientation does not depend on the LAPACK build). Points with
    D <= components are returned centred, unrotated. Zero-variance directions are dropped."""
    x = np.asarray(points, dtype=np.float64)
    x = x - x.mean(axis=0)
    n, dim = x.shape
    if dim <= components:
        return x
    if n <= dim:
        values, vectors = np.linalg.eigh(x @ x.T)  # Gram: scores are U * sqrt(lambda)
        order = np.argsort(values)[::-1][:components]
        values = np.clip(values[order], 0.0, None)
        scores = vectors[:, order] * np.sqrt(values)
    else:
        values, vectors = np.linalg.eigh(x.T @ x)  # scatter: scores are X V
        order = np.argsort(values)[::-1][:components]
        values = values[order]
        scores = x @ vectors[:, order]
    scores = scores[:, values > values[0] * 1e-12] if values[0] > 0 else scores[:, :1]
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])])
    return scores * np.where(signs == 0, 1.0, signs)


def pacmap_coordinates(
    points: np.ndarray, seed: int, settings: PacmapSettings = PacmapSettings()
) -> np.ndarray:
    """PaCMAP's 2-D embedding of (N, d) points (d <= 100, e.g. from `pca_scores`), with
    random_state=seed (seeded pair sampling, a one-thread nearest-neighbour index), PCA
    initialisation and euclidean distances: (N, 2) float64. Raises ValueError for
    N < MIN_POINTS or a map that is not finite."""
    import pacmap  # numba compiles (and caches) its kernels on first import: import on use

    _quiet_pacmap_warnings()
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or len(points) < MIN_POINTS:
        raise ValueError(
            f"PaCMAP needs a 2-D array of at least {MIN_POINTS} points, got {points.shape}"
        )
    reducer = pacmap.PaCMAP(
        n_components=2,
        n_neighbors=settings.n_neighbors,
        MN_ratio=settings.mn_ratio,
        FP_ratio=settings.fp_ratio,
        num_iters=tuple(settings.num_iters),
        distance="euclidean",
        apply_pca=False,  # done exactly by pca_scores
        random_state=int(seed),
        verbose=False,
    )
    coordinates = np.asarray(reducer.fit_transform(points, init="pca"), dtype=np.float64)
    if not np.isfinite(coordinates).all():
        raise ValueError(f"PaCMAP's map of {points.shape} points is not finite")
    return coordinates


def embed_pair(
    source: np.ndarray,
    target: np.ndarray,
    *,
    l2: bool = False,
    max_points: int | None = None,
    seed: int = 0,
    settings: PacmapSettings = PacmapSettings(),
    source_rows: np.ndarray | None = None,
    target_rows: np.ndarray | None = None,
) -> Embedding:
    """Source (N, D) and target (M, D) features -> one PaCMAP map of both together.

    Each set above max_points rows is subsampled (`subsample_rows`, unless its kept rows are
    given); with l2 each row is divided by its L2 norm (seed 001's normalised features); the
    stacked rows are reduced to at most 100 dimensions (`pca_scores`) and embedded
    (`pacmap_coordinates` with this seed). Raises ValueError for mismatched dimensions,
    non-finite values or fewer than MIN_POINTS_PER_SET rows in a set."""
    source, target = np.asarray(source), np.asarray(target)
    for name, array in (("source", source), ("target", target)):
        if array.ndim != 2:
            raise ValueError(f"{name} features must be 2-D (N x D), got shape {array.shape}")
        if len(array) < MIN_POINTS_PER_SET:
            raise ValueError(
                f"{name} has {len(array)} rows; a PaCMAP map needs at least "
                f"{MIN_POINTS_PER_SET} per set"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{name} features contain NaN or Inf values")
    if source.shape[1] != target.shape[1]:
        raise ValueError(
            f"feature dimensions differ: source {source.shape[1]}, target {target.shape[1]}"
        )
    if source_rows is None:
        source_rows = subsample_rows(len(source), max_points, seed, 0)
    if target_rows is None:
        target_rows = subsample_rows(len(target), max_points, seed, 1)
    points = np.concatenate([source[source_rows], target[target_rows]]).astype(np.float64)
    if l2:
        points = l2_normalize(points)
    reduced = pca_scores(points)
    return Embedding(
        coordinates=pacmap_coordinates(reduced, seed, settings),
        source_rows=np.asarray(source_rows, dtype=np.int64),
        target_rows=np.asarray(target_rows, dtype=np.int64),
        pca_components=int(reduced.shape[1]),
        settings=settings,
    )


def embed_normalizations(
    source: np.ndarray,
    target: np.ndarray,
    normalize: str = "both",
    max_points: int | None = None,
    seed: int = 0,
    settings: PacmapSettings = PacmapSettings(),
) -> dict[str, Embedding]:
    """{"raw": ..., "l2": ...} as `normalize` (none -> raw, l2, both) asks, each from
    `embed_pair` on the same kept rows (one subsample serves both)."""
    if normalize not in NORMALIZE_MODES:
        raise ValueError(
            f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
        )
    rows = {
        "source_rows": subsample_rows(len(source), max_points, seed, 0),
        "target_rows": subsample_rows(len(target), max_points, seed, 1),
    }
    return {
        block: embed_pair(source, target, l2=block == "l2", seed=seed, settings=settings, **rows)
        for block in NORMALIZE_MODES[normalize]
    }


class _DropMessages(logging.Filter):
    """Drops PaCMAP's warnings that do not apply here: that a random state is set (it always
    is), and that apply_pca=False searches neighbours in many dimensions (pca_scores has
    already reduced them to at most 100)."""

    DROPPED = ("Running NN Backend on high-dimensional data", "random state is set to")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.DROPPED)


def _quiet_pacmap_warnings() -> None:
    pacmap_log = logging.getLogger("pacmap.pacmap")
    if not any(isinstance(f, _DropMessages) for f in pacmap_log.filters):
        pacmap_log.addFilter(_DropMessages())


# ---------------------------------------------------------------- the I/O edge


def embedding_table(
    embeddings: dict[str, Embedding],
    source_name: str,
    target_name: str,
    source_paths: list[str] | None,
    target_paths: list[str] | None,
):
    """A pandas DataFrame with CSV_COLUMNS: one row per kept image and normalisation (source
    rows first); relpath is the image's path in its dataset ("" when the cache has none)."""
    import pandas as pd

    frames = []
    for block, embedding in embeddings.items():
        sides = (
            ("source", source_name, source_paths, embedding.source_rows),
            ("target", target_name, target_paths, embedding.target_rows),
        )
        frames.append(pd.DataFrame({
            "dataset": [name for _, name, _, rows in sides for _ in rows],
            "relpath": [paths[i] if paths is not None else "" for _, _, paths, rows in sides
                        for i in rows],
            "role": [role for role, _, _, rows in sides for _ in rows],
            "row": np.concatenate([embedding.source_rows, embedding.target_rows]),
            "normalization": block,
            "x": embedding.coordinates[:, 0],
            "y": embedding.coordinates[:, 1],
        }))
    return pd.concat(frames, ignore_index=True)[list(CSV_COLUMNS)]


def embed_caches(
    source_path: str | os.PathLike,
    target_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    json_path: str | os.PathLike,
    *,
    normalize: str = "both",
    max_points: int | None = 2000,
    seed: int = 0,
    settings: PacmapSettings = PacmapSettings(),
    layer: str = "pool",
    source_name: str | None = None,
    target_name: str | None = None,
) -> dict:
    """Read two feature caches, embed them (`embed_normalizations`), write the coordinates CSV
    (CSV_COLUMNS, floats with 9 significant digits: PaCMAP's float32 exactly) and a JSON of how
    it was made; returns that JSON's dict.

    layer: "pool" embeds each cache's `features`, "logits" its classifier logits (the array the
    instance's metrics read). Raises ValueError naming the file for a cache without logits, of
    another extractor type, or with mismatched or non-finite features."""
    source_path, target_path = Path(source_path), Path(target_path)
    source, target = _read_layer(source_path, layer), _read_layer(target_path, layer)
    made_by = [c.attrs.get("extractor_type", c.attrs.get("extractor")) for c in (source, target)]
    if None not in made_by and made_by[0] != made_by[1]:
        raise ValueError(
            f"caches come from different extractors: {source_path} from {made_by[0]!r}, "
            f"{target_path} from {made_by[1]!r}; embed features of one extractor"
        )
    source_name = source_name or str(source.attrs.get("dataset") or source_path.stem)
    target_name = target_name or str(target.attrs.get("dataset") or target_path.stem)
    try:
        embeddings = embed_normalizations(
            source.features, target.features, normalize, max_points, seed, settings
        )
    except ValueError as error:
        raise ValueError(f"{source_path} and {target_path}: {error}") from None
    table = embedding_table(embeddings, source_name, target_name, source.paths, target.paths)
    first = next(iter(embeddings.values()))
    provenance = {
        "what": "PaCMAP 2-D embedding of source and target features together",
        "source_name": source_name,
        "target_name": target_name,
        "source_path": str(source_path),
        "target_path": str(target_path),
        "n_source": int(len(source.features)),
        "n_target": int(len(target.features)),
        "n_source_kept": int(len(first.source_rows)),
        "n_target_kept": int(len(first.target_rows)),
        "subsampled": bool(
            len(first.source_rows) < len(source.features)
            or len(first.target_rows) < len(target.features)
        ),
        "feature_dim": int(source.features.shape[1]),
        "pca_components": first.pca_components,
        "pca": "exact (float64 eigendecomposition, fixed signs), when feature_dim > 100",
        "normalize": normalize,
        "normalizations": list(embeddings),
        "max_points": max_points,
        "seed": seed,
        "subsample": "numpy default_rng([seed, 0]) for the source, [seed, 1] for the target, "
                     "without replacement; the CSV's `row` is the kept row of each cache",
        "pacmap": {
            **asdict(settings),
            "num_iters": list(settings.num_iters),
            "n_components": 2,
            "distance": "euclidean",
            "init": "pca",
            "apply_pca": False,
            "random_state": seed,
            "knn_backend": "faiss",
            "version": _version("pacmap"),
        },
        "layer": layer,
        "extractor": _shared(source, target, "extractor"),
        "extractor_type": _shared(source, target, "extractor_type"),
        "feature_layer": _shared(source, target, "feature_layer") if layer == "pool" else layer,
        "preprocess": _shared(source, target, "preprocess"),
        "weights": _combined_weights(source, target),
        **_side(source, "source"),
        **_side(target, "target"),
        "package_versions": package_versions(EMBEDDING_PACKAGES),
    }
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.9g")
    write_text_atomic(json_path, json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return provenance


def read_embedding(csv_path: str | os.PathLike, json_path: str | os.PathLike):
    """(table, provenance) as `embed_caches` wrote them; ValueError naming a file that is not."""
    import pandas as pd

    table = pd.read_csv(csv_path, keep_default_na=False, dtype={"relpath": str})
    missing = set(CSV_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{csv_path}: not an embedding CSV (missing {sorted(missing)})")
    provenance = json.loads(Path(json_path).read_text())
    return table, provenance


def _read_layer(path: Path, layer: str) -> FeatureCache:
    if layer not in ("pool", "logits"):
        raise ValueError(f"layer must be pool or logits, got {layer!r}")
    cache = read_features(path, with_logits=layer == "logits")
    if layer == "logits":
        if cache.logits is None:
            raise ValueError(f"{path} has no 'logits': layer logits needs a classifier's cache")
        cache.features = cache.logits
    if cache.paths is not None and len(cache.paths) != len(cache.features):
        raise ValueError(
            f"{path}: {len(cache.paths)} paths for {len(cache.features)} feature rows"
        )
    return cache


def _weights(cache: FeatureCache) -> str:
    attrs = cache.attrs
    if attrs.get("weights") == RANDOM_INIT or attrs.get("weights_sha256") == RANDOM_INIT:
        return RANDOM_INIT
    return str(attrs.get("weights", UNKNOWN))


def _combined_weights(source: FeatureCache, target: FeatureCache) -> str:
    """random-init if either side is; pretrained if both are with the same file (or files not
    recorded); mixed for two different files."""
    labels = {_weights(source), _weights(target)}
    if RANDOM_INIT in labels:
        return RANDOM_INIT
    if labels != {"pretrained"}:
        return UNKNOWN
    files = {c.attrs.get("weights_sha256") for c in (source, target)} - {None}
    return "mixed" if len(files) > 1 else "pretrained"


def _shared(source: FeatureCache, target: FeatureCache, key: str) -> str:
    values = {str(c.attrs[key]) for c in (source, target) if key in c.attrs}
    if not values:
        return UNKNOWN
    return values.pop() if len(values) == 1 else "mixed"


def _side(cache: FeatureCache, side: str) -> dict:
    attrs = cache.attrs
    return {
        f"{side}_weights": _weights(cache),
        f"{side}_weights_origin": str(attrs.get("weights_origin", UNKNOWN)),
        f"{side}_weights_sha256": str(attrs.get("weights_sha256", UNKNOWN)),
        f"{side}_preprocess": str(attrs.get("preprocess", UNKNOWN)),
        f"{side}_resolution": str(attrs.get("resolution", UNKNOWN)),
    }


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
