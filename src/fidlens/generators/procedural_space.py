"""The procedural demo generator's w space, without torch: its size, the fixed mapping
z -> w = Q z, and the KNOWN defective region w[DEFECT_AXIS] > DEFECT_THRESHOLD with its
severity ramp (`fidlens.generators.procedural`'s docstring describes the images).

Split from `fidlens.generators.procedural` (which re-exports every name here) so that jobs
which only need the region's definition (the discard / replace FIDs, the demo's dataset
descriptions) start without importing torch (about a second per process).
"""

from __future__ import annotations

import numpy as np

from fidlens.generators.latents import as_matrix

W_DIM = 32
MAPPING_SEED = 2021
DEFECT_AXIS = 0
DEFECT_THRESHOLD = 1.2
DEFECT_ONSET = 0.45
DEFECT_RAMP = 0.8


def mapping_matrix() -> np.ndarray:
    """The fixed orthogonal Q of w = Q z (QR of a seeded Gaussian matrix, signs fixed)."""
    gaussian = np.random.RandomState(MAPPING_SEED).randn(W_DIM, W_DIM)
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))


def defect_severity(w) -> np.ndarray:
    """(N,) in [0, 1]: 0 outside the defective region (w[0] <= DEFECT_THRESHOLD), else
    DEFECT_ONSET rising linearly to 1 at DEFECT_THRESHOLD + DEFECT_RAMP."""
    w = as_matrix(w, W_DIM, "w")
    excess = w[:, DEFECT_AXIS] - DEFECT_THRESHOLD
    ramp = DEFECT_ONSET + (1 - DEFECT_ONSET) * np.clip(excess / DEFECT_RAMP, 0, 1)
    return np.where(excess > 0, ramp, 0.0)


def is_defective(w) -> np.ndarray:
    """(N,) bool: w lies in the defective half-space w[0] > DEFECT_THRESHOLD."""
    return as_matrix(w, W_DIM, "w")[:, DEFECT_AXIS] > DEFECT_THRESHOLD
