"""fidlens: what FID and other feature-based metrics really measure, as a reproducible study."""

__version__ = "0.1.0"
