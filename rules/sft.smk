# Stage 2 at the paper scale: the SFT model (materialise the published zephyr-7b-sft-full as models/sft,
# or fine-tune sft.model on the SFT rows). The tiny world makes its SFT models in the job of their SPIN
# chain (rules/spin_chain.smk): a tiny Llama trained to sft.start (saturated: early stopping on held-out
# SFT rows, the epoch and NLL recorded in its metrics.json; weak: one short run), then measured.


rule sft:
    input:
        train="data/sft/train.jsonl",
        pretrained=asset_input(CFG.sft.model, names.ASSET_MODEL),
    output:
        model=directory(names.model_dir(names.SFT)),
        metrics=names.train_metrics(names.SFT),
    params:
        cfg=params_json(sft=CFG.sft, spin=SFT_SPIN),
        checkpoints=names.train_checkpoints(names.SFT),
        # Empty here (the tiny world's SFT step, rules/common.smk chain_steps, passes --tokenizer); kept so
        # that the shell text is the one finished paper-scale runs recorded (a changed text reruns the job).
        tokenizer=lambda w, input: "",
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
        "OMP_NUM_THREADS={threads} python -m spin_core.cli sft --params {params.cfg:q}"
        " --train {input.train:q} {params.tokenizer} --out {output.model:q}"
        " --checkpoints {params.checkpoints:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"
