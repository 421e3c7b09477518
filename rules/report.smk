# Stage 7: the convergence study's outputs. Theory overlay, paper-vs-ours and claims tables,
# figures, all registered for `snakemake --report results/report.html`; and the separate
# `convergence_map` target (beta x budget sweep, one job per cell).

TABLES = table_names(TINY, trained=not RELEASED)
FIGURES = figure_names(TINY)
MAP = CFG.convergence.map
PAPER_RESULTS = os.path.join(workflow.basedir, "analysis", "paper_results.yaml")


# The tables' and figures' inputs, and one output per (beta, budget) cell of the convergence map.
REPORT_INPUTS = names.report_inputs(TINY, not RELEASED, RECIPES_DONE, EVAL_ON)
FIGURE_INPUTS = {k: v for k, v in REPORT_INPUTS.items() if k in ("exact", "proxies", "theory")}
MAP_CELLS = [names.map_cell_rows(names.cell_name(*cell)) for cell in MAP.cells()]


rule theory_overlay:
    output:
        "results/theory/overlay.csv",
    params:
        cfg=params_json(theory=CFG.convergence.theory),
    log:
        "logs/report/theory.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/train.yaml"  # torch (float64 L-BFGS on the population loss)
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli theory --params {params.cfg:q} --out {output:q} 2>&1 | tee {log:q}"


rule tables:
    input:
        **REPORT_INPUTS,
        paper=PAPER_RESULTS,
    output:
        [
            report(f"results/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
            for name in TABLES
        ],
        [f"results/tables/{name}.md" for name in TABLES],
    params:
        cfg=params_json(
            spin=CFG.spin,
            evaluation=CFG.evaluation,
            generate=CFG.generate,
            sft=CFG.sft,
        ),
        # The claims take each start of the recipe ablation (its first variant is the main run's recipe).
        recipe_starts=list(CFG.convergence.recipes.starts),
        recipe_variant=next(iter(CFG.convergence.recipes.variants)),
        recipe=CFG.recipe,
        scale=CFG.scale,
        iterations=ITERATIONS,
        inputs=lambda w, input: input_args(input, skip=("paper",)),
    log:
        "logs/report/tables.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m analysis.cli tables --params {params.cfg:q} --recipe {params.recipe:q} --scale {params.scale:q}"
        " --iterations {params.iterations} --recipe-starts {params.recipe_starts} --recipe-variant {params.recipe_variant}"
        " --paper {input.paper:q} {params.inputs} --out-dir results/tables 2>&1 | tee {log:q}"


rule figures:
    input:
        **FIGURE_INPUTS,
        tables="results/tables/benchmarks_long.csv",
    output:
        [
            report(f"results/figures/{name}.png", caption=f"../report/{name}.rst", category="Figures")
            for name in FIGURES
        ],
        [f"results/figures/{name}.svg" for name in FIGURES],
    params:
        inputs=lambda w, input: input_args(input, skip=("tables",)),
        start="released" if RELEASED else CFG.sft.start,
    log:
        "logs/report/figures.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m analysis.cli figures --tables results/tables {params.inputs} --start {params.start:q}"
        " --out-dir results/figures 2>&1 | tee {log:q}"


rule convergence_map_cell:
    input:
        sft=names.model_dir(names.SFT),
        world="data/world/world.json",
        train="data/sft/train.jsonl",
        test="data/sft/test.jsonl",
    output:
        names.map_cell_rows("beta{beta}_lr{lr}_ep{ep}"),
    params:
        cfg=params_json(sweep=MAP, spin=CFG.spin, generate=CFG.generate, divergence=CFG.divergence),
        work_dir=names.map_cell_work("beta{beta}_lr{lr}_ep{ep}"),
    log:
        "logs/convergence_map/beta{beta}_lr{lr}_ep{ep}.log",
    benchmark:
        "results/benchmarks/convergence_map/beta{beta}_lr{lr}_ep{ep}.tsv"
    threads: res("map", "threads")
    resources:
        mem_mb=res("map", "mem_mb"),
        runtime=res("map", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli map-cell --params {params.cfg:q}"
        " --beta {wildcards.beta:q} --learning-rate {wildcards.lr:q} --epochs {wildcards.ep:q}"
        " --sft {input.sft:q} --world {input.world:q} --train {input.train:q} --test {input.test:q}"
        " --work-dir {params.work_dir:q} --out {output:q} 2>&1 | tee {log:q}"


rule convergence_map:
    input:
        MAP_CELLS,
    output:
        table="results/convergence_map/map.csv",
        summary="results/convergence_map/map.md",
        heatmap=report(
            "results/figures/convergence_map.png", caption="../report/convergence_map.rst", category="Figures"
        ),
        curves=report(
            "results/figures/convergence_map_curves.png",
            caption="../report/convergence_map_curves.rst",
            category="Figures",
        ),
        svgs=["results/figures/convergence_map.svg", "results/figures/convergence_map_curves.svg"],
        stopping=[
            report(f"results/tables/{name}.csv", caption=f"../report/{name}.rst", category="Tables")
            for name in MAP_STOPPING_TABLES
        ],
        stopping_md=[f"results/tables/{name}.md" for name in MAP_STOPPING_TABLES],
    log:
        "logs/convergence_map/map.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m analysis.cli map --inputs {input:q} --out {output.table:q}"
        " --heatmap {output.heatmap:q} --curves {output.curves:q} --stopping-dir results/tables 2>&1 | tee {log:q}"
