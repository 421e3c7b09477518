# Stage 2: the SFT model. Tiny world: train a tiny Llama to sft.start (saturated: early stopping on
# held-out SFT rows, the epoch and NLL recorded in its metrics.json; weak: one short run).
# Paper scale: materialise the published zephyr-7b-sft-full as models/sft. Tiny world: the same job
# then measures the model (held-out samples, exact KL, proxies: rules/common.smk, MEASURE_STEP).


rule sft:
    input:
        train="data/sft/train.jsonl",
        tokenizer="data/world/tokenizer" if TINY else [],
        pretrained=asset_input(CFG.sft.model, names.ASSET_MODEL),
        **MEASURE_INPUTS,
    output:
        model=directory(names.model_dir(names.SFT)),
        metrics=names.train_metrics(names.SFT),
        **sft_measure_outputs(names.SFT),
    params:
        cfg=params_json(sft=CFG.sft, spin=SFT_SPIN),
        tokenizer=lambda w, input: f"--tokenizer {shlex.quote(input.tokenizer)}" if TINY else "",
        checkpoints=names.train_checkpoints(names.SFT),
        **sft_measure_params(names.SFT),
    log:
        "logs/sft/sft.log",
    benchmark:
        "results/benchmarks/sft.tsv"
    priority: CRITICAL_PATH
    threads: res("sft", "threads")
    resources:
        mem_mb=res("sft", "mem_mb"),
        runtime=res("sft", "runtime"),
        gpu=res("sft", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        one_process(sft_steps())
