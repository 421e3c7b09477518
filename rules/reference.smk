# Stage 4: reference pass. Score real and generated responses once under the frozen previous
# model; the pairs file then carries ref_logp_real / ref_logp_generated, so training holds one
# model. With mixing, the previous iteration's pairs are re-scored under this iteration's reference.


rule reference:
    input:
        pairs=pair_sources,
        model=lambda w: previous_model_dir(w.t),
    output:
        names.pairs_file("{t}"),
    params:
        cfg=reference_params,
    log:
        "logs/reference/iter{t}.log",
    benchmark:
        "results/benchmarks/reference_iter{t}.tsv"
    priority: CRITICAL_PATH
    threads: res("reference", "threads")
    resources:
        mem_mb=res("reference", "mem_mb"),
        runtime=res("reference", "runtime"),
        gpu=res("reference", "gpu"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m spin_core.cli reference --params {params.cfg:q}"
        " --model {input.model:q} --pairs {input.pairs:q} --out {output:q} 2>&1 | tee {log:q}"
