# Stage 5: one SPIN iteration. Starts from the previous model, trains on the scored pairs.
# With spin.gpus > 1 it runs under `accelerate launch` (DeepSpeed ZeRO-3 at paper scale).
# Checkpoints go to work/train/iter{t}/ (not a declared output), so a killed job resumes from them;
# they stay until the next iteration starts (its input, this model, is then accepted) or the run
# succeeds (onsuccess), so a job Snakemake rejected after it finished resumes at its last step.


rule train:
    input:
        pairs=names.pairs_file("{t}"),
        init=lambda w: previous_model_dir(w.t),
    output:
        model=directory(names.model_dir(names.model_name("{t}"))),
        metrics=names.train_metrics(names.model_name("{t}")),
    params:
        cfg=spin_params,
        launcher=train_launcher(),
        checkpoints=names.train_checkpoints(names.model_name("{t}")),
        release=lambda w: names.train_checkpoints(names.previous_model(names.model_name(w.t))),
    log:
        "logs/train/iter{t}.log",
    benchmark:
        "results/benchmarks/train_iter{t}.tsv"
    priority: CRITICAL_PATH
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} train --params {params.cfg:q}"
        " --pairs {input.pairs:q} --init {input.init:q} --out {output.model:q}"
        " --checkpoints {params.checkpoints:q} --release-checkpoints {params.release:q}"
        " --metrics {output.metrics:q} 2>&1 | tee {log:q}"
