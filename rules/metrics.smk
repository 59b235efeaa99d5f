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
        mem_mb=metrics_mem_mb,
        runtime=metrics_runtime,
    params:
        settings=metric_settings_json,
        flags=metric_flags,
    shell:
        "python {input.script:q} --source {input.source:q} --target {input.target:q} {params.flags}"
        " --source-name {wildcards.source} --target-name {wildcards.target} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"
