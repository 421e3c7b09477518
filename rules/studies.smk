# The data-size and capacity studies (tiny world), their own targets: `snakemake --cores all data_size`
# and `snakemake --cores all capacity`. One recipe of the ablation (convergence.studies.recipe) from SFT
# models saturated on other data sizes (and the fresh arm: new p_data rows every iteration) or at other
# widths; one job per SFT model and one per arm and seed (a chain in one process, divergence/studies.py).
# The arm of the main run's size and width starts from the recipe ablation's saturated SFT model.

STUDIES = CFG.convergence.studies
MAIN_ARM = names.StudyArm(CFG.data.n_train, CFG.sft.architecture["hidden_size"])
STUDY_ARMS = {study: CFG.study_arms(study) for study in names.STUDY_TABLES}
POOL_SIZES = [n for n in STUDIES.data_sizes if n != CFG.data.n_train]


if POOL_SIZES:

    rule study_pool:
        input:
            world="data/world/world.json",
            train="data/sft/train.jsonl",
            test="data/sft/test.jsonl",
        output:
            [names.study_train(n, CFG.data.n_train) for n in POOL_SIZES],
        params:
            sizes=POOL_SIZES,
            seed=CFG.data.seed + 1,  # not the main data's own draw
        log:
            "logs/studies/pool.log",
        threads: 1
        resources:
            mem_mb=res("data", "mem_mb"),
            runtime=res("data", "runtime"),
        conda:
            "../envs/train.yaml"
        shell:
            "python -m spin_core.cli study-pool --world {input.world:q} --train {input.train:q} --test {input.test:q}"
            " --sizes {params.sizes:q} --seed {params.seed:q} --out {output:q} 2>&1 | tee {log:q}"


rule study_sft:
    input:
        train=lambda w: names.study_train(names.parse_study_arm(w.arm).n_train, CFG.data.n_train),
        tokenizer="data/world/tokenizer",
    output:
        model=directory(names.study_sft("{arm}", "{r}")),
        metrics=names.study_sft_metrics("{arm}", "{r}"),
    wildcard_constraints:
        arm=r"n\d+_h\d+",
        r=r"\d+",
    params:
        cfg=lambda w: params_json(sft=CFG.study_sft(names.parse_study_arm(w.arm), int(w.r)), spin=SFT_SPIN),
        checkpoints=lambda w: f"{names.study_sft(w.arm, w.r)}.checkpoints",
    log:
        "logs/studies/sft/{arm}/seed{r}.log",
    benchmark:
        "results/benchmarks/studies/sft_{arm}_seed{r}.tsv"
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


rule study_run:
    input:
        sft=lambda w: names.study_sft_model(names.parse_study_arm(w.arm), w.r, MAIN_ARM),
        world="data/world/world.json",
        train=lambda w: names.study_train(names.parse_study_arm(w.arm).n_train, CFG.data.n_train),
        test="data/sft/test.jsonl",
    output:
        rows=names.study_run("{arm}", "{r}"),
        per_prompt=names.study_run_per_prompt("{arm}", "{r}"),
    wildcard_constraints:
        arm=names.STUDY_ARM_PATTERN,
        r=r"\d+",
    params:
        cfg=params_json(
            studies=STUDIES,
            recipes=RECIPES,
            spin=CFG.spin,
            generate=CFG.generate,
            divergence=CFG.divergence,
        ),
        work_dir=lambda w: names.study_work(w.arm, w.r),
    log:
        "logs/studies/{arm}/seed{r}.log",
    benchmark:
        "results/benchmarks/studies/{arm}_seed{r}.tsv"
    threads: res("map", "threads")
    resources:
        mem_mb=res("map", "mem_mb"),
        runtime=res("map", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli study-run --params {params.cfg:q} --arm {wildcards.arm:q}"
        " --seed {wildcards.r} --sft {input.sft:q} --world {input.world:q} --train {input.train:q}"
        " --test {input.test:q} --work-dir {params.work_dir:q} --per-prompt-out {output.per_prompt:q}"
        " --out {output.rows:q} 2>&1 | tee {log:q}"


for _study, _arms in STUDY_ARMS.items():

    rule:
        name:
            _study
        input:
            runs=[names.study_run(a.name, k) for a in _arms for k in range(STUDIES.seeds)],
            per_prompt=[names.study_run_per_prompt(a.name, k) for a in _arms for k in range(STUDIES.seeds)],
            sft=[names.study_sft_model(a, k, MAIN_ARM, metrics=True) for a in _arms if not a.fresh for k in range(STUDIES.seeds)],
        output:
            tables=[
                report(f"results/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
                for name in names.STUDY_TABLES[_study]
            ],
            markdown=[f"results/tables/{name}.md" for name in names.STUDY_TABLES[_study]],
            figure=report(
                f"results/figures/{_study}.png", caption=f"../report/{_study}_figure.rst", category="Figures"
            ),
            svg=f"results/figures/{_study}.svg",
        params:
            study=_study,
            sft_arms=[a.sft_arm for a in _arms if not a.fresh for k in range(STUDIES.seeds)],
        log:
            f"logs/studies/{_study}.log",
        threads: 1
        resources:
            mem_mb=res("report", "mem_mb"),
            runtime=res("report", "runtime"),
        conda:
            "../envs/analysis.yaml"
        shell:
            "python -m analysis.cli study --study {params.study:q} --runs {input.runs:q} --per-prompt {input.per_prompt:q}"
            " --sft-metrics {input.sft:q} --sft-arms {params.sft_arms:q} --out-dir results/tables"
            " --figure {output.figure:q} 2>&1 | tee {log:q}"
