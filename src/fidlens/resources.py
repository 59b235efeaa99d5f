"""What a job asks a cluster for: memory, run time and the split of its CPUs, from the size
of its work. Pure functions of numbers (no torch, no snakemake); the rules call them through
small input functions in rules/common.smk, and `feature_shape` reads a cache's N and D.

Memory is in MB as SLURM counts it (2^20 bytes). The formulas are calibrated on measured peaks
(benchmarks/bench_resources.py, results in benchmarks/RESULTS.md, "Job memory and run time")
and keep a margin above them; README.md, "Memory and run time", explains them for N and D.
A job retried by Snakemake (`--retries`) asks for `attempt` times the memory and run time.
"""

from __future__ import annotations

import errno
import math
import os

from fidlens.metric_specs import INTERVAL_GROUPS

MB = 2**20

# ---------------------------------------------------------------------------------------------
# compute_metrics: two caches of n_source and n_target rows of D float32 features
# ---------------------------------------------------------------------------------------------

# Calibrated on measured peaks (RESULTS.md): 1262 MB at 5k + 5k rows x 2048, 2186 MB at
# 20k + 20k x 2048, 1097 MB at 20k + 20k x 512, i.e. about 760 MB + 16 bytes per feature
# value + 6 D x D float64 matrices.
# Python with torch, numpy, scipy and h5py loaded, and the k-NN blocks (2048 x 2048 products).
METRICS_BASE_MB = 800
# Bytes per feature value (rows x D, both sets) at the peak: the float32 features as read (4)
# and their L2-normalised float64 copies (8), plus transient float64 copies (measured: 15.8).
METRICS_BYTES_PER_VALUE = 16
# D x D float64 matrices alive at once in FID (covariances, products, eigen-solver work).
METRICS_DXD_MATRICES = 6
# KID's kernel matrices of whole sets (3 x n x n float64), used up to 4096 rows per set.
KID_WHOLE_SET_ROWS = 4096
SAFETY = 1.25  # above the measured peaks

# Seconds per unit of work on one core, with a margin of about 2 over runs on a busy 2-core
# machine (RESULTS.md): the k-NN passes of precision/recall and density/coverage cost
# ~rows^2 x D per normalisation; KID 3 x subsets x size^2 x D; FID rows x D^2 + 30 D^3.
SECONDS_PER_MULTIPLY_ADD = 1.0e-10  # one core, float64 BLAS
KNN_SECONDS_PER_UNIT = 8.0e-11  # per rows^2 x D, one core (the worst case, isotropic, x 2)
MIN_RUNTIME_MIN = 10


def metrics_mem_mb(
    n_source: int, n_target: int, dim: int, attempt: int = 1, interval_resamples: int = 0
) -> int:
    """Memory (MB) of compute_metrics for two caches of n_source and n_target rows of D
    features (both normalisations, every metric): linear in (n_source + n_target) x D; with
    `interval_resamples` > 0 plus the confidence intervals' (`interval_bytes`)."""
    values = (int(n_source) + int(n_target)) * int(dim)
    kid_rows = min(max(int(n_source), int(n_target)), KID_WHOLE_SET_ROWS)
    peak = (
        METRICS_BASE_MB * MB
        + METRICS_BYTES_PER_VALUE * values
        + METRICS_DXD_MATRICES * 8 * int(dim) ** 2
        + 3 * 8 * kid_rows**2
        + interval_bytes(n_source, n_target, dim, interval_resamples)
    )
    return _round_mb(SAFETY * peak * max(1, int(attempt)))


# Confidence intervals (fidlens.metrics.intervals), at half-samples: FID's per-group packed
# outer products (kept up to 3 GiB) and one 1 GiB chunk of resampled covariances, when the
# subsets have more rows than D; per resample and row, the membership matrices, subset radii
# and counting chunks (float64).
INTERVAL_GRAM_CACHE_BYTES = 3 * 2**30
INTERVAL_CHUNK_BYTES = 2**30
INTERVAL_BYTES_PER_RESAMPLE_ROW = 48
# One eigenvalue problem per resample (measured 1.1 CPU s at D = 2048, about 1.3 D^3 multiply-
# adds at SECONDS_PER_MULTIPLY_ADD; 3 D^3 keeps the margin of 2) and the resampled k-NN counts
# and KID kernel sums (~3 point estimates' k-NN and KID work).
INTERVAL_EIGEN_MULTIPLY_ADDS = 3
INTERVAL_KNN_FACTOR = 3


