# Released checkpoints (config `released.models`, e.g. config/paper-released.yaml): every model of
# the run (sft, iter0, ...) is imported from a hub id at a pinned revision, or from a local folder,
# instead of being trained. Generation, the reference pass and training are not in the workflow.

rule import_model:
    output:
        model=directory(names.model_dir("{model}")),
    params:
        model=lambda w: CFG.released.models[w.model].model,
        revision=lambda w: (
            f"--revision {shlex.quote(CFG.released.models[w.model].revision)}"
            if CFG.released.models[w.model].revision
            else ""
        ),
    log:
        "logs/import/{model}.log",
    threads: 1
    resources:
        mem_mb=res("sft", "mem_mb"),
        runtime=res("sft", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "python -m spin_core.cli import-model --model {params.model:q} {params.revision}"
        " --out {output.model:q} 2>&1 | tee {log:q}"
