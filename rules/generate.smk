# Stage 3: sample y' from the previous model for every SFT prompt, in shards. Paper scale: one job
# per shard, so an interrupted run keeps the shards that finished. Tiny world: one job writes every
# shard of an iteration (the same files, seeds and rows), since starting a job costs more there than
# sampling.


rule generate:
    input:
        model=lambda w: previous_model_dir(w.t),
        prompts="data/sft/train.jsonl",
    output:
        generate_outputs(),
    params:
        cfg=generate_params,
        command="generate-shards" if TINY else "generate",
        shard=lambda w: "" if TINY else f"--shard {w.k}",
    log:
        f"logs/generate/{GENERATE_JOB}.log",
    benchmark:
        f"results/benchmarks/generate_{GENERATE_JOB}.tsv"
    priority: CRITICAL_PATH
    threads: res("generate", "threads")
    resources:
        mem_mb=res("generate", "mem_mb"),
        runtime=res("generate", "runtime"),
        gpu=res("generate", "gpu"),
    conda:
        "../envs/generate.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli {params.command} --params {params.cfg:q}"
        " --model {input.model:q} --prompts {input.prompts:q} {params.shard}"
        " --iteration {wildcards.t} --out {output:q} 2>&1 | tee {log:q}"
