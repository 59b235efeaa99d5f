# The embedded demo's datasets: real faces split in two, and copies with generator-like defects.


rule make_demo_data:
    input:
        script=workflow_script("make_demo_data.py"),
    output:
        images=[directory(path) for path in demo_dataset_dirs()],
        about=os.path.join(DEMO["out_dir"], "demo.json"),
        readme=os.path.join(DEMO["out_dir"], "README.md"),
    log:
        "logs/demo/make_demo_data.log",
    conda:
        "../envs/fidlens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=canonical_json(DEMO),
        out_dir=lambda wildcards, output: os.path.dirname(output.about),
        size=DEMO["size"],
        seed=DEMO["seed"],
        generated=" ".join(
            f"{name}={value}" for name, value in DEMO["generated"].items()
        ),
    shell:
        "python {input.script:q} --out-dir {params.out_dir:q} --size {params.size}"
        " --seed {params.seed} --generated {params.generated} > {log:q} 2>&1"
