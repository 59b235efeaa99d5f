# The paper-style tables: every metric file in one long CSV and a Markdown summary.


rule make_tables:
    input:
        script=workflow_script("make_tables.py"),
        metrics=all_metric_jsons(),
    output:
        csv=report(
            "results/tables/metrics.csv",
            caption="../report/captions/metrics_csv.rst",
            category=REPORT_CATEGORIES["metrics"],
            subcategory="Tables",
        ),
        markdown="results/tables/metrics.md",
    log:
        "logs/tables/make_tables.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --metrics {input.metrics:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} > {log:q} 2>&1"
