"""Experiments on cached features (seed 002, Kynkäänniemi et al., "The Role of ImageNet Classes
in Fréchet Inception Distance"): how far FID moves when only the generated set's ImageNet
class statistics change.

- `fid_resampling`: FID of weighted generated features against fixed real statistics, its
  analytic gradient with respect to per-image log-weights, an L-BFGS solver, and resampling
  with replacement by weights.
- `class_matching`: Top-1 classes, exact Top-1 histogram matching, N-hot Top-N features.
- `run`: the I/O edge: reads feature caches and per-dataset statistics, runs an experiment
  for every configured extractor and returns JSON-ready results and table rows.
- `plots`, `tables`: figures and tables from those results.

Pure maths in the first two (arrays in, numbers out); nothing here re-extracts features.
"""
