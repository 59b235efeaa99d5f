# Where FID looks (seed 000 §4.1): per gradient-capable extractor and comparison, every
# source image's Grad-CAM of FID and its exact influence on FID (the network runs again on the
# images; the FID gradient is closed-form), then pictures of them; the good/bad pairs of
# attention.pairs; per comparison the averaged maps of every extractor (seed 001 Fig. 2).


rule attention_maps:
    input:
        unpack(attention_statistics),
        script=workflow_script("attention_maps.py"),
        source="results/features/{extractor}/{source}.h5",
        target="results/features/{extractor}/{target}.h5",
    output:
        maps="results/attention/{extractor}/{source}__{target}/maps.h5",
        influence="results/attention/{extractor}/{source}__{target}/influence.csv",
    log:
        "logs/attention/{extractor}/{source}__{target}/maps.log",
    conda:
        "../envs/fidlens.yaml"
    threads: extractor_threads
    resources:
        mem_mb=attention_mem_mb,
        runtime=attention_runtime,
        gpu=extraction_gpus,
    params:
        images=attention_source_images,
        settings=attention_settings_json,
        weights_file=weights_file_state,
        flags=attention_flags,
        statistics=attention_statistics_flags,
    shell:
        "python {input.script:q} maps --extractor {wildcards.extractor} {params.flags}"
        " --source {wildcards.source} --source-cache {input.source:q}"
        " --images {params.images:q} --target {wildcards.target}"
        " --target-cache {input.target:q} {params.statistics} --cpus {threads}"
        " --out {output.maps:q} --influence {output.influence:q} > {log:q} 2>&1"


rule attention_plots:
    input:
        script=workflow_script("attention_plots.py"),
        maps="results/attention/{extractor}/{source}__{target}/maps.h5",
    output:
        heatmaps=directory("results/attention/{extractor}/{source}__{target}/heatmaps"),
        overlays=directory("results/attention/{extractor}/{source}__{target}/overlays"),
        average=report(
            "results/attention/{extractor}/{source}__{target}/average.png",
            caption="../report/captions/attention_average.rst",
            category=REPORT_CATEGORIES["attention"],
            subcategory="{source} -> {target}",
            labels={"extractor": "{extractor}", "figure": "averaged map"},
        ),
        sheet=report(
            "results/attention/{extractor}/{source}__{target}/sheet.png",
            caption="../report/captions/attention_sheet.rst",
            category=REPORT_CATEGORIES["attention"],
            subcategory="{source} -> {target}",
            labels={"extractor": "{extractor}", "figure": "heatmap sheet"},
        ),
        influence=report(
            "results/attention/{extractor}/{source}__{target}/influence.png",
            caption="../report/captions/attention_influence.rst",
            category=REPORT_CATEGORIES["attention"],
            subcategory="{source} -> {target}",
            labels={"extractor": "{extractor}", "figure": "FID influence"},
        ),
    log:
        "logs/attention/{extractor}/{source}__{target}/plots.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        images=attention_source_images,
        sample=ATTENTION["sample"],
        top_k=ATTENTION["top_k"],
    shell:
        "python {input.script:q} comparison --maps {input.maps:q} --images {params.images:q}"
        " --sample {params.sample} --top-k {params.top_k} --heatmaps {output.heatmaps:q}"
        " --overlays {output.overlays:q} --average {output.average:q}"
        " --sheet {output.sheet:q} --influence {output.influence:q} > {log:q} 2>&1"


rule attention_pairs:
    input:
        unpack(attention_statistics),
        script=workflow_script("attention_maps.py"),
        pairs=ATTENTION["pairs"] or [],
        source="results/features/{extractor}/{source}.h5",
        target="results/features/{extractor}/{target}.h5",
        good=attention_good_caches,
    output:
        maps="results/attention/{extractor}/{source}__{target}/pairs.h5",
        table="results/attention/{extractor}/{source}__{target}/pairs.csv",
    log:
        "logs/attention/{extractor}/{source}__{target}/pairs.log",
    conda:
        "../envs/fidlens.yaml"
    threads: extractor_threads
    resources:
        mem_mb=attention_mem_mb,
        runtime=attention_runtime,
        gpu=extraction_gpus,
    params:
        settings=attention_settings_json,
        weights_file=weights_file_state,
        flags=attention_flags,
        statistics=attention_statistics_flags,
        datasets=attention_pair_flags,
        good=attention_good_cache_flags,
    shell:
        "python {input.script:q} pairs --extractor {wildcards.extractor} {params.flags}"
        " --pairs {input.pairs:q} --source {wildcards.source}"
        " --source-cache {input.source:q} --target {wildcards.target}"
        " --target-cache {input.target:q} {params.statistics} {params.datasets}"
        " {params.good} --cpus {threads} --out {output.maps:q} --table {output.table:q} > {log:q} 2>&1"


rule attention_pair_sheet:
    input:
        script=workflow_script("attention_plots.py"),
        pairs="results/attention/{extractor}/{source}__{target}/pairs.h5",
    output:
        report(
            "results/attention/{extractor}/{source}__{target}/pairs.png",
            caption="../report/captions/attention_pairs.rst",
            category=REPORT_CATEGORIES["attention"],
            subcategory="{source} -> {target}",
            labels={"extractor": "{extractor}", "figure": "good/bad pairs"},
        ),
    log:
        "logs/attention/{extractor}/{source}__{target}/pair_sheet.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        datasets=attention_pair_flags,
    shell:
        "python {input.script:q} pairs --pairs {input.pairs:q} {params.datasets}"
        " --out {output:q} > {log:q} 2>&1"


rule attention_figure:
    input:
        script=workflow_script("attention_plots.py"),
        maps=attention_figure_maps,
    output:
        report(
            "results/attention/{source}__{target}.png",
            caption="../report/captions/attention_figure.rst",
            category=REPORT_CATEGORIES["attention"],
            subcategory="{source} -> {target}",
            labels={"extractor": "all", "figure": "averaged maps, every extractor"},
        ),
    log:
        "logs/attention/{source}__{target}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        images=attention_source_images,
    shell:
        "python {input.script:q} figure --maps {input.maps:q} --images {params.images:q}"
        " --out {output:q} > {log:q} 2>&1"
