# The embedded demo's datasets: real faces split in two, and copies with generator-like defects.


rule make_demo_data:
    input:
        script=workflow_script("make_demo_data.py"),
    output:
        images=[directory(path) for path in demo_dataset_dirs()],
        about=os.path.join(DEMO["out_dir"], "demo.json"),
        readme=os.path.join(DEMO["out_dir"], "README.md"),
        pairs=demo_pairs_file(),
    log:
        "logs/demo/make_demo_data.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=canonical_json({k: v for k, v in DEMO.items() if k != "procedural"}),
        out_dir=lambda wildcards, output: os.path.dirname(output.about),
        size=DEMO["size"],
        seed=DEMO["seed"],
        generated=" ".join(
            f"{name}={value}" for name, value in DEMO["generated"].items()
        ),
    shell:
        "python {input.script:q} --out-dir {params.out_dir:q} --size {params.size}"
        " --seed {params.seed} --generated {params.generated}"
        " --pairs {output.pairs:q} > {log:q} 2>&1"


# The procedural demo generator's "training set" (its non-defective region) with per-image
# latent codes, for the discard / replace experiment; the demo's generated set is declared by
# its generator (datasets.gen_procedural.generator, rules/generate.smk).
if DEMO["procedural"]["enabled"]:

    rule make_procedural_demo:
        input:
            script=workflow_script("make_procedural_demo.py"),
        output:
            images=[directory(path) for path in procedural_demo_outputs()["folders"]],
            latents=procedural_demo_outputs()["latents"],
            about=procedural_demo_outputs()["about"][0],
        log:
            "logs/demo/make_procedural_demo.log",
        conda:
            "../envs/fidlens.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            settings=canonical_json(DEMO["procedural"]),
            out_dir=lambda wildcards, output: os.path.dirname(output.about),
            train=DEMO["procedural"]["train"],
            resolution=DEMO["procedural"]["resolution"],
            psi=DEMO["procedural"]["truncation_psi"],
        shell:
            "python {input.script:q} --out-dir {params.out_dir:q} --train {params.train}"
            " --resolution {params.resolution} --truncation-psi {params.psi} > {log:q} 2>&1"
