"""The memorisation gap: log p(y_train) - log p(y_new) per prompt, paired, under a model and under p_data."""

import numpy as np
import pandas as pd
import pytest

from spin_core.config import SpinConfig
from spin_core.divergence.memorisation import chain_memorisation, fresh_responses, memorisation_gap
from spin_core.io import write_jsonl
from spin_core.modeling import save_model
from spin_core.world.sft_data import DATA_MAX_TOKENS, make_tiny_sft_data

SPIN = SpinConfig(max_length=48, max_prompt_length=12)


@pytest.fixture
def chain(tmp_path, world, tokenizer, tiny_model):
    train, _ = make_tiny_sft_data(world, 24, 2, seed=5)
    write_jsonl(tmp_path / "prompts.jsonl", train)
    world.save(tmp_path / "world.json")
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    return tmp_path, train


def test_fresh_responses_are_seeded_and_drawn_from_p_data(world):
    prompts = [world.to_text(p) for p in world.sample_prompts(6, np.random.default_rng(0))]
    a, done_a = fresh_responses(world, prompts, 3, DATA_MAX_TOKENS)
    b, done_b = fresh_responses(world, prompts, 3, DATA_MAX_TOKENS)
    c, _ = fresh_responses(world, prompts, 4, DATA_MAX_TOKENS)
    assert a == b and list(done_a) == list(done_b) and a != c
    assert done_a.all()  # the data's own budget


def test_gap_is_paired_per_prompt_and_p_datas_gap_is_the_exact_difference(chain, world):
    d, train = chain
    out = memorisation_gap(d / "sft", d / "world.json", d / "prompts.jsonl", SPIN, seed=1, max_tokens=DATA_MAX_TOKENS,
                           batch_size=8)  # fmt: skip
    assert out["prompts"] == 24 and out["dropped_incomplete"] == 0
    assert out["gap_ci_low"] <= out["gap"] <= out["gap_ci_high"]
    users = [r["messages"][0]["content"] for r in train]
    fresh, _ = fresh_responses(world, users, 1, DATA_MAX_TOKENS)
    words = lambda texts: [world.from_text(t) for t in texts]  # noqa: E731
    ones = np.ones(len(users), dtype=bool)
    trained = [r["messages"][1]["content"] for r in train]
    exact = world.log_prob(words(users), words(trained), ones) - world.log_prob(words(users), words(fresh), ones)
    assert out["data_gap"] == pytest.approx(float(np.mean(exact)), rel=1e-9)


def test_chain_memorisation_keeps_each_models_gap_and_reuses_it(chain):
    d, _ = chain
    work = d / "work"
    work.mkdir()
    first = chain_memorisation(work, {"sft": d / "sft"}, d / "world.json", d / "prompts.jsonl", SPIN, 1, 8)
    stamp = (work / "memorisation_sft.json").stat().st_mtime_ns
    again = chain_memorisation(work, {"sft": d / "sft"}, d / "world.json", d / "prompts.jsonl", SPIN, 1, 8)
    assert (work / "memorisation_sft.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first, again)
    assert {"model", "prompts", "dropped_incomplete", "gap", "data_gap"} <= set(first.columns)
