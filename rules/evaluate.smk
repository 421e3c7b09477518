# Evaluation, gathered into results/eval/scores.csv (model, benchmark, task, metric, value, stderr).
# Paper scale: one job per model x benchmark x task (so a cluster runs them in parallel): lm-eval's
# leaderboard/bigbench tasks, MT-Bench answers and a GPT-4 judge. Tiny world: local lm-eval tasks, a
# BIG-bench JSON task converted by our code, MT-Bench with the exact-p_data oracle judge, all of a
# model in one job (the same files), since starting a job costs more there than evaluating.

EVAL = CFG.evaluation
MT_ON = EVAL.mt_bench.enabled
# What each lm-eval family's jobs read: its tasks, none when it is switched off (its `enabled`).
LB_FAMILY, BB_FAMILY = EVAL.leaderboard.for_jobs, EVAL.bigbench.for_jobs
LB_TASKS = list(LB_FAMILY.tasks)
BB_TASKS = list(BB_FAMILY.tasks)
TINY_TASK_DIR = names.TINY_TASK_DIR
MT_DIR = names.MT_BENCH_DIR
# Inputs an lm-eval job needs: the local task YAMLs (tiny world) or nothing (lm-eval's own).
TINY_TASK_FILES = [f"{TINY_TASK_DIR}/{t}.yaml" for t in LB_TASKS + BB_TASKS] if TINY else []
# The lm-eval a family's jobs run (its `harness`): with --use-conda its env file, without it the python
# of its environment (the suite's, or the paper harness's venv). Checked now, not after the training.
USE_CONDA = any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
LM_EVAL_ENV = {f: f"../envs/{lm_eval_versions.HARNESS_ENVS[getattr(EVAL, f).harness]}" for f in names.EVAL_FAMILIES}
LM_EVAL_PYTHON = {
    f: lm_eval_versions.job_python(getattr(EVAL, f).harness, USE_CONDA, workflow.basedir) for f in names.EVAL_FAMILIES
}
HARNESS_PROBLEMS = lm_eval_versions.workflow_problems(
    {f"evaluation.{f}": getattr(EVAL, f).for_jobs for f in names.EVAL_FAMILIES} if EVAL_ON else {},
    USE_CONDA,
    workflow.basedir,
)
# Said when the workflow is read (a dry run goes on); a run stops before its first job (onstart).
for _problem in HARNESS_PROBLEMS:
    print(f"warning: {_problem}", file=sys.stderr)


wildcard_constraints:
    task=r"[A-Za-z0-9_]+",


if TINY:

    rule eval_tasks:
        input:
            world="data/world/world.json",
            test="data/sft/test.jsonl",
        output:
            tasks=[f"{TINY_TASK_DIR}/{t}.yaml" for t in LB_TASKS + BB_TASKS],
            questions=f"{MT_DIR}/question.jsonl",
            judge_prompts=f"{MT_DIR}/judge_prompts.jsonl",
        params:
            cfg=params_json(tiny_tasks=EVAL.tiny_tasks),
        log:
            "logs/eval/tasks.log",
        threads: 1
        resources:
            mem_mb=res("eval_tasks", "mem_mb"),
            runtime=res("eval_tasks", "runtime"),
        conda:
            "../envs/eval-lm.yaml"
        shell:
            "python -m spin_core.cli eval-tasks --params {params.cfg:q} --world {input.world:q}"
            " --test {input.test:q} --out-dir data/eval 2>&1 | tee {log:q}"

    # Every model's evaluation in one job and process (the same files as one job per model).
    rule eval_models:
        input:
            **eval_inputs(),
        output:
            [f for m in MODELS for f in eval_outputs(m)],
        params:
            steps=eval_command,
            stash=names.steps_stash("eval_models"),
        log:
            "logs/eval/models.log",
        benchmark:
            "results/benchmarks/eval_models.tsv"
        threads: res("eval_leaderboard", "threads")
        resources:
            mem_mb=res("eval_leaderboard", "mem_mb"),
            runtime=res("eval_leaderboard", "runtime"),
        conda:
            "../envs/eval-lm.yaml"
        shell:
            STEPS_SHELL


