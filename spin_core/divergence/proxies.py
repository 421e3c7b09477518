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
from typing import Annotated

import numpy as np
import pandas as pd

from ..config import DivergenceConfig, EncodingConfig
from ..data import first_exchange, load_sft
from ..errors import ConfigError, DataError
from ..io import write_table
from ..modeling import load_model
from ..train.encoding import (
    EMPTY_RESPONSE,
    bound_prompts,
    encode_prompt,
    encode_response,
    sft_row_problem,
    truncate,
)
from ..train.logprobs import response_logps
from .samples import read_samples
from .tidy import DIVERGENCE_COLUMNS, per_prompt_frame, tidy_row

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


# ---------------------------------------------------------------- the job
def _human_examples(test_path, prompt_ids_in_order, tok, spin: EncodingConfig):
    by_id = {r["prompt_id"]: r for r in load_sft(test_path)}
    whole = []
    for pid in prompt_ids_in_order:
        if pid not in by_id:
            raise DataError(f"{test_path}: held-out prompt_id {pid!r} from the samples file is missing")
        problem = sft_row_problem(tok, by_id[pid])
        if problem and problem != EMPTY_RESPONSE:  # the held-out rows are a fixed set: none is dropped
            raise DataError(f"{test_path}: prompt_id {pid}: {problem}")
        user, assistant = first_exchange(by_id[pid]["messages"], f"{test_path}: prompt_id {pid}")
        whole.append((encode_prompt(tok, user, spin.system_turn), encode_response(tok, assistant)))
    # The held-out samples were drawn under the prompt rule: their prompts are the ones it keeps.
    bound_prompts([p for p, _ in whole], spin, "proxies", str(test_path), spin.truncation)
    cut = [truncate(p, [r], spin) for p, r in whole]
    return [p for p, _ in cut], [r for _, (r,) in cut]


def _held_out_margins(policy, tok, human, ref_path, ref_samples, prompt_order, k, cfg, beta):
    """SPIN reward margins on held-out pairs (prompts, k): the human response against each of the
    reference's k samples, with the reward of the iteration that made `policy` from the reference.
    human: the prompts, human responses and their log-probs under `policy`, in prompt_order."""
    h_prompts, h_responses, logp_real = human
    ref_model, _ = load_model(ref_path)
    by_prompt = {}
    for r in read_samples(ref_samples, k):
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    g_prompts, g_responses = [], []
    for pid, p in zip(prompt_order, h_prompts):
        if len(by_prompt.get(pid, [])) != k:
            raise DataError(f"{ref_samples}: expected {k} samples for prompt_id {pid!r}")
        for r in by_prompt[pid]:
            g_prompts.append(p)
            g_responses.append([int(t) for t in r["response_ids"]])

    def logps(model, prompts, responses, desc):
        return response_logps(model, prompts, responses, tok.pad_token_id, cfg.batch_size, desc)

    rep = lambda a: np.repeat(np.asarray(a), k)  # noqa: E731  one real response per sample
    ref_real = logps(ref_model, h_prompts, h_responses, "real (ref)")
    logp_gen = logps(policy, g_prompts, g_responses, "generated")
    ref_gen = logps(ref_model, g_prompts, g_responses, "generated (ref)")
    return real_vs_generated(rep(logp_real), rep(ref_real), logp_gen, ref_gen, beta).reshape(len(prompt_order), k)


def divergence_proxies(
    divergence: DivergenceConfig,
    spin: EncodingConfig,
    model: Path,
    samples: Path,
    test: Path,
    name: str,
    ref_model: Path | None = None,
    ref_samples: Path | None = None,
    beta: Annotated[float | None, "the real-vs-generated margin's beta (that of the step that made the model)"] = None,
    per_prompt_out: Path | None = None,
) -> pd.DataFrame:
    """The paper-scale divergence proxies of one model, as tidy rows.

    The real-vs-generated rows need the previous iterate, its held-out samples (ref_*) and the beta of
    the step that made this model; the SFT model has none, and its measures read no beta (a new beta
    reruns no SFT job). per_prompt_out: each prompt's held-out NLL (per response and per token), keyed
    by prompt id, for the paired comparisons across iterations."""
    if (ref_model is None) != (ref_samples is None) or (ref_model is None) != (beta is None):
        raise ConfigError("proxies: the real-vs-generated margin needs --ref-model, --ref-samples and --beta together")
    policy, tok = load_model(model)
    k = divergence.samples_per_prompt
    own = read_samples(samples, k)
    n_prompts = len(own) // k
    prompt_order = [own[i * k]["prompt_id"] for i in range(n_prompts)]

    # Held-out NLL of the human responses (one per prompt).
    h_prompts, h_responses = _human_examples(test, prompt_order, tok, spin)
    logp_real = np.array(
        response_logps(policy, h_prompts, h_responses, tok.pad_token_id, divergence.batch_size, "held-out NLL")
    )
    lengths = np.array([len(r) for r in h_responses], dtype=float)
    values = {"heldout_nll": -logp_real[:, None], "heldout_nll_per_token": (-logp_real / lengths)[:, None]}
    rows = [tidy_row(name, metric, v) for metric, v in values.items()]
    if per_prompt_out is not None:
        write_table(per_prompt_out, per_prompt_frame(name, prompt_order, values))

    # Generations vs human responses: length (tokens, EOS excluded) and distinct-n.
    eos = tok.eos_token_id
    gen = [[t for t in r["response_ids"] if t != eos] for r in own]
    human = [[t for t in r if t != eos] for r in h_responses]
    rows.append(tidy_row(name, "gen_length", np.array([len(g) for g in gen], float).reshape(n_prompts, k)))
    rows.append(tidy_row(name, "human_length", np.array([len(h) for h in human], float)[:, None]))
    for n in (1, 2):
        rows.append(tidy_row(name, f"gen_distinct_{n}", distinct_n(gen, n)))
        rows.append(tidy_row(name, f"human_distinct_{n}", distinct_n(human, n)))

    if ref_model is not None:
        human = (h_prompts, h_responses, logp_real)
        margins = _held_out_margins(policy, tok, human, ref_model, ref_samples, prompt_order, k, divergence, beta)
        rows.append(tidy_row(name, "rv_accuracy", (margins > 0).astype(float)))
        rows.append(tidy_row(name, "rv_margin", margins))
    return pd.DataFrame(rows, columns=DIVERGENCE_COLUMNS)
