# The study report: seed 001's Tables I-IV and seed 000's Table 2 in Markdown and LaTeX, a
# metrics figure per target, every Markdown table as a report page, and the study summary
# (weights, software). `snakemake --report results/report.html` collects every output wrapped
# in report() below and in the stage files (make demo runs it after the workflow).


rule paper_tables:
    input:
        script=workflow_script("paper_tables.py"),
        metrics=report_metric_jsons(),
        discard_replace=paper_discard_replace_jsons(),
    output:
        markdown="results/tables/paper.md",
        latex=report(
            "results/tables/paper.tex",
            caption="../report/captions/paper_tables_latex.rst",
            category=REPORT_CATEGORIES["paper"],
            subcategory=REPORT_PAGES["tables/paper"][1],
        ),
    log:
        "logs/report/paper_tables.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        kinds=paper_kinds,
        flags=paper_kind_flags,
    shell:
        "python {input.script:q} --metrics {input.metrics:q} {params.flags}"
        " --discard-replace {input.discard_replace:q} --markdown {output.markdown:q}"
        " --latex {output.latex:q} > {log:q} 2>&1"


rule paper_figure:
    input:
        script=workflow_script("paper_figure.py"),
        metrics=figure_metric_jsons,
    output:
        report(
            "results/report/figures/{target}.png",
            caption="../report/captions/metrics_figure.rst",
            category=REPORT_CATEGORIES["metrics"],
            subcategory="Figures",
            labels={"target": "{target}", "figure": "every metric, raw vs L2"},
        ),
    log:
        "logs/report/figures/{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kinds=paper_kinds,
        flags=paper_kind_flags,
    shell:
        "python {input.script:q} --metrics {input.metrics:q} --target {wildcards.target:q}"
        " {params.flags} --out {output:q} > {log:q} 2>&1"


rule report_summary:
    input:
        script=workflow_script("report_summary.py"),
        metrics=report_metric_jsons(),
    output:
        page=report(
            "results/report/summary.html",
            caption="../report/captions/summary.rst",
            category=REPORT_CATEGORIES["summary"],
        ),
        fragment="results/report/summary.fragment.html",
    log:
        "logs/report/summary.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=report_summary_settings,
    shell:
        "python {input.script:q} --metrics {input.metrics:q} --settings {params.settings:q}"
        " --page {output.page:q} --fragment {output.fragment:q} > {log:q} 2>&1"


rule report_page:
    input:
        script=workflow_script("report_page.py"),
        markdown="results/{page}.md",
    output:
        report(
            "results/report/pages/{page}.html",
            caption="../report/captions/table_page.rst",
            category=report_page_category,
            subcategory=report_page_subcategory,
        ),
    log:
        "logs/report/pages/{page}.log",
    wildcard_constraints:
        page=REPORT_PAGE_WILDCARD,
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=report_page_title,
    shell:
        "python {input.script:q} --markdown {input.markdown:q} --title {params.title:q}"
        " --out {output:q} > {log:q} 2>&1"
