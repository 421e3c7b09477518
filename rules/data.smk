# Stage 1: the tiny world (tiny scale only) and SFT data in the UltraChat-200k schema.


rule world:
    output:
        world="data/world/world.json",
        tokenizer=directory("data/world/tokenizer"),
    params:
        cfg=params_json(world=CFG.world),
    log:
        "logs/world/world.log",
    threads: 1
    resources:
        mem_mb=res("world", "mem_mb"),
        runtime=res("world", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "python -m spin_core.cli world --params {params.cfg:q}"
        " --world-out {output.world:q} --tokenizer-out {output.tokenizer:q} 2>&1 | tee {log:q}"


rule data:
    input:
        world="data/world/world.json" if TINY else [],
        dataset=asset_input(CFG.data.dataset, names.ASSET_CHAT_DATA),
    output:
        train="data/sft/train.jsonl",
        test="data/sft/test.jsonl",
    params:
        cfg=params_json(data=CFG.data),
        world=lambda w, input: f"--world {shlex.quote(input.world)}" if TINY else "",
    log:
        "logs/data/data.log",
    threads: 1
    resources:
        mem_mb=res("data", "mem_mb"),
        runtime=res("data", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "python -m spin_core.cli data --params {params.cfg:q} {params.world}"
        " --train-out {output.train:q} --test-out {output.test:q} 2>&1 | tee {log:q}"
