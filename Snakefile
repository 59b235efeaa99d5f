# fidlens: what FID and other feature-based metrics measure, as a reproducible workflow.
# Stages: demo data -> manifests and feature caches -> metrics -> tables.
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


rule all:
    default_target: True
    input:
        final_outputs(),
