"""The reference pass: log-probs of real and generated responses under the frozen previous iterate,
computed once per iteration and stored with the pairs, so training holds one model, not two."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .config import SpinConfig
from .data import load_pairs
from .io import write_table
from .logprobs import encode_pair, response_logps
from .packing import check_packing_supported, pair_logps

log = logging.getLogger(__name__)


def apply_long_prompt_policy(rows: list[dict], tokenizer, cfg: SpinConfig, where: str) -> list[dict]:
    """Count prompts longer than max_prompt_length; keep them (truncated later to their last
    tokens) or drop them, as spin.long_prompts says. The pairs file written here is what training
    reads, so a skipped prompt is skipped by training too."""
    from .data import first_exchange
    from .errors import DataError
    from .logprobs import encode_prompt

    long = [len(encode_prompt(tokenizer, first_exchange(r["real"], where)[0])) > cfg.max_prompt_length for r in rows]
    n_long = sum(long)
    if n_long:
        action = "skipped" if cfg.long_prompts == "skip" else f"truncated to their last {cfg.max_prompt_length} tokens"
        log.warning(
            "reference: %d of %d prompts are longer than spin.max_prompt_length=%d: %s (spin.long_prompts)",
            n_long, len(rows), cfg.max_prompt_length, action,
        )  # fmt: skip
    if cfg.long_prompts == "skip":
        rows = [r for r, is_long in zip(rows, long) if not is_long]
        if not rows:
            raise DataError(f"{where}: every prompt is longer than spin.max_prompt_length={cfg.max_prompt_length}")
    return rows


def reference_pass(
    pair_files: list[str | Path],
    model_dir: str | Path,
    out_path: str | Path,
    cfg: SpinConfig,
    dtype: str = "float32",
) -> dict:
    """Concatenate the pair files (this iteration's and, if mixing, the previous one's), score them."""
    from .modeling import load_model

    rows = []
    for path in pair_files:
        rows.extend(load_pairs(path))
    model, tokenizer = load_model(model_dir, dtype=dtype)
    rows = apply_long_prompt_policy(rows, tokenizer, cfg, ", ".join(str(p) for p in pair_files))
    encoded = [
        encode_pair(tokenizer, row, cfg.max_length, cfg.max_prompt_length, where=f"pairs row {i}")
        for i, row in enumerate(rows, start=1)
    ]
    if cfg.packing:
        check_packing_supported(model)
        real, generated = pair_logps(model, encoded, tokenizer.pad_token_id, cfg.ref_batch_size, desc="reference")
    else:
        prompts = [p for p, _, _ in encoded] * 2
        responses = [r for _, r, _ in encoded] + [g for _, _, g in encoded]
        logps = response_logps(model, prompts, responses, tokenizer.pad_token_id, cfg.ref_batch_size, "reference")
        real, generated = logps[: len(encoded)], logps[len(encoded) :]
    df = pd.DataFrame.from_records(rows)
    df["ref_logp_real"] = real
    df["ref_logp_generated"] = generated
    df["reference_model"] = str(model_dir)
    write_table(out_path, df)
    summary = {
        "n_pairs": len(df),
        "from_iterations": sorted(int(x) for x in df["iteration"].unique()) if "iteration" in df else [],
        "mean_ref_logp_real": float(df["ref_logp_real"].mean()),
        "mean_ref_logp_generated": float(df["ref_logp_generated"].mean()),
    }
    log.info("reference: %s", summary)
    return summary