else:

    rule mt_bench_files:
        output:
            questions=f"{MT_DIR}/question.jsonl",
            judge_prompts=f"{MT_DIR}/judge_prompts.jsonl",
            reference=f"{MT_DIR}/reference_answer.jsonl",
        params:
            q=EVAL.mt_bench.questions,
            p=EVAL.mt_bench.judge_prompts,
            r=EVAL.mt_bench.reference_answers,
        log:
            "logs/eval/mt_bench_files.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../envs/eval-mtbench.yaml"
        shell:
            "(python -m spin_core.cli fetch --url {params.q.url:q} --sha256 {params.q.sha256:q} --out {output.questions:q}"
            " && python -m spin_core.cli fetch --url {params.p.url:q} --sha256 {params.p.sha256:q} --out {output.judge_prompts:q}"
            " && python -m spin_core.cli fetch --url {params.r.url:q} --sha256 {params.r.sha256:q} --out {output.reference:q})"
            " 2>&1 | tee {log:q}"

    rule eval_leaderboard:
        input:
            model=names.model_dir("{model}"),
            tasks=asset_input(EVAL.leaderboard.include_path, names.ASSET_BIGBENCH),
        output:
            json=names.eval_task_result("leaderboard", "{model}", "{task}", "json"),
            csv=names.eval_task_result("leaderboard", "{model}", "{task}", "csv"),
        params:
            cfg=params_json(family=LB_FAMILY),
            benchmark=names.EVAL_FAMILIES["leaderboard"],
            python=LM_EVAL_PYTHON["leaderboard"],
        log:
            "logs/eval/leaderboard/{model}_{task}.log",
        benchmark:
            "results/benchmarks/eval_leaderboard_{model}_{task}.tsv"
        threads: res("eval_leaderboard", "threads")
        resources:
            mem_mb=res("eval_leaderboard", "mem_mb"),
            runtime=res("eval_leaderboard", "runtime"),
            gpu=res("eval_leaderboard", "gpu"),
        conda:
            LM_EVAL_ENV["leaderboard"]
        shell:
            "OMP_NUM_THREADS={threads} {params.python:q} -m spin_core.cli eval-lm --params {params.cfg:q} --model {input.model:q}"
            " --name {wildcards.model:q} --benchmark {params.benchmark:q} --task {wildcards.task:q}"
            " --out-json {output.json:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"

    rule eval_bigbench:
        input:
            model=names.model_dir("{model}"),
            tasks=asset_input(EVAL.bigbench.include_path, names.ASSET_BIGBENCH),
        output:
            json=names.eval_task_result("bigbench", "{model}", "{task}", "json"),
            csv=names.eval_task_result("bigbench", "{model}", "{task}", "csv"),
        params:
            cfg=params_json(family=BB_FAMILY),
            benchmark=names.EVAL_FAMILIES["bigbench"],
            python=LM_EVAL_PYTHON["bigbench"],
        log:
            "logs/eval/bigbench/{model}_{task}.log",
        benchmark:
            "results/benchmarks/eval_bigbench_{model}_{task}.tsv"
        threads: res("eval_bigbench", "threads")
        resources:
            mem_mb=res("eval_bigbench", "mem_mb"),
            runtime=res("eval_bigbench", "runtime"),
            gpu=res("eval_bigbench", "gpu"),
        conda:
            LM_EVAL_ENV["bigbench"]
        shell:
            "OMP_NUM_THREADS={threads} {params.python:q} -m spin_core.cli eval-lm --params {params.cfg:q} --model {input.model:q}"
            " --name {wildcards.model:q} --benchmark {params.benchmark:q} --task {wildcards.task:q}"
            " --out-json {output.json:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"

    rule mt_bench_answer:
        input:
            model=names.model_dir("{model}"),
            questions=f"{MT_DIR}/question.jsonl",
        output:
            names.mt_bench_answers("{model}"),
        params:
            cfg=params_json(mt_bench=EVAL.mt_bench),
            seed=CFG.seed,
        log:
            "logs/eval/mt_bench/answer_{model}.log",
        benchmark:
            "results/benchmarks/mt_bench_answer_{model}.tsv"
        threads: res("mt_bench_answer", "threads")
        resources:
            mem_mb=res("mt_bench_answer", "mem_mb"),
            runtime=res("mt_bench_answer", "runtime"),
            gpu=res("mt_bench_answer", "gpu"),
        conda:
            "../envs/eval-mtbench.yaml"
        shell:
            "OMP_NUM_THREADS={threads} python -m spin_core.cli mt-bench-answer --params {params.cfg:q}"
            " --model {input.model:q} --name {wildcards.model:q} --questions {input.questions:q} --seed {params.seed}"
            " --out {output:q} 2>&1 | tee {log:q}"

    rule mt_bench_judge:
        input:
            answers=names.mt_bench_answers("{model}"),
            questions=f"{MT_DIR}/question.jsonl",
            judge_prompts=f"{MT_DIR}/judge_prompts.jsonl",
            reference=f"{MT_DIR}/reference_answer.jsonl",
        output:
            jsonl=names.mt_bench_judgments("{model}"),
            csv=names.mt_bench_scores("{model}"),
        params:
            cfg=params_json(mt_bench=EVAL.mt_bench),
            cache=names.JUDGE_CACHE,
        log:
            "logs/eval/mt_bench/judge_{model}.log",
        benchmark:
            "results/benchmarks/mt_bench_judge_{model}.tsv"
        threads: 1
        resources:
            mem_mb=res("mt_bench_judge", "mem_mb"),
            runtime=res("mt_bench_judge", "runtime"),
        conda:
            "../envs/eval-mtbench.yaml"
        shell:
            "python -m spin_core.cli mt-bench-judge --params {params.cfg:q} --name {wildcards.model:q}"
            " --questions {input.questions:q} --answers {input.answers:q} --judge-prompts {input.judge_prompts:q}"
            " --reference {input.reference:q} --cache {params.cache:q}"
            " --out {output.jsonl:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"


rule eval_scores:
    input:
        [names.eval_task_result("leaderboard", m, t, "csv") for m in MODELS for t in LB_TASKS],
        [names.eval_task_result("bigbench", m, t, "csv") for m in MODELS for t in BB_TASKS],
        [names.mt_bench_scores(m) for m in MODELS] if MT_ON else [],
    output:
        "results/eval/scores.csv",
    params:
        cfg=params_json(leaderboard=LB_FAMILY),
        models=MODELS,
    log:
        "logs/eval/scores.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m spin_core.cli scores --params {params.cfg:q} --inputs {input:q} --models {params.models:q}"
        " --out {output:q} 2>&1 | tee {log:q}"
