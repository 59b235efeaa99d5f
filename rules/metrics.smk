# One metric file per extractor and comparison (source = generated, target = real), from the
# two caches and their per-dataset statistics (FID's moments and the k-NN radii, computed once
# per dataset by rules/statistics.smk); with metrics.intervals.enabled also its per-resample
# values, and per extractor and target the paired differences between its sources.


rule compute_metrics:
    input:
        unpack(metric_statistics),
        script=workflow_script("compute_metrics.py"),
        source="results/features/{extractor}/{source}.h5",
        target="results/features/{extractor}/{target}.h5",
    output:
        **metric_extra_outputs(),
        json="results/metrics/{extractor}/{source}__{target}.json",
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
        draws=metric_draws_flag,
        statistics=metric_statistics_flags,
    shell:
        "python {input.script:q} --source {input.source:q} --target {input.target:q} {params.flags}"
        " {params.statistics} --source-name {wildcards.source} --target-name {wildcards.target}"
        " --threads {threads} {params.draws} --out {output.json:q} > {log:q} 2>&1"


# The paired interval of metric(A) - metric(B) for every two sources compared with one target,
# from their per-resample values (the same target subsets in every resample).
rule metric_differences:
    input:
        script=workflow_script("metric_differences.py"),
        metrics=difference_metric_jsons,
        draws=difference_draws,
    output:
        json="results/metrics/differences/{extractor}/{target}.json",
        csv=report(
            "results/metrics/differences/{extractor}/{target}.csv",
            caption="../report/captions/differences.rst",
            category=REPORT_CATEGORIES["metrics"],
            subcategory="Paired differences",
            labels={"extractor": "{extractor}", "target": "{target}"},
        ),
    log:
        "logs/metrics/differences/{extractor}/{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --metrics {input.metrics:q} --draws {input.draws:q}"
        " --json {output.json:q} --csv {output.csv:q} > {log:q} 2>&1"
