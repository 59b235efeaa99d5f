"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x),

from a classifier's logits (p(y|x) = softmax), over `splits` equal parts of the set: the
mean and the (population) standard deviation of the per-split scores, as torch-fidelity and
the original code report them. Split i holds rows [i N / splits, (i + 1) N / splits).
`shuffle_seed`: rows are first permuted with numpy's RandomState(seed).permutation, which is
torch-fidelity's `samples_shuffle` with its `rng_seed` (2020 by default); None keeps the order.

Which logits: for the FID Inception, torch-fidelity and torchmetrics use `logits_unbiased`, the
1008 outputs of the last layer without its bias; the biased ones give another number. Callers
say which logits they pass. Pure maths: no I/O.
"""

from __future__ import annotations

import numpy as np
import scipy.special

TORCH_FIDELITY_SEED = 2020


def inception_score(logits, splits: int = 10, shuffle_seed: int | None = None) -> dict:
    """{"mean", "std", "scores" (per split), "n", "splits", "shuffle_seed"} of N x K logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be N x K with K >= 2 classes, got shape {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits have NaN or Inf values")
    n = len(logits)
    if splits < 1 or n < splits:
        raise ValueError(f"{splits} splits need at least {splits} images, got {n}")
    if shuffle_seed is not None:
        logits = logits[np.random.RandomState(shuffle_seed).permutation(n)]
    log_p = scipy.special.log_softmax(logits, axis=1)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        p_split, log_p_split = p[rows], log_p[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_marginal = np.log(p_split.mean(axis=0))
            # A class no image of the split gives any probability (underflow) adds nothing.
            terms = np.where(p_split > 0, p_split * (log_p_split - log_marginal), 0.0)
        kl = terms.sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "scores": scores,
        "n": n,
        "splits": splits,
        "shuffle_seed": shuffle_seed,
    }
