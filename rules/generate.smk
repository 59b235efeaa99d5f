# Datasets a rule writes (datasets.<name>.generator, datasets.<name>.probes): a generator's
# PNGs of a seed range, or the probes around a generated set's recorded bad seeds (seed 000
# §3.1), under results/generated/<name>/ with their latents file beside the folder. Only the
# latents file is an output (written last): Snakemake would empty an output folder before
# the job, and the scripts keep every PNG drawn with the same settings.


rule generate_dataset:
    input:
        script=workflow_script("generate_dataset.py"),
        network=lambda wildcards: GENERATED.network_inputs(wildcards.dataset),
    output:
        latents="results/generated/{dataset}_latents.h5",
    log:
        "logs/generate/{dataset}.log",
    wildcard_constraints:
        dataset=name_regex(GENERATED.generators),
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: GENERATED.mem_mb(wildcards.dataset, attempt),
        runtime=lambda wildcards, attempt: GENERATED.runtime_min(
            wildcards.dataset, attempt
        ),
        gpu=lambda wildcards: GENERATED.gpus(wildcards.dataset),
    params:
        images=dataset_images,
        settings=lambda wildcards: canonical_json(
            GENERATED.generate_settings(wildcards.dataset)
        ),
        flags=lambda wildcards: GENERATED.generate_flags(wildcards.dataset),
    shell:
        "python {input.script:q} --out {params.images:q} --latents {output.latents:q}"
        " --dataset-name {wildcards.dataset} {params.flags} --threads {threads}"
        " > {log:q} 2>&1"


rule probe_neighbourhood:
    input:
        script=workflow_script("probe_neighbourhood.py"),
        generated=lambda wildcards: GENERATED.latents(
            GENERATED.probes[wildcards.dataset]["of"]
        ),
        bad_seeds=lambda wildcards: GENERATED.probes[wildcards.dataset]["bad_seeds"],
        network=lambda wildcards: GENERATED.network_inputs(wildcards.dataset),
    output:
        latents="results/generated/{dataset}_latents.h5",
    log:
        "logs/generate/{dataset}.log",
    wildcard_constraints:
        dataset=name_regex(GENERATED.probes),
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: GENERATED.mem_mb(wildcards.dataset, attempt),
        runtime=lambda wildcards, attempt: GENERATED.runtime_min(
            wildcards.dataset, attempt
        ),
        gpu=lambda wildcards: GENERATED.gpus(wildcards.dataset),
    params:
        images=dataset_images,
        settings=lambda wildcards: canonical_json(
            GENERATED.generate_settings(wildcards.dataset)
        ),
        flags=lambda wildcards: GENERATED.probe_flags(wildcards.dataset),
    shell:
        "python {input.script:q} --out {params.images:q} --latents {output.latents:q}"
        " --dataset-name {wildcards.dataset} --generated-latents {input.generated:q}"
        " --bad-seeds {input.bad_seeds:q} {params.flags} --threads {threads} > {log:q} 2>&1"
