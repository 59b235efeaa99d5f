# Seed 000 §3.1's inspection loop (inspection.enabled): contact sheets of a generated set's
# first seeds for a person to scan, sheets of the probes around the bad seeds they recorded,
# their good/bad pair file converted to the pair-file schema (which discard / replace and the
# attention pair sheets read), and seed 000's Table 1.


rule sample_sheets:
    input:
        script=workflow_script("inspection_sheets.py"),
        latents="results/generated/{dataset}_latents.h5",
    output:
        report(
            directory("results/inspection/{dataset}/samples"),
            patterns=["{name}.png"],
            caption="../report/captions/inspection_samples.rst",
            category=REPORT_CATEGORIES["inspection"],
            subcategory="Inspection: sample sheets",
            labels={"dataset": "{dataset}", "sheet": "{name}"},
        ),
    log:
        "logs/inspection/{dataset}/samples.log",
    wildcard_constraints:
        dataset=name_regex(GENERATED.entries),
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wildcards, attempt: attempt
        * (10 + GENERATED.sheets["first"] // 2000),
    params:
        images=dataset_images,
        first=GENERATED.sheets["first"],
        per_page=GENERATED.sheets["per_page"],
        columns=GENERATED.sheets["columns"],
    shell:
        "python {input.script:q} samples --latents {input.latents:q} --images {params.images:q}"
        " --out {output:q} --dataset-name {wildcards.dataset} --first {params.first}"
        " --per-page {params.per_page} --columns {params.columns} > {log:q} 2>&1"


rule probe_sheets:
    input:
        script=workflow_script("inspection_sheets.py"),
        latents="results/generated/{dataset}_latents.h5",
    output:
        report(
            directory("results/inspection/{dataset}/probes"),
            patterns=["{name}.png"],
            caption="../report/captions/inspection_probes.rst",
            category=REPORT_CATEGORIES["inspection"],
            subcategory="Inspection: probe sheets",
            labels={"dataset": "{dataset}", "sheet": "{name}"},
        ),
    log:
        "logs/inspection/{dataset}/probes.log",
    wildcard_constraints:
        dataset=name_regex(GENERATED.probes),
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wildcards, attempt: attempt
        * (10 + GENERATED.size(wildcards.dataset) // 2000),
    params:
        images=dataset_images,
        columns=GENERATED.sheets["columns"],
    shell:
        "python {input.script:q} probes --latents {input.latents:q} --images {params.images:q}"
        " --out {output:q} --dataset-name {wildcards.dataset} --columns {params.columns}"
        " > {log:q} 2>&1"


rule inspection_pairs:
    input:
        unpack(lambda wildcards: GENERATED.pair_inputs(wildcards.dataset)),
        script=workflow_script("inspection_pairs.py"),
    output:
        csv="results/inspection/{dataset}/pairs.csv",
        about="results/inspection/{dataset}/pairs.json",
    log:
        "logs/inspection/{dataset}/pairs.log",
    wildcard_constraints:
        dataset=name_regex(GENERATED.with_pairs()),
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=lambda wildcards: GENERATED.pair_settings_json(wildcards.dataset),
        flags=lambda wildcards: GENERATED.pair_flags(wildcards.dataset),
        probes=lambda wildcards, input: (
            f"--probes-latents {shlex.quote(input.probes)}"
            if "probes" in input.keys()
            else ""
        ),
    shell:
        "python {input.script:q} --pairs {input.pairs:q} --generated-name {wildcards.dataset}"
        " --generated-latents {input.generated:q} {params.probes} {params.flags}"
        " --out-csv {output.csv:q} --out-json {output.about:q} > {log:q} 2>&1"


rule inspection_table:
    input:
        script=workflow_script("inspection_table.py"),
        pairs=[GENERATED.pairs_json(name) for name in GENERATED.with_pairs()],
    output:
        csv="results/tables/inspection_pairs.csv",
        markdown="results/tables/inspection_pairs.md",
    log:
        "logs/tables/inspection_pairs.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --pairs-json {input.pairs:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} > {log:q} 2>&1"
