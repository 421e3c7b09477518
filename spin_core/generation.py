"""Sampling one response y' per prompt from the previous iterate: HF generate (CPU/GPU) or vLLM."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import GenerateConfig
from .data import first_exchange, load_sft
from .errors import BackendUnavailableError
from .io import write_table
from .logprobs import encode_prompt, in_sorted_batches

log = logging.getLogger(__name__)


def shard_rows(rows: list, shard: int, num_shards: int) -> list:
    """Contiguous slice `shard` of `num_shards` (as the official --data_frac/--frac_len split)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for {num_shards} shards")
    bounds = np.linspace(0, len(rows), num_shards + 1).round().astype(int)
    return rows[bounds[shard] : bounds[shard + 1]]


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, temperature: float, top_p: float):
    """One left-padded, KV-cached `generate` call; returns the new tokens of each row (padding and
    anything after EOS included). temperature 0 is greedy; otherwise pure sampling (no top-k)."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, p in enumerate(prompts):
        input_ids[row, width - len(p) :] = torch.as_tensor(p)
        attention[row, width - len(p) :] = 1
    sampling = (
        dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        if temperature > 0
        else dict(do_sample=False)
    )
    out = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    return out[:, width:].tolist()


@torch.no_grad()
def hf_generate(model, tokenizer, prompt_ids: list[list[int]], cfg: GenerateConfig, seed: int):
    """Batched, KV-cached sampling with transformers; returns (token id lists, finished flags).

    Prompts are sorted by length so each left-padded batch wastes little compute. The policy's
    suppressed tokens come from the model's saved generation_config.
    """
    model.eval()
    torch.manual_seed(seed)
    outputs: list = [None] * len(prompt_ids)
    finished = [False] * len(prompt_ids)
    for idx in in_sorted_batches([len(p) for p in prompt_ids], cfg.batch_size, "generate"):
        gen = generate_batch(
            model, tokenizer, [prompt_ids[i] for i in idx], cfg.max_new_tokens, cfg.temperature, cfg.top_p
        )
        for row, i in enumerate(idx):
            toks = gen[row]
            if tokenizer.eos_token_id in toks:
                toks = toks[: toks.index(tokenizer.eos_token_id) + 1]
                finished[i] = True
            outputs[i] = toks
    return outputs, finished


def vllm_generate(model_dir: str, tokenizer, prompt_ids: list[list[int]], cfg: GenerateConfig, seed: int):
    """Paper scale: the same sampling through vLLM (imported lazily; GPU only)."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as e:
        raise BackendUnavailableError(
            f"generate.backend: 'vllm' is configured but vLLM cannot be imported ({e}); "
            "install the GPU extra (pip install '.[gpu]') or set generate.backend: hf"
        ) from None
    llm = LLM(
        model=str(model_dir),
        tensor_parallel_size=cfg.tensor_parallel_size,
        dtype=cfg.dtype,
        seed=seed,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
    )
    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens, seed=seed)
    results = llm.generate([{"prompt_token_ids": p} for p in prompt_ids], params)
    outputs = [list(r.outputs[0].token_ids) for r in results]
    finished = [r.outputs[0].finish_reason == "stop" for r in results]
    return outputs, finished


def generate_for_rows(model_dir: str | Path, rows: list[dict], cfg: GenerateConfig, seed: int):
    """Sample a response to each SFT row's first user turn with the configured backend (HF or
    vLLM); returns (tokenizer, token id lists, finished flags)."""
    from .modeling import load_model, load_tokenizer

    if cfg.backend == "vllm":
        tokenizer = load_tokenizer(model_dir)
        prompt_ids = [encode_prompt(tokenizer, first_exchange(r["messages"], "")[0]) for r in rows]
        return (tokenizer, *vllm_generate(str(model_dir), tokenizer, prompt_ids, cfg, seed))
    model, tokenizer = load_model(model_dir, dtype=cfg.dtype)
    prompt_ids = [encode_prompt(tokenizer, first_exchange(r["messages"], "")[0]) for r in rows]
    return (tokenizer, *hf_generate(model, tokenizer, prompt_ids, cfg, seed))


def generate_shard(
    model_dir: str | Path,
    prompts_path: str | Path,
    out_path: str | Path,
    cfg: GenerateConfig,
    shard: int,
    iteration: int,
) -> dict:
    """Write shard `shard` of the pairs for `iteration`: real = the SFT response, generated = y'."""
    rows = shard_rows(load_sft(prompts_path), shard, cfg.num_shards)
    seed = cfg.seed + 1000 * iteration + shard
    t0 = time.time()
    tokenizer, outputs, finished = generate_for_rows(model_dir, rows, cfg, seed)
    texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    meta = {
        "model": str(model_dir),
        "backend": cfg.backend,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "seed": seed,
        "shard": shard,
        "num_shards": cfg.num_shards,
    }
    records = []
    for row, text, done in zip(rows, texts, finished):
        user, assistant = first_exchange(row["messages"], "")
        records.append(
            {
                "prompt_id": row["prompt_id"],
                "prompt": row["prompt"],
                "real": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
                "generated": [{"role": "user", "content": user}, {"role": "assistant", "content": text.strip()}],
                "generated_finished": bool(done),
                "iteration": iteration,
                "generation": meta,
            }
        )
    write_table(out_path, pd.DataFrame.from_records(records))
    elapsed = time.time() - t0
    n_tokens = sum(len(o) for o in outputs)
    log.info(
        "generate: %d responses, %d tokens in %.1fs (%.0f tok/s), %.1f%% finished with EOS",
        len(records),
        n_tokens,
        elapsed,
        n_tokens / max(elapsed, 1e-9),
        100 * np.mean(finished or [0]),
    )
    return {"n": len(records), "tokens": n_tokens, "seconds": elapsed}
