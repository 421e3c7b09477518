"""The `generate` stage: one shard of pairs for iteration t, real = the SFT response, generated = a
sample y' from the previous iterate."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..config import EncodingConfig, GenerateConfig
from ..data import first_exchange, load_sft
from ..errors import ConfigError
from ..io import write_table
from .backends import generate_for_rows

log = logging.getLogger(__name__)


def shard_rows(rows: list, shard: int, num_shards: int) -> list:
    """Contiguous slice `shard` of `num_shards` (as the official --data_frac/--frac_len split)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for {num_shards} shards")
    bounds = np.linspace(0, len(rows), num_shards + 1).round().astype(int)
    return rows[bounds[shard] : bounds[shard + 1]]


def generate_shard(
    generate: GenerateConfig,
    spin: EncodingConfig,
    model: Path,
    prompts: Path,
    out: Path,
    iteration: int,
    shard: int = 0,
) -> dict:
    """Sample y' from the previous iterate for one shard of the SFT prompts (pairs of iteration t),
    under iteration t's prompt rule (spin.max_prompt_length, spin.long_prompts)."""
    rows = shard_rows(load_sft(prompts), shard, generate.num_shards)
    seed = names.shard_seed(generate.seed, iteration, shard)
    t0 = time.time()
    where = f"{prompts} (shard {shard} of {generate.num_shards})"
    tokenizer, rows, outputs, finished = generate_for_rows(model, rows, generate, seed, spin, "generate", where)
    texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    meta = {
        "model": str(model),
        "backend": generate.backend,
        "decoding": generate.decoding,
        "prompt_template": generate.prompt_template,
        "temperature": generate.temperature,
        "top_p": generate.top_p,
        "max_new_tokens": generate.max_new_tokens,
        "seed": seed,
        "shard": shard,
        "num_shards": generate.num_shards,
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
    write_table(out, pd.DataFrame.from_records(records))
    elapsed = time.time() - t0
    n_tokens = sum(len(o) for o in outputs)
    log.info(
        "generate: %d responses, %d tokens in %.1fs (%.0f tok/s), %.1f%% finished with EOS",
        len(records), n_tokens, elapsed, n_tokens / max(elapsed, 1e-9), 100 * np.mean(finished or [0]),
    )  # fmt: skip
    return {"n": len(records), "tokens": n_tokens, "seconds": elapsed}


def generate_shards(
    generate: GenerateConfig, spin: EncodingConfig, model: Path, prompts: Path, iteration: int, out: list[Path]
) -> None:
    """Every shard of iteration t's pairs in one job (tiny world): shard k to the k-th --out file, each
    with the seed and rows it has as a job of its own."""
    if len(out) != generate.num_shards:
        raise ConfigError(f"generate: {len(out)} output files for generate.num_shards={generate.num_shards}")
    for shard, path in enumerate(out):
        generate_shard(generate, spin, model, prompts, path, iteration, shard)
