# fidlens: what FID and other feature-based metrics measure, as a reproducible workflow.
# Stages: demo data -> manifests and feature caches -> metrics -> tables;
# face-detection rates beside them (face_detection.enabled); per-dataset statistics -> seed
# 002's class experiments (experiments.classifier) and the Inception Score (inception_score).
# Settings: config.yaml, described in schemas/config.schema.yaml and README.md.

from snakemake.utils import min_version

min_version("9")


configfile: "config.yaml"


include: "rules/common.smk"


if DEMO["enabled"]:

    include: "rules/demo.smk"


include: "rules/features.smk"
include: "rules/metrics.smk"
include: "rules/tables.smk"
include: "rules/faces.smk"
include: "rules/statistics.smk"
include: "rules/experiments.smk"


# Trivial steps run where Snakemake runs, never as cluster jobs.
localrules:
    all,
    make_tables,
    face_table,
    experiment_tables,
    inception_score_table,


rule all:
    default_target: True
    input:
        final_outputs(),
