# Stage 3: sample y' from the previous model for every SFT prompt, in shards (one job each), so
# an interrupted run keeps the shards that finished.


rule generate:
    input:
        model=lambda w: previous_model(w.t),
        prompts="data/sft/train.jsonl",
    output:
        "data/generated/iter{t}/shard{k}-of-{n}.parquet",
    params:
        cfg=params_json("generate"),
    log:
        "logs/generate/iter{t}_shard{k}-of-{n}.log",
    benchmark:
        "results/benchmarks/generate_iter{t}_shard{k}-of-{n}.tsv"
    threads: res("generate", "threads")
    resources:
        mem_mb=res("generate", "mem_mb"),
        runtime=res("generate", "runtime"),
        gpu=res("generate", "gpu"),
    conda:
        "../envs/generate.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli generate --params {params.cfg:q}"
        " --model {input.model} --prompts {input.prompts} --shard {wildcards.k}"
        " --iteration {wildcards.t} --out {output} 2>&1 | tee {log}"
