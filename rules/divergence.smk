# Stage 6: divergence to p_data per model. Held-out samples (both scales) feed the exact KL (tiny
# world, where log p_data is exact) and the paper-scale proxies; each is gathered into one CSV.
# Paper scale: one job per model for the samples and one for the proxies (they need different
# resources). Tiny world: one job per model writes all three files, since starting a job costs
# more there than the measures.

if TINY and RELEASED:  # otherwise the job that makes a model measures it (MEASURE_STEP)

    rule divergence_model:
        input:
            unpack(lambda w: names.proxy_reference(w.model)),
            model=names.model_dir("{model}"),
            world="data/world/world.json",
            test="data/sft/test.jsonl",
        output:
            samples=names.heldout_samples("{model}"),
            exact=names.divergence_rows("exact", "{model}"),
            proxies=names.divergence_rows("proxies", "{model}"),
            per_prompt=names.per_prompt_rows("{model}"),
        params:
            cfg=lambda w: params_json(
                divergence=CFG.divergence, generate=CFG.generate, spin=model_spin(w).view(EncodingConfig)
            ),
            ref=lambda w, input: measure_ref(input, w.model),
        log:
            "logs/divergence/{model}.log",
        benchmark:
            "results/benchmarks/divergence_model/{model}.tsv"
        threads: res("divergence", "threads")
        resources:
            mem_mb=res("divergence", "mem_mb"),
            runtime=res("divergence", "runtime"),
        conda:
            "../envs/train.yaml"
        shell:
            "OMP_NUM_THREADS={threads} python -m spin_core.cli divergence-model --params {params.cfg:q}"
            " --model {input.model:q} --world {input.world:q} --test {input.test:q} {params.ref}"
            " --name {wildcards.model:q} --samples-out {output.samples:q} --exact-out {output.exact:q}"
            " --proxies-out {output.proxies:q} --per-prompt-out {output.per_prompt:q} 2>&1 | tee {log:q}"

elif not TINY:

    rule heldout_samples:
        input:
            model=names.model_dir("{model}"),
            test="data/sft/test.jsonl",
        output:
            names.heldout_samples("{model}"),
        params:
            cfg=lambda w: params_json(
                divergence=CFG.divergence, generate=CFG.generate, spin=model_spin(w).view(EncodingConfig)
            ),
        log:
            "logs/divergence/samples/{model}.log",
        benchmark:
            "results/benchmarks/heldout_samples/{model}.tsv"
        threads: res("divergence", "threads")
        resources:
            mem_mb=res("divergence", "mem_mb"),
            runtime=res("divergence", "runtime"),
            gpu=res("divergence", "gpu"),
        conda:
            "../envs/generate.yaml"
        shell:
            "OMP_NUM_THREADS={threads} python -m spin_core.cli heldout-samples --params {params.cfg:q}"
            " --model {input.model:q} --test {input.test:q} --out {output:q} 2>&1 | tee {log:q}"

    rule divergence_proxies:
        input:
            unpack(lambda w: names.proxy_reference(w.model)),
            model=names.model_dir("{model}"),
            samples=names.heldout_samples("{model}"),
            test="data/sft/test.jsonl",
        output:
            proxies=names.divergence_rows("proxies", "{model}"),
            per_prompt=names.per_prompt_rows("{model}"),
        params:
            cfg=lambda w: params_json(divergence=CFG.divergence, spin=model_spin(w).view(EncodingConfig)),
            ref=lambda w, input: measure_ref(input, w.model),
        log:
            "logs/divergence/proxies/{model}.log",
        benchmark:
            "results/benchmarks/proxies/{model}.tsv"
        threads: res("divergence", "threads")
        resources:
            mem_mb=res("divergence", "mem_mb"),
            runtime=res("divergence", "runtime"),
            gpu=res("divergence", "gpu"),
        conda:
            "../envs/train.yaml"
        shell:
            "OMP_NUM_THREADS={threads} python -m spin_core.cli proxies --params {params.cfg:q}"
            " --model {input.model:q} --samples {input.samples:q} --test {input.test:q} {params.ref}"
            " --name {wildcards.model:q} --out {output.proxies:q} --per-prompt-out {output.per_prompt:q} 2>&1 | tee {log:q}"


rule per_prompt_table:
    input:
        [names.per_prompt_rows(m) for m in ALL_MODELS],
    output:
        names.PER_PROMPT_TABLE,
    log:
        "logs/divergence/per_prompt_table.log",
    threads: 1
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m spin_core.cli gather --inputs {input:q} --out {output:q} 2>&1 | tee {log:q}"


rule divergence_table:
    input:
        expand(names.divergence_rows("{{kind}}", "{model}"), model=ALL_MODELS),
    output:
        names.divergence_table("{kind}"),
    wildcard_constraints:
        kind="exact|proxies",
    log:
        "logs/divergence/{kind}_table.log",
    threads: 1
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m spin_core.cli gather --inputs {input:q} --out {output:q} 2>&1 | tee {log:q}"
