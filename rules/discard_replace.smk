# Seed 000 §3.2: discard / replace in w space (discard_replace.enabled). Per generated dataset:
# select the images closest to the pair file's bad examples and draw their replacements
# (extractor-independent). Per extractor: the replacements' features (the same extraction as
# every dataset), the five FIDs of seed 000's Table 2 against the training set, and the table.


rule discard_replace_select:
    input:
        script=workflow_script("discard_replace_select.py"),
        manifest="results/manifests/{generated}.tsv",
        latents=discard_replace_latents,
        pairs=discard_replace_pairs,
        pair_latents=discard_replace_pair_latents,
    output:
        replacements=directory("results/discard_replace/{generated}/replacements"),
        latents="results/discard_replace/{generated}/replacements_latents.h5",
        selection="results/discard_replace/{generated}/selection.csv",
        about="results/discard_replace/{generated}/selection.json",
        sheet=report(
            "results/discard_replace/{generated}/sheet.png",
            caption="../report/captions/discard_replace_sheet.rst",
            category=REPORT_CATEGORIES["discard_replace"],
            subcategory="Selected and replaced images",
        ),
    log:
        "logs/discard_replace/{generated}/select.log",
    wildcard_constraints:
        generated=DISCARD_REPLACE_WILDCARD,
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=discard_replace_select_mem_mb,
        runtime=discard_replace_select_runtime,
        gpu=discard_replace_select_gpus,
    params:
        images=lambda wildcards: dataset_path(wildcards.generated),
        settings=discard_replace_select_settings_json,
        flags=discard_replace_select_flags,
        pair_latents=discard_replace_pair_latents_flags,
    shell:
        "python {input.script:q} --images {params.images:q} --manifest {input.manifest:q}"
        " --latents {input.latents:q} --pairs {input.pairs:q} {params.pair_latents}"
        " --dataset-name {wildcards.generated} {params.flags} --threads {threads}"
        " --replacements {output.replacements:q} --replacement-latents {output.latents:q}"
        " --selection {output.selection:q} --about {output.about:q}"
        " --sheet {output.sheet:q} > {log:q} 2>&1"


# The replacements are a rule's output, so their extraction has no parse-time content digest:
# it reruns when the replacements are made again.
rule discard_replace_features:
    input:
        script=workflow_script("extract_features.py"),
        images="results/discard_replace/{generated}/replacements",
    output:
        "results/discard_replace/{generated}/features/{extractor}.h5",
    log:
        "logs/discard_replace/{generated}/features/{extractor}.log",
    wildcard_constraints:
        generated=DISCARD_REPLACE_WILDCARD,
    conda:
        "../envs/fidlens.yaml"
    threads: extractor_threads
    resources:
        mem_mb=replacement_extraction_mem_mb,
        runtime=replacement_extraction_runtime,
        gpu=extraction_gpus,
    params:
        settings=replacement_extraction_settings_json,
        weights_file=weights_file_state,
        flags=replacement_extraction_flags,
    shell:
        "python {input.script:q} --images {input.images:q} --extractor {wildcards.extractor}"
        " {params.flags} --cpus {threads} --dataset-name {wildcards.generated}_replacements"
        " --out {output:q} > {log:q} 2>&1"


rule discard_replace_fids:
    input:
        script=workflow_script("discard_replace_fids.py"),
        selection="results/discard_replace/{generated}/selection.csv",
        about="results/discard_replace/{generated}/selection.json",
        generated="results/features/{extractor}/{generated}.h5",
        train=discard_replace_train_cache,
        replacements="results/discard_replace/{generated}/features/{extractor}.h5",
    output:
        "results/discard_replace/{generated}/fids/{extractor}.json",
    log:
        "logs/discard_replace/{generated}/{extractor}.log",
    wildcard_constraints:
        generated=DISCARD_REPLACE_WILDCARD,
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=discard_replace_fids_mem_mb,
        runtime=discard_replace_fids_runtime,
    params:
        settings=discard_replace_fids_settings_json,
        flags=discard_replace_fids_flags,
    shell:
        "python {input.script:q} --selection {input.selection:q} --about {input.about:q}"
        " --generated {input.generated:q} --train {input.train:q}"
        " --replacements {input.replacements:q} --generated-name {wildcards.generated}"
        " {params.flags} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule discard_replace_table:
    input:
        script=workflow_script("discard_replace_table.py"),
        results=discard_replace_jsons,
    output:
        csv="results/tables/discard_replace_{extractor}.csv",
        markdown="results/tables/discard_replace_{extractor}.md",
    log:
        "logs/tables/discard_replace_{extractor}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --results {input.results:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} > {log:q} 2>&1"
