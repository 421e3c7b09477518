# Stage 3: sample y' from the previous model for every SFT prompt, in shards (one job each), so
# an interrupted run keeps the shards that finished.


rule generate:
    input:
        model=lambda w: previous_model_dir(w.t),
        prompts="data/sft/train.jsonl",
    output:
        names.generated_shard("{t}", "{k}", "{n}"),
    params:
        cfg=params_json(generate=CFG.generate),
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
        " --model {input.model:q} --prompts {input.prompts:q} --shard {wildcards.k}"
        " --iteration {wildcards.t} --out {output:q} 2>&1 | tee {log:q}"
