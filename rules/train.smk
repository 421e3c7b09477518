# Stage 5: one SPIN iteration. Starts from the previous model, trains on the scored pairs.
# With spin.gpus > 1 it runs under `accelerate launch` (DeepSpeed ZeRO-3 at paper scale).
# Checkpoints go to work/train/iter{t}/ (not a declared output), so a killed job resumes from them.


rule train:
    input:
        pairs="data/pairs/pairs_iter{t}.parquet",
        init=lambda w: previous_model(w.t),
    output:
        model=directory("models/iter{t}"),
        metrics="results/train/iter{t}/metrics.json",
    params:
        cfg=params_json("spin"),
        launcher=train_launcher(),
        checkpoints="work/train/iter{t}",
    log:
        "logs/train/iter{t}.log",
    benchmark:
        "results/benchmarks/train_iter{t}.tsv"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} train --params {params.cfg:q}"
        " --pairs {input.pairs} --init {input.init} --out {output.model}"
        " --checkpoints {params.checkpoints} --metrics {output.metrics} 2>&1 | tee {log}"
