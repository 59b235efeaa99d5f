# Seed 002's experiments, from the caches and the real sets' statistics (nothing re-extracted):
# per comparison, Top-1 matching, Top-N matching and FID-minimising resampling (the
# `experiment` wildcard), each with every extractor's FID before and after; the Inception
# Score per classifier instance and dataset; a table of each.


rule inception_score:
    input:
        script=workflow_script("inception_score.py"),
        cache="results/features/{extractor}/{dataset}.h5",
    output:
        "results/inception_score/{extractor}/{dataset}.json",
    log:
        "logs/inception_score/{extractor}/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=inception_score_mem_mb,
        runtime=10,
    params:
        settings=inception_score_settings_json,
        flags=inception_score_flags,
    shell:
        "python {input.script:q} --cache {input.cache:q} {params.flags}"
        " --dataset-name {wildcards.dataset} --out {output:q} > {log:q} 2>&1"


rule inception_score_table:
    input:
        script=workflow_script("experiment_tables.py"),
        results=all_inception_score_jsons(),
    output:
        csv="results/tables/inception_score.csv",
        markdown="results/tables/inception_score.md",
    log:
        "logs/tables/inception_score_table.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --kind inception_score --results {input.results:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"


rule class_experiment:
    input:
        script=workflow_script("class_experiment.py"),
        classifier_source=experiment_classifier_source,
        classifier_target=experiment_classifier_target,
        sources=experiment_source_caches,
        statistics=experiment_target_statistics,
    output:
        json="results/experiments/{experiment}/{source}__{target}.json",
        csv="results/experiments/{experiment}/{source}__{target}.csv",
        plot=report(
            "results/experiments/{experiment}/{source}__{target}.png",
            caption="../report/captions/experiment_plot.rst",
            category=REPORT_CATEGORIES["experiments"],
            subcategory=experiment_report_subcategory,
            labels={"comparison": "{source} -> {target}"},
        ),
    log:
        "logs/experiments/{experiment}/{source}__{target}.log",
    wildcard_constraints:
        experiment="top1|topn|resampling",
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=experiment_mem_mb,
        runtime=experiment_runtime,
        gpu=experiment_gpus,
    params:
        settings=experiment_settings_json,
        flags=experiment_flags,
    shell:
        "python {input.script:q} --experiment {wildcards.experiment}"
        " --classifier-source {input.classifier_source:q}"
        " --classifier-target {input.classifier_target:q}"
        " --source-caches {input.sources:q} --target-statistics {input.statistics:q}"
        " --source-name {wildcards.source} --target-name {wildcards.target} {params.flags}"
        " --threads {threads} --json {output.json:q} --csv {output.csv:q}"
        " --plot {output.plot:q} > {log:q} 2>&1"


rule experiment_tables:
    input:
        script=workflow_script("experiment_tables.py"),
        results=all_experiment_jsons(),
    output:
        csv="results/tables/experiments.csv",
        markdown="results/tables/experiments.md",
    log:
        "logs/tables/experiment_tables.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --kind experiments --results {input.results:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"
