# Evaluation fan-out: one job per model x benchmark x task (so a cluster runs them in parallel),
# gathered into results/eval/scores.csv (model, benchmark, task, metric, value, stderr).
# Tiny world: local lm-eval tasks, a BIG-bench JSON task converted by our code, MT-Bench with the
# exact-p_data oracle judge. Paper scale: lm-eval's leaderboard/bigbench tasks, MT-Bench with GPT-4.

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
        tasks=tiny_task_files(),
    output:
        json="results/eval/leaderboard/{model}/{task}.json",
        csv="results/eval/leaderboard/{model}/{task}.csv",
    params:
        cfg=params_json(family=EVAL.leaderboard),
        include=f"--include-path {TINY_TASK_DIR}" if TINY else "",
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
        "../envs/eval-lm.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli eval-lm --params {params.cfg:q} --model {input.model:q}"
        " --name {wildcards.model:q} --benchmark open_llm_leaderboard --task {wildcards.task:q} {params.include}"
        " --out-json {output.json:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"


rule eval_bigbench:
    input:
        model=names.model_dir("{model}"),
        tasks=tiny_task_files(),
    output:
        json="results/eval/bigbench/{model}/{task}.json",
        csv="results/eval/bigbench/{model}/{task}.csv",
    params:
        cfg=params_json(family=EVAL.bigbench),
        include=f"--include-path {TINY_TASK_DIR}" if TINY else "",
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
        "../envs/eval-lm.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli eval-lm --params {params.cfg:q} --model {input.model:q}"
        " --name {wildcards.model:q} --benchmark bigbench --task {wildcards.task:q} {params.include}"
        " --out-json {output.json:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"


rule mt_bench_answer:
    input:
        model=names.model_dir("{model}"),
        questions=f"{MT_DIR}/question.jsonl",
    output:
        "results/eval/mt_bench/model_answer/{model}.jsonl",
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
        answers="results/eval/mt_bench/model_answer/{model}.jsonl",
        questions=f"{MT_DIR}/question.jsonl",
        judge_prompts=f"{MT_DIR}/judge_prompts.jsonl",
        world="data/world/world.json" if TINY else [],
        reference=[] if TINY else f"{MT_DIR}/reference_answer.jsonl",
    output:
        jsonl="results/eval/mt_bench/model_judgment/{model}_single.jsonl",
        csv="results/eval/mt_bench/scores/{model}.csv",
    params:
        cfg=params_json(mt_bench=EVAL.mt_bench),
        world=lambda w, input: f"--world {shlex.quote(input.world)}" if TINY else "",
        reference=lambda w, input: "" if TINY else f"--reference {shlex.quote(input.reference)}",
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
        " {params.world} {params.reference} --cache results/eval/mt_bench/judge_cache.sqlite"
        " --out {output.jsonl:q} --out-csv {output.csv:q} 2>&1 | tee {log:q}"


rule eval_scores:
    input:
        expand("results/eval/leaderboard/{model}/{task}.csv", model=MODELS, task=LB_TASKS),
        expand("results/eval/bigbench/{model}/{task}.csv", model=MODELS, task=BB_TASKS),
        expand("results/eval/mt_bench/scores/{model}.csv", model=MODELS),
    output:
        "results/eval/scores.csv",
    params:
        cfg=params_json(leaderboard=EVAL.leaderboard),
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
