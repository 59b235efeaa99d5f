# fidlens: what FID and other feature-based metrics measure, as a reproducible workflow.
# Stages: demo data -> manifests and feature caches -> metrics -> tables;
# face-detection rates beside them (face_detection.enabled); per-dataset statistics -> seed
# 002's class experiments (experiments.classifier) and the Inception Score (inception_score).
# PaCMAP maps of each comparison's feature spaces (embedding.enabled).
# Generated datasets (datasets.<name>.generator: a seed range; .probes: around bad seeds) and
# seed 000's inspection loop: sample and probe sheets, pair files, Table 1 (inspection).
# Seed 000's discard / replace in w space, from generator latents (discard_replace.enabled).
# Where FID looks: Grad-CAM of FID, per-image FID influence, good/bad pairs (attention.enabled).
# Statistics in and out (pytorch-fid, clean-fid), shared caches, FID against statistics-only
# targets (statistics); trust checks: overlap, memorisation sheets, FD∞ (trust.enabled).
# The report: paper-style tables, a metrics figure per target, every table as a page;
# `snakemake --report results/report.html` after a run (make demo does it).
# Settings: config.yaml, described in schemas/config.schema.yaml and README.md.

from snakemake.utils import min_version

min_version("9")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


if DEMO["enabled"]:

    include: "rules/demo.smk"


include: "rules/generate.smk"
include: "rules/features.smk"
include: "rules/metrics.smk"
include: "rules/tables.smk"
include: "rules/faces.smk"
include: "rules/statistics.smk"
include: "rules/experiments.smk"
include: "rules/embedding.smk"
include: "rules/attention.smk"
include: "rules/inspection.smk"
include: "rules/discard_replace.smk"
include: "rules/interop.smk"
include: "rules/trust.smk"
include: "rules/report.smk"


# Trivial steps run where Snakemake runs, never as cluster jobs.
localrules:
    all,
    make_tables,
    metric_differences,
    face_table,
    experiment_tables,
    inception_score_table,
    discard_replace_table,
    inspection_table,
    overlap_table,
    sample_size_table,
    paper_tables,
    paper_figure,
    report_summary,
    report_page,


rule all:
    default_target: True
    input:
        final_outputs(),
