# Every dataset is listed once (manifest) and decoded once per extractor (feature cache).


rule manifest:
    input:
        script=workflow_script("make_manifest.py"),
        images=dataset_images,
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
        fingerprint=dataset_fingerprint,
    shell:
        "python {input.script} --images {input.images:q}"
        " --dataset-name {wildcards.dataset} --out {output} > {log} 2>&1"


rule extract_features:
    input:
        script=workflow_script("extract_features.py"),
        images=dataset_images,
        manifest="results/manifests/{dataset}.tsv",
    output:
        "results/features/{extractor}/{dataset}.h5",
    log:
        "logs/features/{extractor}/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: extractor_threads
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        settings=extraction_settings_json,
        fingerprint=dataset_fingerprint,
        weights_file=weights_file_state,
        flags=extraction_flags,
    shell:
        "python {input.script} --images {input.images:q} --extractor {wildcards.extractor}"
        " {params.flags} --workers {threads} --threads {threads}"
        " --dataset-name {wildcards.dataset} --out {output} > {log} 2>&1"
