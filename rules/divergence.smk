# Stage 6: divergence to p_data per model. Held-out samples (both scales) feed the exact KL (tiny
# world, where log p_data is exact) and the paper-scale proxies; each is gathered into one CSV.


rule heldout_samples:
    input:
        model=names.model_dir("{model}"),
        test="data/sft/test.jsonl",
    output:
        names.heldout_samples("{model}"),
    params:
        cfg=params_json(divergence=CFG.divergence, generate=CFG.generate),
    log:
        "logs/divergence/samples/{model}.log",
    benchmark:
        "results/benchmarks/heldout_samples/{model}.tsv"
    threads: res("divergence", "threads")
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
        gpu=res("divergence", "gpu"),
    conda:
        "../envs/generate.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli heldout-samples --params {params.cfg:q}"
        " --model {input.model:q} --test {input.test:q} --out {output:q} 2>&1 | tee {log:q}"


rule divergence_exact:
    input:
        model=names.model_dir("{model}"),
        world="data/world/world.json",
        samples=names.heldout_samples("{model}"),
    output:
        names.divergence_rows("exact", "{model}"),
    params:
        cfg=params_json(divergence=CFG.divergence),
    log:
        "logs/divergence/exact/{model}.log",
    benchmark:
        "results/benchmarks/divergence/{model}.tsv"
    threads: res("divergence", "threads")
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli divergence --params {params.cfg:q}"
        " --model {input.model:q} --world {input.world:q} --samples {input.samples:q}"
        " --name {wildcards.model:q} --out {output:q} 2>&1 | tee {log:q}"


rule divergence_proxies:
    input:
        unpack(proxy_reference_inputs),
        model=names.model_dir("{model}"),
        samples=names.heldout_samples("{model}"),
        test="data/sft/test.jsonl",
    output:
        names.divergence_rows("proxies", "{model}"),
    params:
        cfg=params_json(divergence=CFG.divergence, spin=CFG.spin),
        ref=proxy_reference_args,
    log:
        "logs/divergence/proxies/{model}.log",
    benchmark:
        "results/benchmarks/proxies/{model}.tsv"
    threads: res("divergence", "threads")
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
        gpu=res("divergence", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli proxies --params {params.cfg:q}"
        " --model {input.model:q} --samples {input.samples:q} --test {input.test:q} {params.ref}"
        " --name {wildcards.model:q} --out {output:q} 2>&1 | tee {log:q}"


rule divergence_table:
    input:
        expand(names.divergence_rows("{{kind}}", "{model}"), model=ALL_MODELS),
    output:
        names.divergence_table("{kind}"),
    wildcard_constraints:
        kind="exact|proxies",
    log:
        "logs/divergence/{kind}_table.log",
    threads: 1
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m spin_core.cli gather --inputs {input:q} --out {output:q} 2>&1 | tee {log:q}"
