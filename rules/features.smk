# Every dataset is listed once (manifest) and decoded once per extractor (feature cache).


# The manifest reruns when the images' content changes (dataset_content), never for their
# mtimes or other files; the dataset's caches follow the manifest.
rule manifest:
    input:
        script=workflow_script("make_manifest.py"),
        demo_images=demo_dataset_input,
    output:
        "results/manifests/{dataset}.tsv",
    log:
        "logs/features/manifest/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        images=dataset_images,
        content=dataset_content,
        listing=listing_flags,
    shell:
        "python {input.script:q} --images {params.images:q} {params.listing}"
        " --dataset-name {wildcards.dataset} --out {output:q} > {log:q} 2>&1"


rule extract_features:
    input:
        script=workflow_script("extract_features.py"),
        manifest="results/manifests/{dataset}.tsv",
    output:
        "results/features/{extractor}/{dataset}.h5",
    log:
        "logs/features/{extractor}/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: extractor_threads
    resources:
        mem_mb=extraction_mem_mb,
        runtime=extraction_runtime,
        gpu=extraction_gpus,
    params:
        images=dataset_images,
        listing=listing_flags,
        settings=extraction_settings_json,
        weights_file=weights_file_state,
        flags=extraction_flags,
    shell:
        "python {input.script:q} --images {params.images:q} --manifest {input.manifest:q}"
        " {params.listing} --extractor {wildcards.extractor} {params.flags} --cpus {threads}"
        " --dataset-name {wildcards.dataset} --out {output:q} > {log:q} 2>&1"