def interval_bytes(n_source: int, n_target: int, dim: int, resamples: int) -> int:
    """Extra memory of the confidence intervals (0 without resamples)."""
    if int(resamples) <= 0:
        return 0
    dim = int(dim)
    grams = 0
    if min(int(n_source), int(n_target)) // 2 - 1 >= dim:
        groups = sum(min(int(n), INTERVAL_GROUPS) for n in (n_source, n_target))
        grams = min(INTERVAL_GRAM_CACHE_BYTES, groups * 8 * dim * (dim + 1) // 2)
        grams += INTERVAL_CHUNK_BYTES
    rows = int(n_source) + int(n_target)
    return grams + INTERVAL_BYTES_PER_RESAMPLE_ROW * int(resamples) * rows


def metrics_runtime_min(
    n_source: int,
    n_target: int,
    dim: int,
    threads: int,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    normalizations: int = 2,
    attempt: int = 1,
    interval_resamples: int = 0,
) -> int:
    """Run time (minutes) of compute_metrics: FID, KID and the k-NN metrics, per
    normalisation, on `threads` cores, with a wide margin (a killed job costs more than a
    long reservation); with `interval_resamples` > 0 plus the confidence intervals."""
    rows, dim = int(n_source) + int(n_target), int(dim)
    size = min(int(kid_subset_size), int(n_source), int(n_target))
    multiply_adds = rows * dim**2 + 30 * dim**3 + 3 * int(kid_subsets) * size**2 * dim
    seconds = SECONDS_PER_MULTIPLY_ADD * multiply_adds + KNN_SECONDS_PER_UNIT * rows**2 * dim
    if int(interval_resamples) > 0:
        half = min(int(n_source), int(n_target)) // 2
        eigen = INTERVAL_EIGEN_MULTIPLY_ADDS * min(dim, half) ** 3 * int(interval_resamples)
        kernels = rows**2 * dim + rows**2 * int(interval_resamples)
        seconds += SECONDS_PER_MULTIPLY_ADD * (eigen + rows * dim**2 + kernels)
        seconds += INTERVAL_KNN_FACTOR * KNN_SECONDS_PER_UNIT * rows**2 * dim
    seconds *= max(1, int(normalizations)) / max(1, int(threads))
    return _minutes(seconds, attempt)


# ---------------------------------------------------------------------------------------------
# extract_features: N images through one network, in batches
# ---------------------------------------------------------------------------------------------

# Calibrated on measured peaks (RESULTS.md: 200 images, 1 worker: 2899 MB at batch 50,
# 3728 MB at batch 100, process tree; the main process alone 2053 and 2742 MB).
# The main process: torch, the network (InceptionV3: 24 M float32 parameters, with random
# weights also their calibration) and the DataLoader, before any batch.
EXTRACTION_BASE_MB = 1400
# Per image of a batch, in the main process: the stacked input (3 x 299 x 299 float32,
# 1 MB) and the network's largest live activations in inference mode (measured 13.8).
EXTRACTION_MB_PER_BATCH_IMAGE = 14
# Per decoding worker: a forked Python with torch (its pages counted in full, as SLURM's
# RSS sum does; measured ~700 MB), up to 2 prefetched batches of preprocessed images, and
# one decoded image at its native size (up to ~8 megapixels with float copies; larger
# images need more: set-resources).
EXTRACTION_WORKER_MB = 700
EXTRACTION_DECODE_MB = 120
PREPROCESSED_IMAGE_MB = 3 * 299 * 299 * 4 / MB
# Output values kept per image (features and logits: InceptionV3 2048 + 1008); the finished
# batches are read back and concatenated at the end (3 copies at the peak).
DEFAULT_OUTPUT_FLOATS = 4096
ASSEMBLY_COPIES = 3

# Core-seconds per image, with margin: InceptionV3 on the CPU (measured 0.12 core-s at 256²),
# decoding, hashing and resizing when a GPU runs the network.
CPU_SECONDS_PER_IMAGE = 0.3
GPU_DECODE_SECONDS_PER_IMAGE = 0.05
GPU_SECONDS_PER_IMAGE = 0.005


def split_extraction_cpus(cpus: int, device_type: str) -> tuple[int, int]:
    """(decoding worker processes, torch threads) for an extraction job that reserved `cpus`
    cores. On a GPU the network takes one core to feed it and every other core decodes (they
    add up to `cpus`). On the CPU the network is the work: it gets every reserved core, and
    about one decoding worker per 4 cores runs beside it; a worker sleeps most of the time
    (decoding and resizing take ~10-20 ms of the ~100 ms an image costs InceptionV3 on one
    core), so the cores stay busy without being oversubscribed. One core: decoding in the
    main process.
    """
    cpus = max(1, int(cpus))
    if cpus == 1:
        return 0, 1
    if device_type == "cuda":
        return cpus - 1, 1
    return math.ceil(cpus / 4), cpus


def max_workers(cpus: int, device: str) -> int:
    """Most decoding workers a job on `cpus` cores may start for the config's `device`
    (auto becomes cuda or cpu only in the job, so both count)."""
    kinds = ("cpu", "cuda") if device == "auto" else (device_type_of(device),)
    return max(split_extraction_cpus(cpus, kind)[0] for kind in kinds)


def extraction_mem_mb(
    n_images: int,
    batch_size: int,
    workers: int,
    output_floats: int = DEFAULT_OUTPUT_FLOATS,
    attempt: int = 1,
) -> int:
    """Memory (MB) of one extraction: the network and one batch in the main process, each
    decoding worker with its prefetched batches and one decoded image, and the finished
    features assembled at the end (linear in N)."""
    batch, workers = max(1, int(batch_size)), max(0, int(workers))
    main = EXTRACTION_BASE_MB + EXTRACTION_MB_PER_BATCH_IMAGE * batch
    per_worker = EXTRACTION_WORKER_MB + EXTRACTION_DECODE_MB + 2 * batch * PREPROCESSED_IMAGE_MB
    if workers == 0:  # decoding in the main process
        main += EXTRACTION_DECODE_MB
    assembly = ASSEMBLY_COPIES * int(n_images) * int(output_floats) * 4 / MB
    peak = (main + workers * per_worker + assembly) * MB
    return _round_mb(SAFETY * peak * max(1, int(attempt)))


def extraction_runtime_min(
    n_images: int, cpus: int, device_type: str, attempt: int = 1
) -> int:
    """Run time (minutes) of one extraction on `cpus` cores, on the CPU or a GPU."""
    workers, threads = split_extraction_cpus(cpus, device_type)
    if device_type == "cuda":
        per_image = max(GPU_SECONDS_PER_IMAGE, GPU_DECODE_SECONDS_PER_IMAGE / max(1, workers))
    else:
        per_image = CPU_SECONDS_PER_IMAGE / threads
    return _minutes(int(n_images) * per_image, attempt)


def device_type_of(device: str) -> str:
    """"cuda" for the config's cuda / cuda:N, else "cpu" (auto asks for no GPU: on a cluster
    a job gets one only if it asks, and a workstation's jobs pick a free one themselves)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def gpus_for(device: str) -> int:
    """GPUs an extraction job reserves: 1 for cuda / cuda:N, 0 otherwise."""
    return 1 if device_type_of(device) == "cuda" else 0


# ---------------------------------------------------------------------------------------------
# Reading sizes
# ---------------------------------------------------------------------------------------------


def feature_shape(path: str | os.PathLike) -> tuple[int, int]:
    """(N, D) of a cache's `features` without reading them. A missing file raises
    FileNotFoundError naming it (Snakemake then sizes the job once the file exists)."""
    import h5py

    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "feature cache not made yet", str(path))
    with h5py.File(path, "r") as handle:
        rows, dim = handle["features"].shape
    return int(rows), int(dim)


def _round_mb(bytes_: float) -> int:
    """Up to the next 100 MB."""
    return int(math.ceil(bytes_ / MB / 100.0) * 100)


def _minutes(seconds: float, attempt: int) -> int:
    return int(max(MIN_RUNTIME_MIN, math.ceil(seconds / 60.0 + MIN_RUNTIME_MIN))
               * max(1, int(attempt)))


# ---------------------------------------------------------------------------------------------
# dataset_statistics, inception_score and the class experiments (fidlens.statistics,
# fidlens.experiments): sized from the caches' N and D like compute_metrics
# ---------------------------------------------------------------------------------------------

# The float32 rows as read, their float64 copy and the centred copy (4 + 8 + 8 bytes a value;
# fidlens.metrics.feature_statistics now centres float32 rows in chunks, so this is an upper
# bound), and the covariance with its symmetrised copy and the file's buffer (3 D x D float64).
STATISTICS_BYTES_PER_VALUE = 20
STATISTICS_DXD_MATRICES = 3
# The l2 block: the normalised float64 rows and their float64 input copy (8 + 8 a value).
STATISTICS_L2_BYTES_PER_VALUE = 16
# k-NN radii (fidlens.metrics.knn): per row, the m = k + 12 best candidates (float32 value and
# int64 index), their pair keys, indices and exact distances (about 5 int64 / float64 each),
# and the block labels; per process, the products of two 2048-row blocks and their operands.
RADII_BYTES_PER_ROW = 1400
RADII_BLOCK_BYTES = 256 * MB
# Per generated-set value in an experiment: the float32 cache, its float64 centred copy, its
# projection onto the real factor and the per-evaluation copies (z, weighted z, z V: 8 each).
EXPERIMENT_BYTES_PER_VALUE = 44
# D x D float64 matrices per extractor: the real covariance, its eigenvectors and factor.
EXPERIMENT_DXD_MATRICES = 4
# Evaluations per L-BFGS iteration (line searches), with margin; each costs two n x r x r
# products and an r x r eigendecomposition (~10 r^3 multiply-adds).
EVALUATIONS_PER_ITERATION = 1.5


def statistics_mem_mb(
    n: int, dim: int, attempt: int = 1, l2: bool = False, radii: bool = False
) -> int:
    """Memory (MB) of dataset_statistics for a cache of n rows of D values; `l2`: an
    L2-normalised block too, `radii`: k-NN radii (one block at a time)."""
    n, dim = int(n), int(dim)
    peak = (METRICS_BASE_MB * MB + STATISTICS_BYTES_PER_VALUE * n * dim
            + STATISTICS_DXD_MATRICES * 8 * dim**2)
    if l2:
        peak += STATISTICS_L2_BYTES_PER_VALUE * n * dim
    if radii:
        peak += RADII_BYTES_PER_ROW * n + RADII_BLOCK_BYTES
    return _round_mb(SAFETY * peak * max(1, int(attempt)))


def statistics_runtime_min(
    n: int, dim: int, threads: int, attempt: int = 1, moment_blocks: int = 1,
    radii_blocks: int = 0,
) -> int:
    """Run time (minutes) of dataset_statistics: one n x D x D product per block with moments
    (half of it a symmetric update does, counted whole for margin), and per block with radii
    the n^2 D / 2 multiply-adds of the within-set pairs, twice (candidates, then the second
    look of unsettled points)."""
    n, dim = int(n), int(dim)
    multiply_adds = max(1, int(moment_blocks)) * n * dim**2 + int(radii_blocks) * n**2 * dim
    seconds = SECONDS_PER_MULTIPLY_ADD * multiply_adds / max(1, int(threads))
    return _minutes(seconds, attempt)


def experiment_mem_mb(shapes: list[tuple[int, int]], attempt: int = 1) -> int:
    """Memory (MB) of one class experiment; `shapes`: (n_source, D) of every extractor's
    generated cache (the classifier's logits and the Top-N indicators are among them or
    smaller)."""
    peak = METRICS_BASE_MB * MB + sum(
        EXPERIMENT_BYTES_PER_VALUE * int(n) * int(dim) + EXPERIMENT_DXD_MATRICES * 8 * int(dim) ** 2
        for n, dim in shapes
    )
    return _round_mb(SAFETY * peak * max(1, int(attempt)))


def experiment_runtime_min(
    shapes: list[tuple[int, int]],
    threads: int,
    optimisations: list[tuple[int, int]] = (),
    max_iterations: int = 0,
    time_limit_s: float | None = None,
    repeats: int = 5,
    attempt: int = 1,
) -> int:
    """Run time (minutes) of one class experiment: every extractor's real factor (an eigh of
    D x D, ~10 D^3) and its FIDs of 2 x `repeats` resamples per optimisation (or per
    experiment), plus `max_iterations` L-BFGS iterations for each (n, r) in
    `optimisations` (a time limit caps each)."""
    evaluations = max(1, len(optimisations))
    multiply_adds = sum(
        10 * dim**3 + evaluations * (2 * repeats + 2) * 2 * n * min(n, dim) ** 2
        for n, dim in shapes
    )
    seconds = SECONDS_PER_MULTIPLY_ADD * multiply_adds / max(1, int(threads))
    for n, rank in optimisations:
        per_evaluation = SECONDS_PER_MULTIPLY_ADD * (2 * n * rank**2 + 10 * rank**3)
        solving = EVALUATIONS_PER_ITERATION * int(max_iterations) * per_evaluation / max(
            1, int(threads))
        seconds += min(solving, time_limit_s) if time_limit_s else solving
    return _minutes(seconds, attempt)
