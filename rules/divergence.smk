# Stage 6: exact divergence to p_data per model (tiny world), gathered into one tidy CSV.


rule divergence_exact:
    input:
        model="models/{model}",
        world="data/world/world.json",
        test="data/sft/test.jsonl",
    output:
        "results/divergence/exact/{model}.csv",
    params:
        cfg=params_json("divergence"),
        iteration=lambda w: model_iteration(w.model),
    log:
        "logs/divergence/{model}.log",
    benchmark:
        "results/benchmarks/divergence_{model}.tsv"
    threads: res("divergence", "threads")
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli divergence --params {params.cfg:q}"
        " --model {input.model} --world {input.world} --test {input.test}"
        " --name {wildcards.model} --iteration {params.iteration} --out {output} 2>&1 | tee {log}"


rule divergence_table:
    input:
        expand("results/divergence/exact/{model}.csv", model=MODELS),
    output:
        "results/divergence/exact.csv",
    log:
        "logs/divergence/table.log",
    threads: 1
    resources:
        mem_mb=res("divergence", "mem_mb"),
        runtime=res("divergence", "runtime"),
    conda:
        "../envs/analysis.yaml"
    shell:
        "python -m spin_core.cli gather --inputs {input} --out {output} 2>&1 | tee {log}"
