# The convergence study's extra chains (tiny world): SPIN repeated with other seeds (seed{r}/, same
# rules with shifted seeds, each chain from its own SFT model seed{r}/sft: its init and data order
# shift too, so the divergence curves' bands include the SFT model), and the SFT-continued
# control (sft_continued/iter{t}: the same number of steps as SPIN iteration t, on the human
# responses only). Outputs sit beside the main run's under a chain folder.


use rule sft as sft_chain with:
    output:
        model=directory(names.model_dir(f"{{chain}}/{names.SFT}")),
        metrics=names.train_metrics(f"{{chain}}/{names.SFT}"),
        **measure_outputs(f"{{chain}}/{names.SFT}"),
    params:
        cfg=lambda w: params_json(sft=for_chain(CFG.sft, w.chain), spin=SFT_SPIN),
        tokenizer=lambda w, input: f"--tokenizer {shlex.quote(input.tokenizer)}",
        checkpoints=lambda w: names.train_checkpoints(names.sft_model(w.chain)),
        measure=lambda w: measure_params(names.sft_model(w.chain)),
        name=lambda w: names.sft_model(w.chain),
        ref="",
    log:
        "logs/sft/{chain}/sft.log",
    benchmark:
        "results/benchmarks/sft_{chain}.tsv"


use rule iteration as iteration_chain with:
    output:
        **iteration_outputs("{chain}"),
    params:
        generate=generate_params,
        reference=reference_params,
        train=spin_params,
        measure=lambda w: measure_params(names.model_name(w.t, w.chain)),
        name=lambda w: names.model_name(w.t, w.chain),
        launcher=train_launcher(),
        checkpoints=names.train_checkpoints(names.model_name("{t}", "{chain}")),
        release=lambda w: names.train_checkpoints(names.previous_model(names.model_name(w.t, w.chain))),
        pairs=lambda w, input, output: shlex.join([*input.mixed, *output.generated]),
        ref=lambda w, input: measure_ref(input, names.model_name(w.t, w.chain)),
    log:
        "logs/iteration/{chain}/iter{t}.log",
    benchmark:
        "results/benchmarks/iteration/{chain}_iter{t}.tsv"


rule sft_continued:
    input:
        unpack(control_inputs),
    output:
        model=directory(names.model_dir(names.model_name("{t}", names.CONTROL))),
        metrics=names.train_metrics(names.model_name("{t}", names.CONTROL)),
        **measure_outputs(names.model_name("{t}", names.CONTROL)),
    params:
        cfg=lambda w: params_json(spin=CFG.spin.for_iteration(int(w.t)), control=CFG.convergence.control),
        checkpoints=names.train_checkpoints(names.model_name("{t}", names.CONTROL)),
        measure=lambda w: measure_params(names.model_name(w.t, names.CONTROL)),
        name=lambda w: names.model_name(w.t, names.CONTROL),
        ref=lambda w, input: measure_ref(input, names.model_name(w.t, names.CONTROL)),
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
        one_process(CONTROL_STEPS)
