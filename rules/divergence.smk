# Stage 6: divergence to p_data per model. Held-out samples (both scales) feed the exact KL (tiny
# world, where log p_data is exact) and the paper-scale proxies; each is gathered into one CSV.


rule heldout_samples:
    input:
        model="models/{model}",
        test="data/sft/test.jsonl",
    output:
        "results/divergence/samples/{model}.parquet",
    params:
        cfg=params_json("divergence", "generate"),
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
        " --model {input.model} --test {input.test} --out {output} 2>&1 | tee {log}"


rule divergence_exact:
    input:
        model="models/{model}",
        world="data/world/world.json",
        samples="results/divergence/samples/{model}.parquet",
    output:
        "results/divergence/exact/{model}.csv",
    params:
        cfg=params_json("divergence"),
        iteration=lambda w: model_iteration(w.model),
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
        " --model {input.model} --world {input.world} --samples {input.samples}"
        " --name {wildcards.model} --iteration {params.iteration} --out {output} 2>&1 | tee {log}"


rule divergence_proxies:
    input:
        unpack(proxy_reference_inputs),
        model="models/{model}",
        samples="results/divergence/samples/{model}.parquet",
        test="data/sft/test.jsonl",
    output:
        "results/divergence/proxies/{model}.csv",
    params:
        cfg=params_json("divergence", "spin"),
        iteration=lambda w: model_iteration(w.model),
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
        " --model {input.model} --samples {input.samples} --test {input.test} {params.ref}"
        " --name {wildcards.model} --iteration {params.iteration} --out {output} 2>&1 | tee {log}"


rule divergence_table:
    input:
        expand("results/divergence/{{kind}}/{model}.csv", model=ALL_MODELS),
    output:
        "results/divergence/{kind}.csv",
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
        "python -m spin_core.cli gather --inputs {input} --out {output} 2>&1 | tee {log}"
