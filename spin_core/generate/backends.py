"""Sampling responses to prompts from a model directory: HF generate with a KV cache (CPU or GPU) or
vLLM (GPU), the same sampling settings either way."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..config import EncodingConfig, GenerateConfig
from ..data import first_exchange
from ..errors import BackendUnavailableError
from ..modeling import load_model, load_tokenizer
from ..train.encoding import bound_prompts, encode_prompt
from ..train.logprobs import in_sorted_batches

log = logging.getLogger(__name__)


def sampling_kwargs(cfg: GenerateConfig) -> dict:
    """generate() arguments for the configured decoding: none for "model" (the model's own
    generation_config decides, as in the official generate.py), greedy at temperature 0, else pure
    sampling (no top-k)."""
    if cfg.decoding == "model":
        return {}
    if cfg.temperature > 0:
        return dict(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
    return dict(do_sample=False)


def generation_prompt_ids(tokenizer, user: str, cfg: GenerateConfig, system_turn: str = "none") -> list[int]:
    """The prompt as generation shows it: the chat template (after spin.system_turn, as training shows
    it), or generate.prompt_template filled in (tokenized without special tokens, as the official
    generate.py does)."""
    if cfg.prompt_template == "chat":
        return encode_prompt(tokenizer, user, system_turn)
    return list(tokenizer(cfg.prompt_template.replace("{prompt}", user), add_special_tokens=False)["input_ids"])


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, sampling: dict):
    """One left-padded, KV-cached `generate` call; returns the new tokens of each row (padding and
    anything after EOS included), decoding with `sampling` (sampling_kwargs)."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, p in enumerate(prompts):
        input_ids[row, width - len(p) :] = torch.as_tensor(p)
        attention[row, width - len(p) :] = 1
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
        gen = generate_batch(model, tokenizer, [prompt_ids[i] for i in idx], cfg.max_new_tokens, sampling_kwargs(cfg))
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
    if cfg.decoding == "model":  # the model's generation_config, as HF generate() would read it
        params = llm.get_default_sampling_params()
        params.max_tokens, params.seed = cfg.max_new_tokens, seed
    else:
        params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens, seed=seed)
    results = llm.generate([{"prompt_token_ids": p} for p in prompt_ids], params)
    outputs = [list(r.outputs[0].token_ids) for r in results]
    finished = [r.outputs[0].finish_reason == "stop" for r in results]
    return outputs, finished


def generate_for_rows(
    model_dir: str | Path,
    rows: list[dict],
    cfg: GenerateConfig,
    seed: int,
    spin: EncodingConfig,
    stage: str,
    where: str,
):
    """Sample a response to each SFT row's first user turn with the configured backend (HF or vLLM),
    under the prompt rule (train/encoding.bound_prompts: long prompts cut to their last tokens or
    dropped, counted in the log). Returns (tokenizer, the rows kept, token id lists, finished flags)."""
    if cfg.backend == "vllm":
        model, tokenizer = None, load_tokenizer(model_dir)
    else:
        model, tokenizer = load_model(model_dir, dtype=cfg.dtype)
    prompt_ids = [
        generation_prompt_ids(tokenizer, first_exchange(r["messages"], where)[0], cfg, spin.system_turn) for r in rows
    ]
    keep, prompt_ids = bound_prompts(prompt_ids, spin, stage, where)
    rows = [rows[i] for i in keep]
    if model is None:
        return (tokenizer, rows, *vllm_generate(str(model_dir), tokenizer, prompt_ids, cfg, seed))
    return (tokenizer, rows, *hf_generate(model, tokenizer, prompt_ids, cfg, seed))
