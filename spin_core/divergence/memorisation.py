"""Where a long chain settles (issue #24, item 3): the mass a model puts on the responses it was trained
on against fresh p_data samples for the same prompts.

A chain trains on a fixed set of prompts with one human response each (y ~ p_data, drawn once when
the data were made). For each of those prompts a fresh y_new ~ p_data is drawn (seeded, the same for
every model of the chain). Per prompt, gap = log p(y_train | x) - log p(y_new | x): its mean is 0 up
to sampling noise for any model that has not seen y_train (p_data's own gap is the noise baseline),
and grows as the model moves mass onto the empirical distribution of its training responses. The
two responses of a prompt differ in length, so the gap also carries log p_data's length terms; p_data's
own gap, on the same responses, is the reference it is read against.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SpinConfig
from ..data import first_exchange, load_sft
from ..io import read_json, write_json
from ..modeling import load_model
from ..stats import paired_bootstrap_ci
from ..train.encoding import encode_prompt, encode_response, truncate
from ..train.logprobs import response_logps
from ..world.sft_data import DATA_MAX_TOKENS
from ..world.world import TinyWorld

log = logging.getLogger(__name__)


def fresh_responses(world: TinyWorld, prompts: list[str], seed: int, max_tokens: int) -> tuple[list[str], np.ndarray]:
    """One fresh p_data response per prompt (text) and whether it ended within max_tokens (the data's
    own budget by default: the training responses were drawn with it)."""
    words, complete = world.sample_responses(
        [world.from_text(p, "prompt") for p in prompts], np.random.default_rng(seed), max_tokens
    )
    return [world.to_text(w) for w in words], complete


def memorisation_gap(
    model: Path, world_path: Path, prompts: Path, spin: SpinConfig, seed: int, max_tokens: int, batch_size: int
) -> dict:
    """Mean log p(y_train) - log p(y_new) under `model` and under p_data, paired by prompt (95% CIs),
    over the prompts whose fresh response ended within max_tokens."""
    world = TinyWorld.load(world_path)
    rows = load_sft(prompts)
    exchanges = [first_exchange(r["messages"], f"{prompts}: prompt_id {r['prompt_id']}") for r in rows]
    users, trained = [u for u, _ in exchanges], [a for _, a in exchanges]
    fresh, complete = fresh_responses(world, users, seed, max_tokens)
    keep = np.flatnonzero(complete)
    policy, tok = load_model(model)

    def logps(responses: list[str], desc: str) -> np.ndarray:
        whole = [(encode_prompt(tok, users[i], spin.system_turn), encode_response(tok, responses[i])) for i in keep]
        cut = [truncate(p, [r], spin) for p, r in whole]
        return np.asarray(response_logps(policy, [p for p, _ in cut], [r for _, (r,) in cut], tok.pad_token_id,
                                         batch_size, desc))  # fmt: skip

    gap = logps(trained, "trained responses") - logps(fresh, "fresh p_data responses")
    as_words = lambda texts: [world.from_text(texts[i], "response") for i in keep]  # noqa: E731
    prompt_words = [world.from_text(users[i], "prompt") for i in keep]
    ones = np.ones(len(keep), dtype=bool)
    data_gap = world.log_prob(prompt_words, as_words(trained), ones) - world.log_prob(
        prompt_words, as_words(fresh), ones
    )
    mean, lo, hi = paired_bootstrap_ci(pd.Series(gap))
    d_mean, d_lo, d_hi = paired_bootstrap_ci(pd.Series(data_gap))
    return {"prompts": int(len(keep)), "dropped_incomplete": int(len(rows) - len(keep)),
            "gap": mean, "gap_ci_low": lo, "gap_ci_high": hi,
            "data_gap": d_mean, "data_gap_ci_low": d_lo, "data_gap_ci_high": d_hi}  # fmt: skip


def chain_memorisation(
    work: Path, models: dict[str, Path], world: Path, prompts: Path, spin: SpinConfig, seed: int, batch_size: int,
    max_tokens: int = DATA_MAX_TOKENS,
) -> pd.DataFrame:  # fmt: skip
    """The gap of every model of a chain (label -> model folder), each kept in the work folder so a
    rerun scores only the models it lacks."""
    rows = []
    for label, model in models.items():
        path = work / f"memorisation_{label}.json"
        if not path.exists():
            write_json(path, memorisation_gap(model, world, prompts, spin, seed, max_tokens, batch_size))
        rows.append({"model": label, **read_json(path)})
        log.info("memorisation %s: gap %.3f nats (p_data's %.3f)", label, rows[-1]["gap"], rows[-1]["data_gap"])
    return pd.DataFrame(rows)
