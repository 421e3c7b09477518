"""The reference pass: log-probs of real and generated responses under the frozen previous iterate,
computed once per iteration and stored with the pairs, so training holds one model, not two."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ReferenceConfig
from ..data import load_pairs
from ..errors import ConfigError
from ..io import write_table
from ..modeling import load_model
from .encoding import (
    bound_prompts,
    encode_whole_pair,
    hidden_eos,
    pair_problem,
    screen_rows,
    truncate,
    truncation_counts,
)
from .logprobs import response_logps
from .packing import check_packing_supported, pair_logps
from .precision import forward_context, reference_precision, weights_dtype

log = logging.getLogger(__name__)


def apply_long_prompt_policy(
    rows: list[dict], whole: list[tuple[list[int], list[list[int]]]], spin: ReferenceConfig, where: str
) -> tuple[list[dict], list[tuple[list[int], list[list[int]]]]]:
    """The prompt rule on the pairs (train/encoding.bound_prompts) over their whole encodings: long
    prompts are kept (cut when truncated) or dropped. The pairs file written here is what training
    reads, so a skipped prompt is skipped by training too."""
    keep, _ = bound_prompts([p for p, _ in whole], spin, "reference", where, spin.truncation)
    return [rows[i] for i in keep], [whole[i] for i in keep]


def reference_pass(spin: ReferenceConfig, pairs: list[Path], model: Path, out: Path, base: Path | None = None) -> dict:
    """Score pairs under the frozen reference model (the previous iterate), once per iteration.

    The pair files (this iteration's and, when mixing, the previous one's) are written as one pairs
    file with ref_logp_real / ref_logp_generated, which training reads. With spin.reference_alpha = α
    > 0 (α-SPIN) the reference is the geometric mixture of `model` and `base` (the chain's SFT model):
    each log-prob is (1-α) log p_model + α log p_base, both kept beside it."""
    if spin.reference_alpha > 0 and base is None:
        raise ConfigError("spin.reference_alpha: α-SPIN's reference needs the chain's SFT model (base)")
    rows = []
    for path in pairs:
        rows.extend(load_pairs(path))
    precision = reference_precision(spin)
    ref_model, tokenizer = load_model(model, dtype=weights_dtype(precision))
    where = ", ".join(str(p) for p in pairs)
    rows = screen_rows(rows, lambda r: pair_problem(tokenizer, r), spin.invalid_rows, where)
    whole = [encode_whole_pair(tokenizer, row, spin, f"pairs row {i}") for i, row in enumerate(rows, start=1)]
    rows, whole = apply_long_prompt_policy(rows, whole, spin, where)
    counts = truncation_counts(whole, spin)
    log.info(
        "reference: spin.truncation=%s cuts %d of %d pairs to max_length=%d (the other rule would cut %d);"
        " spin.system_turn=%s, spin.response_tokens=%s", spin.truncation, counts[spin.truncation], len(rows), spin.max_length,
        counts["official" if spin.truncation == "prompt_first" else "prompt_first"], spin.system_turn,
        spin.response_tokens,
    )  # fmt: skip
    encoded = [(p, *cut) for p, cut in (truncate(p, responses, spin) for p, responses in whole)]
    log.info("reference: scoring in %s, as training computes", precision)
    real, generated = _score(ref_model, tokenizer, encoded, spin, precision)
    df = pd.DataFrame.from_records(rows)
    df["ref_logp_real"] = real
    df["ref_logp_generated"] = generated
    if spin.reference_alpha > 0:
        a = spin.reference_alpha
        del ref_model
        base_model, _ = load_model(base, dtype=weights_dtype(precision))
        base_real, base_generated = _score(base_model, tokenizer, encoded, spin, precision)
        df["previous_logp_real"], df["previous_logp_generated"] = real, generated
        df["base_logp_real"], df["base_logp_generated"] = base_real, base_generated
        df["ref_logp_real"] = (1 - a) * np.asarray(real) + a * np.asarray(base_real)
        df["ref_logp_generated"] = (1 - a) * np.asarray(generated) + a * np.asarray(base_generated)
        df["reference_alpha"], df["base_model"] = a, str(base)
        log.info("reference: α-SPIN, %.3g x previous iterate + %.3g x %s", 1 - a, a, base)
    df["reference_model"] = str(model)
    df["reference_precision"] = precision
    write_table(out, df)
    summary = {
        "n_pairs": len(df),
        "from_iterations": sorted(int(x) for x in df["iteration"].unique()) if "iteration" in df else [],
        "mean_ref_logp_real": float(df["ref_logp_real"].mean()),
        "mean_ref_logp_generated": float(df["ref_logp_generated"].mean()),
    }
    log.info("reference: %s", summary)
    return summary


def _score(model, tokenizer, encoded: list, spin: ReferenceConfig, precision: str) -> tuple[list, list]:
    """Each pair's real and generated response log-probs under `model`, in the training precision."""
    with forward_context(precision):
        if spin.packing:
            check_packing_supported(model)
            return pair_logps(
                model, encoded, tokenizer.pad_token_id, spin.ref_batch_size, "reference", hidden_eos(tokenizer, spin)
            )
        prompts = [p for p, _, _ in encoded] * 2
        responses = [r for _, r, _ in encoded] + [g for _, _, g in encoded]
        logps = response_logps(
            model, prompts, responses, tokenizer.pad_token_id, spin.ref_batch_size, "reference",
            hidden_eos(tokenizer, spin),
        )  # fmt: skip
        return logps[: len(encoded)], logps[len(encoded) :]
