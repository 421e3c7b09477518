# The convergence study's extra chains (tiny world): SPIN repeated with other seeds (seed{r}/, same
# rules with shifted seeds, each chain from its own SFT model seed{r}/sft: its init and data order
# shift too, so the divergence curves' bands include the SFT model), and the SFT-continued
# control (sft_continued/iter{t}: the same number of steps as SPIN iteration t, on the human
# responses only). Outputs sit beside the main run's under a chain folder.


use rule sft as sft_chain with:
    output:
        model=directory(names.model_dir(f"{{chain}}/{names.SFT}")),
        metrics=names.train_metrics(f"{{chain}}/{names.SFT}"),
    params:
        cfg=lambda w: params_json(sft=for_chain(CFG.sft, w.chain), spin=SFT_SPIN),
        tokenizer=lambda w, input: f"--tokenizer {shlex.quote(input.tokenizer)}" if TINY else "",
        checkpoints=lambda w: names.train_checkpoints(names.sft_model(w.chain)),
    log:
        "logs/sft/{chain}/sft.log",
    benchmark:
        "results/benchmarks/sft_{chain}.tsv"


use rule generate as generate_chain with:
    input:
        model=lambda w: previous_model_dir(w.t, w.chain),
        prompts="data/sft/train.jsonl",
    output:
        generate_outputs("{chain}"),
    params:
        cfg=generate_params,
        command="generate-shards" if TINY else "generate",
        shard=lambda w: "" if TINY else f"--shard {w.k}",
    log:
        f"logs/generate/{{chain}}/{GENERATE_JOB}.log",
    benchmark:
        f"results/benchmarks/generate_{{chain}}_{GENERATE_JOB}.tsv"


use rule reference as reference_chain with:
    input:
        pairs=pair_sources,
        model=lambda w: previous_model_dir(w.t, w.chain),
    output:
        names.pairs_file("{t}", "{chain}"),
    log:
        "logs/reference/{chain}/iter{t}.log",
    benchmark:
        "results/benchmarks/reference_{chain}_iter{t}.tsv"


use rule train as train_chain with:
    input:
        pairs=names.pairs_file("{t}", "{chain}"),
        init=lambda w: previous_model_dir(w.t, w.chain),
    output:
        model=directory(names.model_dir(names.model_name("{t}", "{chain}"))),
        metrics=names.train_metrics(names.model_name("{t}", "{chain}")),
    params:
        cfg=spin_params,
        launcher=train_launcher(),
        checkpoints=names.train_checkpoints(names.model_name("{t}", "{chain}")),
        release=lambda w: names.train_checkpoints(names.previous_model(names.model_name(w.t, w.chain))),
    log:
        "logs/train/{chain}/iter{t}.log",
    benchmark:
        "results/benchmarks/train_{chain}_iter{t}.tsv"


rule sft_continued:
    input:
        train="data/sft/train.jsonl",
        init=lambda w: previous_model_dir(w.t, names.CONTROL),
        match_steps=names.train_metrics(names.model_name("{t}")),
    output:
        model=directory(names.model_dir(names.model_name("{t}", names.CONTROL))),
        metrics=names.train_metrics(names.model_name("{t}", names.CONTROL)),
    params:
        cfg=lambda w: params_json(spin=CFG.spin.for_iteration(int(w.t)), control=CFG.convergence.control),
        checkpoints=names.train_checkpoints(names.model_name("{t}", names.CONTROL)),
    log:
        f"logs/train/{names.CONTROL}/iter{{t}}.log",
    benchmark:
        f"results/benchmarks/{names.CONTROL}_iter{{t}}.tsv"
    priority: CRITICAL_PATH
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli sft-continue --params {params.cfg:q}"
        " --train {input.train:q} --init {input.init:q} --match-steps {input.match_steps:q}"
        " --out {output.model:q} --checkpoints {params.checkpoints:q}"
        " --metrics {output.metrics:q} 2>&1 | tee {log:q}"
