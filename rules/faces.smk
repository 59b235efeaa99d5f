# Face-detection rate: per compared dataset, the share of images where dlib's HOG detector and
# MTCNN find a face (a second opinion on a generator's faces), and one table over datasets.


rule detect_faces:
    input:
        script=workflow_script("detect_faces.py"),
        manifest="results/manifests/{dataset}.tsv",
    output:
        json="results/faces/{dataset}.json",
        csv="results/faces/{dataset}.csv",
    log:
        "logs/faces/{dataset}.log",
    conda:
        "../envs/fidlens.yaml"
    threads: FACES["threads"]
    resources:
        mem_mb=2000,
        runtime=face_runtime,
    params:
        images=dataset_images,
        listing=listing_flags,
        settings=face_settings_json,
        flags=face_flags,
    shell:
        "python {input.script:q} --images {params.images:q} --manifest {input.manifest:q}"
        " {params.listing} --dataset-name {wildcards.dataset} {params.flags}"
        " --workers {threads} --json {output.json:q} --csv {output.csv:q} > {log:q} 2>&1"


rule face_table:
    input:
        script=workflow_script("face_table.py"),
        summaries=all_face_jsons(),
    output:
        csv="results/tables/face_detection.csv",
        markdown="results/tables/face_detection.md",
    log:
        "logs/tables/face_table.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python {input.script:q} --summaries {input.summaries:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} > {log:q} 2>&1"
