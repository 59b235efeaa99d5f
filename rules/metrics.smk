# One metric file per extractor and comparison (source = generated, target = real).


rule compute_metrics:
    input:
        script=workflow_script("compute_metrics.py"),
        source="results/features/{extractor}/{source}.h5",
        target="results/features/{extractor}/{target}.h5",
    output:
        "results/metrics/{extractor}/{source}__{target}.json",
    log:
        "logs/metrics/{extractor}/{source}__{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=canonical_json(metric_settings()),
        flags=metric_flags(),
    shell:
        "python {input.script} --source {input.source} --target {input.target} {params.flags}"
        " --source-name {wildcards.source} --target-name {wildcards.target} --threads {threads}"
        " --out {output} > {log} 2>&1"
