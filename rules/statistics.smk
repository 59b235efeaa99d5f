# Per (extractor, dataset): the statistics of its cache's array (the instance's `layer`),
# computed once and read by every comparison, experiment and attention map: the raw (and, when
# the metrics ask for it, L2-normalised) mean and covariance, and the k-NN radii that
# precision/recall and density/coverage need (fidlens.statistics).


rule dataset_statistics:
    input:
        script=workflow_script("dataset_statistics.py"),
        cache="results/features/{extractor}/{dataset}.h5",
    output:
        "results/statistics/{extractor}/{dataset}.h5",
    log:
        "logs/statistics/{extractor}/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=statistics_mem_mb,
        runtime=statistics_runtime,
    params:
        settings=statistics_settings_json,
        flags=statistics_flags,
    shell:
        "python {input.script:q} --cache {input.cache:q} {params.flags}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"
