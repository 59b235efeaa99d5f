# Per (extractor, dataset): the float64 mean and covariance of its cache's array (the instance's
# `layer`), computed once and read by every later step that needs a set's statistics.


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
        layer=statistics_layer,
    shell:
        "python {input.script:q} --cache {input.cache:q} --layer {params.layer}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"
