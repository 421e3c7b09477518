"""Exact divergences to p_data on the tiny world: forward KL E_{y~p_data}[log p_data - log p_theta]
and reverse KL E_{y~p_theta}[log p_theta - log p_data], Monte Carlo over responses, per prompt.

Both are taken over responses read with a budget of T tokens (see world.py): each event is scored
exactly under both distributions, so the estimate is of the KL between the T-truncated response
distributions, a lower bound of the full KL that equals it when no sample hits the budget.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DivergenceConfig
from .errors import DataError
from .logprobs import encode_prompt, response_logps
from .world import TinyWorld

log = logging.getLogger(__name__)

DIVERGENCE_COLUMNS = ["model", "iteration", "metric", "value", "ci_low", "ci_high", "n"]


def clustered_mean_ci(values: np.ndarray, z: float = 1.959964) -> tuple[float, float, float]:
    """Mean and 95% CI of a (prompts, samples) array, with prompts as the independent units.

    Samples that share a prompt are correlated, so the standard error comes from the per-prompt
    means rather than from all samples as if independent.
    """
    values = np.asarray(values, dtype=float)
    per_prompt = values.mean(axis=1)
    mean = float(per_prompt.mean())
    if len(per_prompt) < 2:
        return mean, -math.inf, math.inf
    se = float(per_prompt.std(ddof=1) / math.sqrt(len(per_prompt)))
    return mean, mean - z * se, mean + z * se


def world_token_map(tokenizer, world: TinyWorld) -> dict[int, int]:
    """Tokenizer id -> world word index (the tokenizer is one token per world word)."""
    mapping = {}
    for i, w in enumerate(world.words):
        tid = tokenizer.convert_tokens_to_ids(w)
        if tid is None or tid == tokenizer.unk_token_id:
            raise DataError(f"tokenizer: world word {w!r} has no token; model and world do not match")
        mapping[tid] = i
    return mapping


def tokens_to_words(ids: list[int], eos_id: int, token_map: dict[int, int]) -> tuple[np.ndarray, bool]:
    complete = bool(ids) and ids[-1] == eos_id
    body = ids[:-1] if complete else ids
    try:
        return np.array([token_map[t] for t in body], dtype=np.int64), complete
    except KeyError as e:
        raise DataError(f"a sampled response holds token id {e.args[0]}, outside the world's alphabet") from None


def exact_divergence(
    model_dir: str | Path,
    world_path: str | Path,
    samples_path: str | Path,
    cfg: DivergenceConfig,
    model_name: str,
    iteration: int,
) -> pd.DataFrame:
    """Forward and reverse KL of one model to p_data on held-out prompts, as tidy rows.

    The reverse-KL responses are the model's held-out samples (heldout.py, one file per model,
    shared with the proxies); the forward-KL responses are drawn from the world here.
    """
    from .heldout import read_samples
    from .modeling import load_model

    world = TinyWorld.load(world_path)
    model, tok = load_model(model_dir)
    k = cfg.samples_per_prompt
    samples = read_samples(samples_path, k)
    n_prompts, budget = len(samples) // k, cfg.max_new_tokens
    prompt_words = [world.from_text(r["prompt"], f"{samples_path}: prompt") for r in samples]
    prompt_ids = [encode_prompt(tok, r["prompt"]) for r in samples]
    token_of = {i: tok.convert_tokens_to_ids(w) for i, w in enumerate(world.words)}
    rng = np.random.default_rng(cfg.seed)

    # Forward KL: responses from the world, scored by both.
    ys, complete = world.sample_responses(prompt_words, rng, budget)
    logp_data = world.log_prob(prompt_words, ys, complete)
    response_ids = [[token_of[int(w)] for w in y] + ([tok.eos_token_id] if c else []) for y, c in zip(ys, complete)]
    logp_model = np.array(
        response_logps(model, prompt_ids, response_ids, tok.pad_token_id, cfg.batch_size, "forward KL")
    )
    forward = (logp_data - logp_model).reshape(n_prompts, k)

    # Reverse KL: responses from the model, scored by both.
    outs = [[int(t) for t in r["response_ids"]] for r in samples]
    token_map = world_token_map(tok, world)
    words, done = zip(*(tokens_to_words(o, tok.eos_token_id, token_map) for o in outs))
    logp_model_rev = np.array(response_logps(model, prompt_ids, outs, tok.pad_token_id, cfg.batch_size, "reverse KL"))
    logp_data_rev = world.log_prob(prompt_words, list(words), np.array(done))
    reverse = (logp_model_rev - logp_data_rev).reshape(n_prompts, k)

    log.info(
        "%s: %d prompts x %d samples; truncated at %d tokens: data %.2f%%, model %.2f%%; mean length data %.1f, model %.1f",
        model_name,
        n_prompts,
        k,
        budget,
        100 * (1 - complete.mean()),
        100 * (1 - np.mean(done)),
        np.mean([len(y) for y in ys]),
        np.mean([len(w) for w in words]),
    )
    out = []
    for metric, values in (("forward_kl", forward), ("reverse_kl", reverse)):
        mean, lo, hi = clustered_mean_ci(values)
        out.append(
            {
                "model": model_name,
                "iteration": iteration,
                "metric": metric,
                "value": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n": int(values.size),
            }
        )
        log.info("%s %s = %.4f nats [%.4f, %.4f]", model_name, metric, mean, lo, hi)
    return pd.DataFrame(out, columns=DIVERGENCE_COLUMNS)
