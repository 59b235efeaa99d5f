#!/usr/bin/env bash
# Run by `snakemake --sdm conda` inside the new environment, from the working directory.
# Installs this repository's fidlens package (its dependencies are in fidlens.yaml).
set -euo pipefail
if ! grep -q '^name = "fidlens"' pyproject.toml 2>/dev/null; then
    echo "fidlens.post-deploy.sh: run snakemake --sdm conda from the fidlens repository root" \
        "(no fidlens pyproject.toml in $PWD), or install the package by hand: pip install -e ." >&2
    exit 1
fi
python -m pip install --no-deps -e .
