# The convergence study's extra chains (tiny world): SPIN repeated with other seeds (seed{r}/,
# same rules with shifted seeds, so the divergence curves get bands), and the SFT-continued
# control (sft_continued/iter{t}: the same number of steps as SPIN iteration t, on the human
# responses only). Outputs sit beside the main run's under a chain folder.


use rule generate as generate_chain with:
    input:
        model=lambda w: previous_model(w.t, w.chain),
        prompts="data/sft/train.jsonl",
    output:
        "data/generated/{chain}/iter{t}/shard{k}-of-{n}.parquet",
    params:
        cfg=lambda w: chain_params("generate", w.chain),
    log:
        "logs/generate/{chain}/iter{t}_shard{k}-of-{n}.log",
    benchmark:
        "results/benchmarks/generate_{chain}_iter{t}_shard{k}-of-{n}.tsv"


use rule reference as reference_chain with:
    input:
        pairs=pair_sources,
        model=lambda w: previous_model(w.t, w.chain),
    output:
        "data/pairs/{chain}/pairs_iter{t}.parquet",
    log:
        "logs/reference/{chain}/iter{t}.log",
    benchmark:
        "results/benchmarks/reference_{chain}_iter{t}.tsv"


use rule train as train_chain with:
    input:
        pairs="data/pairs/{chain}/pairs_iter{t}.parquet",
        init=lambda w: previous_model(w.t, w.chain),
    output:
        model=directory("models/{chain}/iter{t}"),
        metrics="results/train/{chain}/iter{t}/metrics.json",
    params:
        cfg=lambda w: chain_params("spin", w.chain),
        launcher=train_launcher(),
        checkpoints="work/train/{chain}/iter{t}",
    log:
        "logs/train/{chain}/iter{t}.log",
    benchmark:
        "results/benchmarks/train_{chain}_iter{t}.tsv"


rule sft_continued:
    input:
        train="data/sft/train.jsonl",
        init=lambda w: previous_model(w.t, CONTROL),
        match_steps="results/train/iter{t}/metrics.json",
    output:
        model=directory("models/sft_continued/iter{t}"),
        metrics="results/train/sft_continued/iter{t}/metrics.json",
    params:
        cfg=json.dumps({"spin": config["spin"], "convergence": {"control": CONV.get("control", {})}}, sort_keys=True),
    log:
        "logs/train/sft_continued/iter{t}.log",
    benchmark:
        "results/benchmarks/sft_continued_iter{t}.tsv"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli sft-continue --params {params.cfg:q}"
        " --train {input.train} --init {input.init} --match-steps {input.match_steps}"
        " --out {output.model} --checkpoints work/train/sft_continued/iter{wildcards.t}"
        " --metrics {output.metrics} 2>&1 | tee {log}"
