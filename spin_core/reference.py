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

log = logging.getLogger(__name__)


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
    prompts, responses = [], []
    for i, row in enumerate(rows, start=1):
        p, r, g = encode_pair(tokenizer, row, cfg.max_length, cfg.max_prompt_length, where=f"pairs row {i}")
        prompts += [p, p]
        responses += [r, g]
    logps = response_logps(model, prompts, responses, tokenizer.pad_token_id, cfg.ref_batch_size, desc="reference")
    df = pd.DataFrame.from_records(rows)
    df["ref_logp_real"] = logps[0::2]
    df["ref_logp_generated"] = logps[1::2]
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
