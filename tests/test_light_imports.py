"""Workflow jobs that compute nothing with torch must not import it (issue #9: each job is a
fresh process, and importing torch costs 1-4 s of the demo's 15-minute budget).

Each check runs in a fresh interpreter, so a regression names the script or module that
pulled torch in again. `--help` covers a script's top-level imports; the modules the light
jobs import on first use at run time are checked by name, and one light job (the Inception
Score of a cache, then its table) is run end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow_scripts"

# Scripts whose jobs compute with torch (networks, Grad-CAM, k-NN / KID, FD-infinity, the
# fid-resampling optimiser, the procedural generator's renderer): allowed to import it.
TORCH_SCRIPTS = {
    "attention_maps.py",
    "class_experiment.py",
    "discard_replace_select.py",
    "extract_features.py",
    "fd_infinity.py",
    "make_procedural_demo.py",
    "trust_overlap.py",
}
# Every other workflow script is light; this list names them so a new script is classified.
LIGHT_SCRIPTS = sorted(
    path.name for path in SCRIPTS.glob("*.py") if path.name not in TORCH_SCRIPTS
)
# Modules the light jobs import inside their functions at run time (not seen by --help).
LIGHT_MODULES = [
    "fidlens.attention_io",
    "fidlens.differences",
    "fidlens.embedding_plots",
    "fidlens.experiments.discard_replace",
    "fidlens.experiments.run",
    "fidlens.experiments.tables",
    "fidlens.generators.demo",
    "fidlens.generators.procedural_space",
    "fidlens.inception_score",
    "fidlens.interop",
    "fidlens.metrics",
    "fidlens.metrics.interval_bounds",
    "fidlens.plots_attention",
    "fidlens.trust",
    "fidlens.weights_fetch",
]

# Runs CODE in a fresh interpreter, then prints the heavy modules it left in sys.modules.
_PROBE = """
import json, runpy, sys
{code}
print("\\nLOADED " + json.dumps(sorted(m for m in ("torch", "torchvision") if m in sys.modules)))
"""


def _loaded_after(code: str, cwd: Path = ROOT) -> list[str]:
    """The heavy modules (torch, torchvision) loaded after running `code` in a new process;
    fails the test with the process's stderr when it does not finish cleanly."""
    run = subprocess.run([sys.executable, "-c", _PROBE.format(code=code)], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = [row for row in run.stdout.splitlines() if row.startswith("LOADED ")][-1]
    return json.loads(line.removeprefix("LOADED "))


def heavy_modules_after_run(argv: list[str]) -> str:
    """Run a script as `__main__` (argv[0]) in a fresh interpreter; it must exit 0. Returns
    which of torch and pandas it loaded, as the printed sorted list (e.g. "['torch']")."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
        "print(sorted(name for name in ('torch', 'pandas') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_script_is_classified():
    assert TORCH_SCRIPTS <= {path.name for path in SCRIPTS.glob("*.py")}
    assert len(LIGHT_SCRIPTS) >= 25  # the listing found the scripts


@pytest.mark.parametrize("script", LIGHT_SCRIPTS)
def test_light_script_help_imports_no_torch(script):
    path = SCRIPTS / script
    code = (f"sys.path.insert(0, {str(SCRIPTS)!r}); sys.argv = [{str(path)!r}, '--help']\n"
            "try:\n"
            f"    runpy.run_path({str(path)!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    assert stop.code in (0, None), stop.code\n")
    assert _loaded_after(code) == [], f"{script} --help imports torch"


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_module_imports_no_torch(module):
    assert _loaded_after(f"import {module}") == [], f"{module} imports torch"


def test_inception_score_job_runs_without_torch(tmp_path):
    """The real job and its table on a small cache: numbers come out, torch never loads."""
    from fidlens.cache import FeatureCache, write_cache

    logits = np.random.default_rng(0).normal(size=(20, 1000)).astype(np.float32)
    write_cache(tmp_path / "set.h5", FeatureCache(
        features=np.zeros((20, 4), np.float32), logits=logits,
        attrs={"extractor": "mobilenet", "extractor_type": "mobilenet_v2_imagenet",
               "weights": "pretrained", "dataset": "set"},
    ))
    score, table = SCRIPTS / "inception_score.py", SCRIPTS / "experiment_tables.py"
    code = (f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
            f"sys.argv = ['x', '--cache', 'set.h5', '--splits', '2', '--out', 'is.json']\n"
            "try:\n"
            f"    runpy.run_path({str(score)!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    assert stop.code in (0, None), stop.code\n"
            "sys.argv = ['x', '--kind', 'inception_score', '--results', 'is.json', "
            "'--csv', 'is.csv', '--markdown', 'is.md']\n"
            "try:\n"
            f"    runpy.run_path({str(table)!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    assert stop.code in (0, None), stop.code\n")
    assert _loaded_after(code, cwd=tmp_path) == []
    result = json.loads((tmp_path / "is.json").read_text())
    assert result["n"] == 20 and 1.0 <= result["inception_score_mean"] < 1000
    assert "set" in (tmp_path / "is.csv").read_text()


@pytest.mark.parametrize("shape", [(7, 7, 299, 299), (16, 16, 224, 200), (24, 24, 5, 3),
                                   (3, 5, 3, 5), (1, 1, 4, 4), (8, 6, 17, 1)])
def test_numpy_upsample_equals_torch_interpolate(shape):
    """The plots' torch-free bilinear resize is torch's F.interpolate(align_corners=False)."""
    import torch
    import torch.nn.functional as F

    from fidlens.attention_io import upsample

    h, w, height, width = shape
    grid = np.random.default_rng(h * w).normal(size=(h, w))
    expected = F.interpolate(torch.from_numpy(grid)[None, None], size=(height, width),
                             mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(upsample(grid, height, width), expected, rtol=0, atol=1e-12)
