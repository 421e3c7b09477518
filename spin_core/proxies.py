"""Paper-scale divergence proxies (p_data unknown), computed the same way at both scales.

- held-out NLL of the human responses, per response and per token: NLL = H(p_data) + forward KL
  with H constant across iterations, so its change across iterations is the change in forward KL;
- held-out real-vs-generated pairs scored with the SPIN reward of the iteration that produced the
  model, r(y) = beta * (log p_t(y) - log p_{t-1}(y)), y' sampled from p_{t-1}: accuracy
  P[r(y) > r(y')] and mean margin; at the fixed point p_t = p_{t-1} = p_data they are 1/2 and 0;
- length and distinct-n of the model's own held-out samples beside the human responses'.
The pure functions are tested against hand counts; `divergence_proxies` is the per-model job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DivergenceConfig, SpinConfig
from .data import first_exchange, load_sft
from .divergence import DIVERGENCE_COLUMNS, clustered_mean_ci
from .errors import DataError
from .logprobs import encode_prompt, encode_response, response_logps, truncate_pair

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- pure statistics
def distinct_n(sequences: Sequence[Sequence], n: int) -> float:
    """Corpus distinct-n: unique n-grams / all n-grams over the sequences (nan if none)."""
    grams = [tuple(s[i : i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def real_vs_generated(
    logp_real: np.ndarray, ref_real: np.ndarray, logp_gen: np.ndarray, ref_gen: np.ndarray, beta: float
) -> np.ndarray:
    """SPIN reward margins beta * [(log p(y) - log p_ref(y)) - (log p(y') - log p_ref(y'))]."""
    return beta * ((np.asarray(logp_real) - np.asarray(ref_real)) - (np.asarray(logp_gen) - np.asarray(ref_gen)))


def _row(model, iteration, metric, values):
    """A tidy row; values shaped (prompts, samples) get a prompt-clustered 95% CI."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 0:
        return dict(
            model=model, iteration=iteration, metric=metric, value=float(values), ci_low=np.nan, ci_high=np.nan, n=1
        )
    mean, lo, hi = clustered_mean_ci(values)
    return dict(model=model, iteration=iteration, metric=metric, value=mean, ci_low=lo, ci_high=hi, n=int(values.size))


# ---------------------------------------------------------------- the job
def _human_examples(test_path, prompt_ids_in_order, tok, spin: SpinConfig):
    by_id = {r["prompt_id"]: r for r in load_sft(test_path)}
    prompts, responses = [], []
    for pid in prompt_ids_in_order:
        if pid not in by_id:
            raise DataError(f"{test_path}: held-out prompt_id {pid!r} from the samples file is missing")
        user, assistant = first_exchange(by_id[pid]["messages"], f"{test_path}: prompt_id {pid}")
        p, r = truncate_pair(
            encode_prompt(tok, user), encode_response(tok, assistant), spin.max_length, spin.max_prompt_length
        )
        prompts.append(p)
        responses.append(r)
    return prompts, responses


def divergence_proxies(
    model_dir: str | Path,
    samples_path: str | Path,
    test_path: str | Path,
    cfg: DivergenceConfig,
    spin: SpinConfig,
    model_name: str,
    iteration: int,
    ref_model_dir: str | Path | None = None,
    ref_samples_path: str | Path | None = None,
) -> pd.DataFrame:
    """Proxy rows for one model. The real-vs-generated rows need the previous iterate and its
    held-out samples (ref_*); without them (the SFT model) they are left out."""
    from .heldout import read_samples
    from .modeling import load_model

    model, tok = load_model(model_dir)
    k = cfg.samples_per_prompt
    own = read_samples(samples_path, k)
    n_prompts = len(own) // k
    prompt_order = [own[i * k]["prompt_id"] for i in range(n_prompts)]
    rows = []

    # Held-out NLL of the human responses (one per prompt).
    h_prompts, h_responses = _human_examples(test_path, prompt_order, tok, spin)
    nll = -np.array(response_logps(model, h_prompts, h_responses, tok.pad_token_id, cfg.batch_size, "held-out NLL"))
    lengths = np.array([len(r) for r in h_responses], dtype=float)
    rows.append(_row(model_name, iteration, "heldout_nll", nll[:, None]))
    rows.append(_row(model_name, iteration, "heldout_nll_per_token", (nll / lengths)[:, None]))

    # Generations vs human responses: length (tokens, EOS excluded) and distinct-n.
    eos = tok.eos_token_id
    gen = [[t for t in r["response_ids"] if t != eos] for r in own]
    human = [[t for t in r if t != eos] for r in h_responses]
    rows.append(_row(model_name, iteration, "gen_length", np.array([len(g) for g in gen], float).reshape(n_prompts, k)))
    rows.append(_row(model_name, iteration, "human_length", np.array([len(h) for h in human], float)[:, None]))
    for n in (1, 2):
        rows.append(_row(model_name, iteration, f"gen_distinct_{n}", distinct_n(gen, n)))
        rows.append(_row(model_name, iteration, f"human_distinct_{n}", distinct_n(human, n)))

    # Real vs generated on held-out pairs, with the reward of the iteration that made this model.
    if ref_model_dir is not None and ref_samples_path is not None:
        ref_model, _ = load_model(ref_model_dir)
        ref_samples = read_samples(ref_samples_path, k)
        by_prompt = {}
        for r in ref_samples:
            by_prompt.setdefault(r["prompt_id"], []).append(r)
        g_prompts, g_responses = [], []
        for pid, p in zip(prompt_order, h_prompts):
            if len(by_prompt.get(pid, [])) != k:
                raise DataError(f"{ref_samples_path}: expected {k} samples for prompt_id {pid!r}")
            for r in by_prompt[pid]:
                g_prompts.append(p)
                g_responses.append([int(t) for t in r["response_ids"]])
        rep = lambda a: np.repeat(np.asarray(a), k)  # noqa: E731  one real response per sample
        ref_real = response_logps(ref_model, h_prompts, h_responses, tok.pad_token_id, cfg.batch_size, "real (ref)")
        logp_gen = response_logps(model, g_prompts, g_responses, tok.pad_token_id, cfg.batch_size, "generated")
        ref_gen = response_logps(ref_model, g_prompts, g_responses, tok.pad_token_id, cfg.batch_size, "generated (ref)")
        margins = real_vs_generated(rep(-nll), rep(ref_real), logp_gen, ref_gen, spin.beta).reshape(n_prompts, k)
        rows.append(_row(model_name, iteration, "rv_accuracy", (margins > 0).astype(float)))
        rows.append(_row(model_name, iteration, "rv_margin", margins))
    for r in rows:
        log.info("%s %s = %.4f [%.4f, %.4f]", model_name, r["metric"], r["value"], r["ci_low"], r["ci_high"])
    return pd.DataFrame(rows, columns=DIVERGENCE_COLUMNS)
