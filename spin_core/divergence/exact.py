"""Exact divergences to p_data on the tiny world: forward KL E_{y~p_data}[log p_data - log p_theta]
and reverse KL E_{y~p_theta}[log p_theta - log p_data], Monte Carlo over responses, per prompt.

Both are taken over responses read with a budget of T tokens (see world.py): each event is scored
exactly under both distributions, so the estimate is of the KL between the T-truncated response
distributions, a lower bound of the full KL that equals it when no sample hits the budget.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DivergenceConfig
from ..errors import DataError
from ..io import write_table
from ..modeling import load_model
from ..train.encoding import encode_prompt
from ..train.logprobs import response_logps
from ..world.world import TinyWorld
from .samples import read_samples
from .tidy import DIVERGENCE_COLUMNS, per_prompt_frame, tidy_row

log = logging.getLogger(__name__)


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


def score_samples(model: Path, samples: Path, samples_per_prompt: int, batch_size: int) -> np.ndarray:
    """log p_model of every held-out sample in a samples file (another model's samples, say)."""
    policy, tok = load_model(model)
    rows = read_samples(samples, samples_per_prompt)
    prompt_ids = [encode_prompt(tok, r["prompt"]) for r in rows]
    outs = [[int(t) for t in r["response_ids"]] for r in rows]
    return np.array(response_logps(policy, prompt_ids, outs, tok.pad_token_id, batch_size, "cross scoring"))


def _keep_scores(name, prompt_rows, forward_out, reverse_out, per_prompt_out, logp_data, logp_model, logp_own, kls):
    """What exact_divergence keeps beside its rows, where a path is given: the per-response log p_data
    and log p_model of the forward-KL responses, log p_model of the model's own samples, and the
    per-prompt KLs (`kls`: metric -> (prompts, samples) array)."""
    prompt_index = np.repeat(np.arange(len(prompt_rows)), len(logp_data) // len(prompt_rows))
    if forward_out is not None:
        write_table(
            forward_out, pd.DataFrame({"prompt": prompt_index, "logp_data": logp_data, "logp_model": logp_model})
        )
    if reverse_out is not None:
        write_table(reverse_out, pd.DataFrame({"prompt": prompt_index, "logp_model": logp_own}))
    if per_prompt_out is not None:
        write_table(per_prompt_out, per_prompt_frame(name, [r["prompt_id"] for r in prompt_rows], kls))


def exact_divergence(
    divergence: DivergenceConfig,
    model: Path,
    world: Path,
    samples: Path,
    name: str,
    forward_out: Path | None = None,
    per_prompt_out: Path | None = None,
    reverse_out: Path | None = None,
) -> pd.DataFrame:
    """Exact forward and reverse KL of one model to p_data on the held-out prompts (tiny world).

    The reverse-KL responses are the model's held-out samples (divergence/samples.py, shared with the
    proxies); the forward-KL responses are drawn from the world here, with divergence.seed, so every
    model is scored on the same ones. Tidy rows, one per metric; forward_out, if given, gets the
    per-response log p_data and log p_model of the forward-KL responses (the realised step uses them);
    per_prompt_out the per-prompt means of both KLs, keyed by prompt id, for paired comparisons;
    reverse_out the model's log-probability of each of its own held-out samples (for the margin).
    """
    tiny = TinyWorld.load(world)
    policy, tok = load_model(model)
    k = divergence.samples_per_prompt
    rows = read_samples(samples, k)
    n_prompts = len(rows) // k
    prompt_words = [tiny.from_text(r["prompt"], f"{samples}: prompt") for r in rows]
    prompt_ids = [encode_prompt(tok, r["prompt"]) for r in rows]

    def logp_policy(responses, desc):
        return np.array(response_logps(policy, prompt_ids, responses, tok.pad_token_id, divergence.batch_size, desc))

    # Forward KL: responses from the world, scored by both.
    rng = np.random.default_rng(divergence.seed)
    ys, complete = tiny.sample_responses(prompt_words, rng, divergence.max_new_tokens)
    token_of = {i: tok.convert_tokens_to_ids(w) for i, w in enumerate(tiny.words)}
    data_ids = [[token_of[int(w)] for w in y] + ([tok.eos_token_id] if c else []) for y, c in zip(ys, complete)]
    logp_data, logp_model = tiny.log_prob(prompt_words, ys, complete), logp_policy(data_ids, "forward KL")
    forward = logp_data - logp_model

    # Reverse KL: responses from the model, scored by both.
    outs = [[int(t) for t in r["response_ids"]] for r in rows]
    token_map = world_token_map(tok, tiny)
    words, done = zip(*(tokens_to_words(o, tok.eos_token_id, token_map) for o in outs))
    logp_own = logp_policy(outs, "reverse KL")
    reverse = logp_own - tiny.log_prob(prompt_words, list(words), np.array(done))

    log.info(
        "%s: %d prompts x %d samples; truncated at %d tokens: data %.2f%%, model %.2f%%; "
        "mean length data %.1f, model %.1f",
        name, n_prompts, k, divergence.max_new_tokens, 100 * (1 - complete.mean()), 100 * (1 - np.mean(done)),
        np.mean([len(y) for y in ys]), np.mean([len(w) for w in words]),
    )  # fmt: skip
    forward, reverse = forward.reshape(n_prompts, k), reverse.reshape(n_prompts, k)
    _keep_scores(name, rows[::k], forward_out, reverse_out, per_prompt_out, logp_data, logp_model, logp_own,
                 {"forward_kl": forward, "reverse_kl": reverse})  # fmt: skip
    out = [tidy_row(name, "forward_kl", forward), tidy_row(name, "reverse_kl", reverse)]
    return pd.DataFrame(out, columns=DIVERGENCE_COLUMNS)
