# Numbers in and out of other tools and machines (fidlens.interop, fidlens.stats_io):
# statistics exported in pytorch-fid's and clean-fid's formats (from the per-dataset statistics
# files), targets given only as statistics (imported, checked, compared by FID alone), and
# shared feature caches made elsewhere (checked, then used instead of an extraction).


rule export_pytorch_fid:
    input:
        script=workflow_script("export_statistics.py"),
        statistics="results/statistics/{extractor}/{dataset}.h5",
    output:
        "results/statistics/export/{extractor}/{dataset}.pytorch-fid.npz",
    log:
        "logs/interop/export/{extractor}/{dataset}.pytorch-fid.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python {input.script:q} --statistics {input.statistics:q} --format pytorch-fid"
        " --name {wildcards.dataset} --out {output:q} > {log:q} 2>&1"


# One rule per clean-fid export (no wildcards): its files are named as clean-fid names them,
# `<dataset>_<mode>[_<model>]_custom_na.npz` and `..._kid.npz` (fidlens.trust_plan).
for _extractor, _dataset, _statistics, _kid in TRUST.clean_fid_exports(TRUST.modes):

    rule:
        name:
            re.sub(r"\W", "_", f"export_clean_fid_{_extractor}_{_dataset}")
        input:
            script=workflow_script("export_statistics.py"),
            statistics=f"results/statistics/{_extractor}/{_dataset}.h5",
            cache=f"results/features/{_extractor}/{_dataset}.h5",
        output:
            statistics=_statistics,
            kid=_kid,
        log:
            f"logs/interop/export/{_extractor}/{_dataset}.clean-fid.log",
        conda:
            "../envs/fidlens.yaml"
        threads: 1
        resources:
            mem_mb=trust_plan.copy_mem_mb,
            runtime=10,
        params:
            folder=lambda wildcards, output: os.path.dirname(output.statistics),
            name=_dataset,
        shell:
            "python {input.script:q} --statistics {input.statistics:q} --cache {input.cache:q}"
            " --format clean-fid --name {params.name} --out {params.folder:q} > {log:q} 2>&1"


rule import_statistics:
    input:
        script=workflow_script("import_statistics.py"),
        file=lambda wildcards: TRUST.target_file(
            wildcards.stats_target, wildcards.extractor
        )["path"],
    output:
        "results/statistics/imported/{extractor}/{stats_target}.h5",
    log:
        "logs/interop/import_statistics/{extractor}/{stats_target}.log",
    wildcard_constraints:
        stats_target=name_regex(TRUST.targets()),
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        format=lambda wildcards: TRUST.target_file(
            wildcards.stats_target, wildcards.extractor
        )["format"],
        layer=statistics_layer,
        settings=lambda wildcards: canonical_json(
            TRUST.instance_settings(
                wildcards.extractor, extractor_own_settings(wildcards.extractor)
            )
        ),
        weights_file=weights_file_state,
        flags=lambda wildcards: TRUST.instance_flags(
            wildcards.extractor, extractor_own_settings(wildcards.extractor)
        ),
    shell:
        "python {input.script:q} --file {input.file:q} --format {params.format}"
        " --instance {wildcards.extractor} {params.flags} --layer {params.layer}"
        " --name {wildcards.stats_target} --out {output:q} > {log:q} 2>&1"


rule statistics_metrics:
    input:
        script=workflow_script("statistics_metrics.py"),
        source="results/features/{extractor}/{source}.h5",
        target="results/statistics/imported/{extractor}/{stats_target}.h5",
    output:
        "results/metrics/{extractor}/{source}__{stats_target}.json",
    log:
        "logs/metrics/{extractor}/{source}__{stats_target}.log",
    wildcard_constraints:
        stats_target=name_regex(TRUST.targets()),
    conda:
        "../envs/fidlens.yaml"
    threads: 2
    resources:
        mem_mb=trust_plan.fd_mem_mb,
        runtime=10,
    params:
        settings=metric_settings_json,
        metrics=lambda wildcards: ",".join(config["metrics"]["names"]),
        normalize=config["metrics"]["normalize"],
        layer=statistics_layer,
        mixed="--allow-mixed" if config["metrics"]["allow_mixed"] else "",
    shell:
        "python {input.script:q} --source {input.source:q} --target-statistics {input.target:q}"
        " --metrics {params.metrics} --normalize {params.normalize} --layer {params.layer}"
        " {params.mixed} --source-name {wildcards.source} --target-name {wildcards.stats_target}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"


# One rule per shared cache (no wildcards, so Snakemake prefers it to extract_features for
# that one file): checked against this configuration and this machine's manifest, then copied.
for _extractor, _dataset, _path in TRUST.shared_caches():

    rule:
        name:
            re.sub(r"\W", "_", f"import_cache_{_extractor}_{_dataset}")
        input:
            script=workflow_script("import_cache.py"),
            cache=_path,
            manifest=f"results/manifests/{_dataset}.tsv",
        output:
            f"results/features/{_extractor}/{_dataset}.h5",
        log:
            f"logs/interop/import_cache/{_extractor}/{_dataset}.log",
        conda:
            "../envs/fidlens.yaml"
        threads: 1
        resources:
            mem_mb=trust_plan.copy_mem_mb,
            runtime=30,
        params:
            settings=canonical_json(
                TRUST.instance_settings(_extractor, extractor_own_settings(_extractor))
                | {"resolution": dataset_resolution(_dataset)}
            ),
            flags=TRUST.instance_flags(_extractor, extractor_own_settings(_extractor)),
            resolution=dataset_resolution(_dataset) or "native",
            instance=_extractor,
        shell:
            "python {input.script:q} --cache {input.cache:q} --manifest {input.manifest:q}"
            " --instance {params.instance} {params.flags} --resolution {params.resolution}"
            " --out {output:q} > {log:q} 2>&1"
