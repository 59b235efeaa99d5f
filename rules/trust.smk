# Trust checks (fidlens.trust): per (source, reference), the byte-identical images (sha1, from
# the manifests), each source image's nearest reference image in every extractor's feature
# space, the near-identical ones and a memorisation sheet; per comparison, FD∞ beside FID with
# the sample-size warnings; a study-wide table of each under results/trust/.


rule trust_overlap:
    input:
        script=workflow_script("trust_overlap.py"),
        source_manifest="results/manifests/{source}.tsv",
        reference_manifest="results/manifests/{reference}.tsv",
        sources=lambda wildcards: [
            f"results/features/{name}/{wildcards.source}.h5"
            for name in TRUST.trust_extractors()
        ],
        references=lambda wildcards: [
            f"results/features/{name}/{wildcards.reference}.h5"
            for name in TRUST.trust_extractors()
        ],
    output:
        csv="results/trust/{source}__{reference}/overlap.csv",
        neighbours="results/trust/{source}__{reference}/neighbours.csv",
        json="results/trust/{source}__{reference}/overlap.json",
        sheet=report(
            "results/trust/{source}__{reference}/memorisation.png",
            caption="../report/captions/memorisation.rst",
            category=REPORT_CATEGORIES["trust"],
            subcategory="Memorisation sheets",
            labels={"pair": "{source} vs {reference}"},
        ),
    log:
        "logs/trust/{source}__{reference}.log",
    wildcard_constraints:
        reference=name_regex(DATASETS),
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=trust_plan.neighbours_mem_mb,
        runtime=trust_plan.neighbours_runtime,
    params:
        settings=canonical_json(TRUST.overlap_settings()),
        flags=trust_plan.flags(
            TRUST.overlap_settings(),
            ["extractors", "layers", "normalize", "seed", "selection"],
        ),
        ratio=TRUST.trust["near_ratio"],
        images=TRUST.trust["sheet"]["images"],
        source_images=lambda wildcards: dataset_path(wildcards.source),
        reference_images=lambda wildcards: dataset_path(wildcards.reference),
        hidden=lambda wildcards: " ".join(
            flag
            for flag, name in (
                ("--source-hidden", wildcards.source),
                ("--reference-hidden", wildcards.reference),
            )
            if dataset_include_hidden(name)
        ),
    shell:
        "python {input.script:q} --source-manifest {input.source_manifest:q}"
        " --reference-manifest {input.reference_manifest:q} --source-caches {input.sources:q}"
        " --reference-caches {input.references:q} {params.flags} --ratio {params.ratio}"
        " --sheet-images {params.images} --source-images {params.source_images:q}"
        " --reference-images {params.reference_images:q} {params.hidden}"
        " --source-name {wildcards.source} --reference-name {wildcards.reference}"
        " --threads {threads} --csv {output.csv:q} --neighbours {output.neighbours:q}"
        " --json {output.json:q} --sheet {output.sheet:q} > {log:q} 2>&1"


rule fd_infinity:
    input:
        script=workflow_script("fd_infinity.py"),
        sources=lambda wildcards: [
            f"results/features/{name}/{wildcards.source}.h5"
            for name in TRUST.fd_extractors(wildcards.target)
        ],
        targets=lambda wildcards: [
            f"results/features/{name}/{wildcards.target}.h5"
            for name in TRUST.fd_extractors(wildcards.target)
        ],
    output:
        "results/trust/fd_infinity/{source}__{target}.json",
    log:
        "logs/trust/fd_infinity/{source}__{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=trust_plan.fd_mem_mb,
        runtime=trust_plan.fd_runtime,
    params:
        settings=lambda wildcards: canonical_json(TRUST.fd_settings(wildcards.target)),
        flags=lambda wildcards: trust_plan.flags(
            TRUST.fd_settings(wildcards.target),
            ["extractors", "layers", "points", "min_fraction", "seed", "size_ratio"],
        ),
    shell:
        "python {input.script:q} --sources {input.sources:q} --targets {input.targets:q}"
        " {params.flags} --source-name {wildcards.source} --target-name {wildcards.target}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"


rule fd_infinity_statistics:
    input:
        script=workflow_script("fd_infinity.py"),
        sources=lambda wildcards: [
            f"results/features/{name}/{wildcards.source}.h5"
            for name in TRUST.fd_extractors(wildcards.stats_target)
        ],
        targets=lambda wildcards: [
            trust_plan.imported_statistics_path(name, wildcards.stats_target)
            for name in TRUST.fd_extractors(wildcards.stats_target)
        ],
    output:
        "results/trust/fd_infinity/{source}__{stats_target}.json",
    log:
        "logs/trust/fd_infinity/{source}__{stats_target}.log",
    wildcard_constraints:
        stats_target=name_regex(TRUST.targets()),
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=trust_plan.fd_mem_mb,
        runtime=trust_plan.fd_runtime,
    params:
        settings=lambda wildcards: canonical_json(
            TRUST.fd_settings(wildcards.stats_target)
        ),
        flags=lambda wildcards: trust_plan.flags(
            TRUST.fd_settings(wildcards.stats_target),
            ["extractors", "layers", "points", "min_fraction", "seed", "size_ratio"],
        ),
    shell:
        "python {input.script:q} --sources {input.sources:q}"
        " --target-statistics {input.targets:q} {params.flags}"
        " --source-name {wildcards.source} --target-name {wildcards.stats_target}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"


rule overlap_table:
    input:
        script=workflow_script("trust_tables.py"),
        overlaps=[
            trust_plan.pair_path(source, reference, "overlap.json")
            for source, reference in TRUST.trust_pairs()
        ],
    output:
        csv="results/trust/overlap.csv",
        markdown="results/trust/overlap.md",
    log:
        "logs/trust/overlap_table.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --kind overlap --inputs {input.overlaps:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"


rule sample_size_table:
    input:
        script=workflow_script("trust_tables.py"),
        results=TRUST.fd_infinity_jsons(),
    output:
        csv="results/trust/sample_size.csv",
        markdown="results/trust/sample_size.md",
    log:
        "logs/trust/sample_size_table.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --kind sample_size --inputs {input.results:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"
