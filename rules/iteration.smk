# Stages 3-6 of one SPIN iteration at the tiny scale, as one job: generate y' from the previous model
# (every shard), the reference pass, training, then the new model's held-out samples, exact KL and
# proxies. The same stage functions, command lines and files as the paper scale's one job per stage
# (rules/generate.smk, reference.smk, train.smk, divergence.smk), run by `spin-repro steps` in one
# process: a tiny model computes each stage in a second or two, while every process start (torch,
# transformers) and first pass costs more (issue #26: 25.6 vs 10.6 CPU-s for iteration 0).
# A killed job is rerun whole (a few seconds); training resumes from its checkpoints.


rule iteration:
    input:
        unpack(iteration_inputs),
    output:
        **iteration_outputs(),
    params:
        generate=generate_params,
        reference=reference_params,
        train=spin_params,
        measure=lambda w: measure_params(names.model_name(w.t)),
        name=lambda w: names.model_name(w.t),
        launcher=train_launcher(),
        checkpoints=names.train_checkpoints(names.model_name("{t}")),
        release=lambda w: names.train_checkpoints(names.previous_model(names.model_name(w.t))),
        pairs=lambda w, input, output: shlex.join([*input.mixed, *output.generated]),
        ref=lambda w, input: measure_ref(input, names.model_name(w.t)),
    log:
        "logs/iteration/iter{t}.log",
    benchmark:
        "results/benchmarks/iteration/iter{t}.tsv"
    priority: CRITICAL_PATH
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        one_process(iteration_steps())
