"""The statistics, experiment and Inception Score stages in the workflow: the jobs a config
plans, the settings each job gets as flags, and config errors before any job."""

from __future__ import annotations

import pytest
from test_workflow import BASE_CONFIG, config_error, make_workdir, planned, run_ok

pytestmark = pytest.mark.slow

CONFIG = {
    **BASE_CONFIG,
    "inception_score": {"enabled": True, "splits": 4},
    "experiments": {
        "classifier": "inception",
        "top_n": {"n": [1, 2], "max_iterations": 20},
        "resampling": {"max_iterations": 30, "time_limit_s": 60},
    },
}
PAIRS = ("gen1__real", "gen2__real")


def test_dry_run_plans_statistics_experiments_and_scores_with_their_settings(tmp_path):
    make_workdir(tmp_path, CONFIG)
    output = run_ok(tmp_path, "--dry-run", "--printshellcmds")
    jobs = planned(tmp_path)
    # Statistics of every compared set (the metrics read them; the experiments read the
    # real set's), one per extractor.
    assert sorted(jobs["dataset_statistics"]) == [
        f"results/statistics/inception/{name}.h5" for name in ("gen1", "gen2", "real")]
    expected = {
        f"results/experiments/{kind}/{pair}.{ext}"
        for kind in ("top1", "topn", "resampling") for pair in PAIRS
        for ext in ("json", "csv", "png")
    }
    assert set(jobs["class_experiment"]) == expected
    assert sorted(jobs["inception_score"]) == [
        f"results/inception_score/inception/{name}.json" for name in ("gen1", "gen2", "real")]
    assert set(jobs["experiment_tables"]) == {"results/tables/experiments.csv",
                                              "results/tables/experiments.md"}
    assert "inception_score_table" in jobs
    commands = [line for line in output.splitlines() if "class_experiment.py" in line]
    topn = next(line for line in commands if "--experiment topn" in line)
    assert "--n 1,2" in topn and "--max-iterations 20" in topn and "--device" not in topn
    resampling = next(line for line in commands if "--experiment resampling" in line)
    assert "--extractor inception" in resampling and "--time-limit-s 60" in resampling
    assert "--device auto" in resampling and "--repeats 5" in resampling
    assert "--splits 4 --logits unbiased --shuffle-seed 2020" in output


def test_experiment_settings_naming_nothing_or_too_much_stop_before_any_job(tmp_path):
    config = {
        **CONFIG,
        "extractors": {**CONFIG["extractors"],
                       "face": {"type": "dlib_face", "face_box": "whole_image"}},
        "inception_score": {"enabled": True, "splits": 10},
        "experiments": {"classifier": "face", "resampling": {"extractor": "nope"}},
    }
    message = config_error(tmp_path, config)
    assert "experiments.classifier: 'face' has no ImageNet logits" in message
    assert "choose a classifier instance (inception)" in message
    assert "experiments.resampling.extractor: 'nope' is not a configured extractor" in message
    assert "inception_score.splits: 10 splits need at least 10 images" in message
