"""The workflow's weights and mixed-settings options: `weights` is read with the one spec
parser (a path that starts with "random", e.g. `randomly_trained/x.pth`, is a file, checked
before any job and a rerun trigger), and `metrics.allow_mixed` reaches compute_metrics.py."""

from __future__ import annotations

import re

import pytest
import torch
from test_workflow import BASE_CONFIG, config_error, make_workdir, run_ok, write_config

from fidlens.extractors.base import WeightsInfo
from fidlens.extractors.networks.inception import FIDInceptionV3

pytestmark = pytest.mark.slow

WEIGHTS = "randomly_trained/x.pth"
CONFIG = {
    **BASE_CONFIG,
    "extractors": {"inception": {**BASE_CONFIG["extractors"]["inception"], "weights": WEIGHTS}},
}
TARGET = "results/features/inception/real.h5"


def planned_rules(workdir, target: str) -> list[str]:
    """Rules of the jobs a dry run for `target` plans."""
    output = run_ok(workdir, "--dry-run", target)
    return re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", output, re.M)


def save_weights(path, bias: float) -> None:
    """A state dict in the official layout, made instantly (zeros and identity batch norms)."""
    state = FIDInceptionV3("clean", WeightsInfo(None, "test", "test")).state_dict()
    state["fc.bias"] += bias
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_missing_weights_path_starting_with_random_is_reported(tmp_path):
    message = config_error(tmp_path, CONFIG)
    assert f"extractors.inception.weights: file {WEIGHTS} does not exist" in message


def test_changing_such_a_weights_file_reruns_the_extraction(tmp_path):
    make_workdir(tmp_path, CONFIG)
    save_weights(tmp_path / WEIGHTS, bias=0.0)
    run_ok(tmp_path, TARGET)
    assert "extract_features" not in planned_rules(tmp_path, TARGET)
    save_weights(tmp_path / WEIGHTS, bias=1.0)  # new content (and mtime), same size
    assert planned_rules(tmp_path, TARGET).count("extract_features") == 1


def test_allow_mixed_reaches_the_metrics_jobs_as_a_flag(tmp_path):
    make_workdir(tmp_path, BASE_CONFIG)  # allow_mixed left out: false
    commands = run_ok(tmp_path, "--dry-run", "--printshellcmds")
    assert "compute_metrics.py" in commands and "--allow-mixed" not in commands
    write_config(tmp_path, {**BASE_CONFIG, "metrics": {**BASE_CONFIG["metrics"],
                                                       "allow_mixed": True}})  # fmt: skip
    lines = run_ok(tmp_path, "--dry-run", "--printshellcmds").splitlines()
    metric_commands = [
        line for line in lines if line.startswith("Shell command:") and "compute_metrics" in line
    ]
    assert len(metric_commands) == 2
    assert all("--allow-mixed" in line for line in metric_commands)
