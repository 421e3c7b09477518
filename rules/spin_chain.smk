# Tiny world: a SPIN chain is one job in one process (`spin-repro steps`): its SFT model, then for
# each iteration generate y' from the previous model (every shard) -> the reference pass -> training,
# each model measured where it is made (held-out samples, exact KL, proxies). The same stage functions,
# command lines and files as the paper scale's one job per stage (rules/sft.smk, generate.smk,
# reference.smk, train.smk, divergence.smk): a tiny model computes a stage in a second or two, while
# every process start (torch, transformers) costs ~4 CPU-s and every job ~1 more of Snakemake's
# (issue #26). The replicate chains (convergence.seeds: seed{r}/, each from its own SFT model, seeds
# shifted) and the SFT-continued control (sft_continued/iter{t}: as many supervised steps on the human
# responses as SPIN iteration t, from the main run's SFT model) are one job each too.
#
# A kill does not cost the finished steps: each is stashed as it finishes (hard links under
# work/steps/, spin_core/cli/stash.py) and the rerun links it back instead of running it; a training
# step resumes from its checkpoints. Both are dropped once the run succeeds (rules/hooks.smk).

rule spin_chain:
    input:
        **chain_inputs(),
    output:
        **chain_outputs(),
    params:
        steps=chain_command,
        launcher=train_launcher(),
        checkpoints=lambda w: chain_checkpoints(w.get("chain", "")),
        stash=lambda w: names.steps_stash(chain_job(w)),
    log:
        "logs/spin_chain/main.log",
    benchmark:
        "results/benchmarks/spin_chain/main.tsv"
    priority: CRITICAL_PATH
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        STEPS_SHELL


use rule spin_chain as spin_chain_seed with:
    output:
        **chain_outputs("{chain}"),
    log:
        "logs/spin_chain/{chain}.log",
    benchmark:
        "results/benchmarks/spin_chain/{chain}.tsv"


rule sft_continued:
    input:
        **control_inputs(),
    output:
        **control_outputs(),
    params:
        steps=control_command,
        checkpoints=[names.train_checkpoints(names.model_name(t, names.CONTROL)) for t in ITERATIONS],
        stash=names.steps_stash(names.CONTROL),
    log:
        f"logs/{names.CONTROL}.log",
    benchmark:
        f"results/benchmarks/{names.CONTROL}.tsv"
    priority: CRITICAL_PATH
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        STEPS_SHELL
