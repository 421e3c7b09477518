# The recipe ablation (tiny world), its own target: `snakemake --cores all recipes`. Each variant of
# the SPIN recipe (convergence.recipes.variants) from each SFT start (saturated, weak), with seeds that
# also vary the SFT model; the SFT-continued control matched to the first variant's steps. One job per
# SFT model and one per run (a chain of iterations in one process, divergence/recipes.py); the
# `recipes` rule gathers them into results/tables/recipe_ablation*.csv and a figure.

RECIPES = CFG.convergence.recipes
RECIPE_RUNS = list(RECIPES.variants) + ([names.CONTROL] if RECIPES.control else [])
RECIPE_MATCHED = next(iter(RECIPES.variants))  # the control matches this variant's steps


rule recipe_sft:
    input:
        train="data/sft/train.jsonl",
        tokenizer="data/world/tokenizer",
    output:
        model=directory(names.recipe_sft("{start}", "{r}")),
        metrics=names.recipe_sft_metrics("{start}", "{r}"),
    wildcard_constraints:
        start="saturated|weak",
        r=r"\d+",
    params:
        cfg=lambda w: params_json(sft=RECIPES.sft_for(CFG.sft, w.start, int(w.r)), spin=SFT_SPIN),
        checkpoints=lambda w: f"{names.recipe_sft(w.start, w.r)}.checkpoints",
    log:
        "logs/recipes/sft/{start}/seed{r}.log",
    benchmark:
        "results/benchmarks/recipes/sft_{start}_seed{r}.tsv"
    threads: res("sft", "threads")
    resources:
        mem_mb=res("sft", "mem_mb"),
        runtime=res("sft", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli sft --params {params.cfg:q}"
        " --train {input.train:q} --tokenizer {input.tokenizer:q} --out {output.model:q}"
        " --checkpoints {params.checkpoints:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"


rule recipe_run:
    input:
        unpack(lambda w: names.recipe_run_inputs(w.start, w.recipe, w.r, RECIPE_MATCHED)),
    output:
        rows=names.recipe_run("{start}", "{recipe}", "{r}"),
        per_prompt=names.recipe_run_per_prompt("{start}", "{recipe}", "{r}"),
    wildcard_constraints:
        start="saturated|weak",
        recipe=r"[a-z][a-z0-9_]*",
        r=r"\d+",
    params:
        cfg=params_json(
            recipes=RECIPES,
            spin=CFG.spin,
            generate=CFG.generate,
            divergence=CFG.divergence,
            control=CFG.convergence.control,
        ),
        work_dir=lambda w: names.recipe_work(w.start, w.recipe, w.r),
        match=lambda w, input: f"--match {shlex.quote(input.match)}" if "match" in input.keys() else "",
    log:
        "logs/recipes/{start}/{recipe}/seed{r}.log",
    benchmark:
        "results/benchmarks/recipes/{start}_{recipe}_seed{r}.tsv"
    threads: res("map", "threads")
    resources:
        mem_mb=res("map", "mem_mb"),
        runtime=res("map", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli recipe-run --params {params.cfg:q}"
        " --recipe {wildcards.recipe:q} --start {wildcards.start:q} --seed {wildcards.r}"
        " --sft {input.sft:q} --world {input.world:q} --train {input.train:q} --test {input.test:q}"
        " --work-dir {params.work_dir:q} --per-prompt-out {output.per_prompt:q} {params.match}"
        " --out {output.rows:q} 2>&1 | tee {log:q}"


rule recipes:
    input:
        runs=names.recipe_outputs("rows", RECIPES.starts, RECIPE_RUNS, RECIPES.seeds),
        per_prompt=names.recipe_outputs("per_prompt", RECIPES.starts, RECIPE_RUNS, RECIPES.seeds),
        sft=names.recipe_outputs("sft", RECIPES.starts, RECIPE_RUNS, RECIPES.seeds),
    output:
        tables=[
            report(f"results/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
            for name in RECIPE_TABLES
        ],
        markdown=[f"results/tables/{name}.md" for name in RECIPE_TABLES],
        figure=report(
            f"results/figures/{RECIPE_FIGURE}.png", caption=f"../report/{RECIPE_FIGURE}.rst", category="Figures"
        ),
        svg=f"results/figures/{RECIPE_FIGURE}.svg",
    log:
        "logs/recipes/recipes.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m analysis.cli recipes --runs {input.runs:q} --per-prompt {input.per_prompt:q}"
        " --sft-metrics {input.sft:q} --out-dir results/tables --figure {output.figure:q} 2>&1 | tee {log:q}"


# Where a long chain settles (its own target: `snakemake --cores all long_horizon`): one recipe of the
# ablation from one start for convergence.long_horizon.iterations iterations, from the ablation's SFT
# models, each model with its memorisation gap (divergence/memorisation.py).
LONG = CFG.convergence.long_horizon


rule long_horizon_run:
    input:
        sft=names.recipe_sft(LONG.start, "{r}"),
        world="data/world/world.json",
        train="data/sft/train.jsonl",
        test="data/sft/test.jsonl",
    output:
        rows=names.long_horizon_run("{r}"),
        per_prompt=names.long_horizon_per_prompt("{r}"),
    wildcard_constraints:
        r=r"\d+",
    params:
        cfg=params_json(
            long_horizon=LONG,
            recipes=RECIPES,
            spin=CFG.spin,
            generate=CFG.generate,
            divergence=CFG.divergence,
            control=CFG.convergence.control,
        ),
        work_dir=lambda w: names.long_horizon_work(w.r),
    log:
        "logs/long_horizon/seed{r}.log",
    benchmark:
        "results/benchmarks/long_horizon/seed{r}.tsv"
    threads: res("map", "threads")
    resources:
        mem_mb=res("map", "mem_mb"),
        runtime=res("map", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli long-horizon-run --params {params.cfg:q} --seed {wildcards.r}"
        " --sft {input.sft:q} --world {input.world:q} --train {input.train:q} --test {input.test:q}"
        " --work-dir {params.work_dir:q} --per-prompt-out {output.per_prompt:q} --out {output.rows:q} 2>&1 | tee {log:q}"


rule long_horizon:
    input:
        runs=[names.long_horizon_run(k) for k in range(LONG.seeds)],
    output:
        table=report(
            f"results/tables/{names.LONG_HORIZON_TABLE}.csv",
            caption=f"../report/{names.LONG_HORIZON_TABLE}.rst",
            category="Tables",
        ),
        markdown=f"results/tables/{names.LONG_HORIZON_TABLE}.md",
    log:
        "logs/long_horizon/long_horizon.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m analysis.cli long-horizon --runs {input.runs:q} --out-dir results/tables 2>&1 | tee {log:q}"
