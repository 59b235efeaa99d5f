# PaCMAP maps of the feature spaces (seed 001 Fig. 3): per extractor and comparison, the
# source and target features embedded together in 2-D (a CSV of coordinates and a JSON of how
# they were made); per comparison, a scatter per extractor and a grid of them all.


rule embed_features:
    input:
        script=workflow_script("embed_features.py"),
        source="results/features/{extractor}/{source}.h5",
        target="results/features/{extractor}/{target}.h5",
    output:
        csv="results/embedding/{extractor}/{source}__{target}.csv",
        json="results/embedding/{extractor}/{source}__{target}.json",
    log:
        "logs/embedding/{extractor}/{source}__{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: EMBEDDING["threads"]
    resources:
        mem_mb=embedding_mem_mb,
        runtime=embedding_runtime,
    params:
        settings=embedding_settings_json,
        flags=embedding_flags,
    shell:
        "python {input.script:q} --source {input.source:q} --target {input.target:q}"
        " {params.flags} --source-name {wildcards.source} --target-name {wildcards.target}"
        " --threads {threads} --csv {output.csv:q} --json {output.json:q} > {log:q} 2>&1"


rule embedding_figures:
    input:
        script=workflow_script("embed_figures.py"),
        csvs=embedding_inputs("csv"),
        jsons=embedding_inputs("json"),
    output:
        scatters=expand(
            "results/embedding/{extractor}/{{source}}__{{target}}.png",
            extractor=embedding_extractors(),
        ),
        grid=report(
            "results/embedding/{source}__{target}.png",
            caption="../report/captions/embedding_grid.rst",
            category=REPORT_CATEGORIES["embedding"],
            labels={"comparison": "{source} -> {target}"},
        ),
    log:
        "logs/embedding/{source}__{target}.figures.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    shell:
        "python {input.script:q} --csvs {input.csvs:q} --jsons {input.jsons:q}"
        " --scatters {output.scatters:q} --grid {output.grid:q} > {log:q} 2>&1"
