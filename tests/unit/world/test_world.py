"""The tiny world's p_data is exact: normalised, sampled at the right frequencies, reproducible."""

import itertools

import numpy as np
import pytest

from spin_core.config import WorldConfig
from spin_core.errors import DataError
from spin_core.world.world import TinyWorld


def all_events(n_words: int, budget: int):
    """Every event under a budget of `budget` tokens: complete responses of < budget words
    (then EOS), and truncated runs of exactly `budget` words."""
    for k in range(budget):
        for words in itertools.product(range(n_words), repeat=k):
            yield np.array(words, dtype=np.int64), True
    for words in itertools.product(range(n_words), repeat=budget):
        yield np.array(words, dtype=np.int64), False


@pytest.mark.parametrize("budget", [1, 3, 5])
def test_probabilities_over_all_responses_sum_to_one(budget):
    world = TinyWorld(WorldConfig(n_words=3, seed=11, length_base=1.0, length_per_prompt_word=0.5))
    prompt = np.array([0, 2, 1])
    events = list(all_events(3, budget))
    logp = world.log_prob([prompt] * len(events), [e[0] for e in events], [e[1] for e in events])
    assert abs(np.exp(logp).sum() - 1.0) < 1e-6


def test_complete_responses_up_to_a_length_plus_survival_sum_to_one():
    # Same identity read as "all complete responses of length <= L, plus P(length > L) = 1",
    # where P(length > L) is computed independently as the mass of all (L+1)-word prefixes.
    world = TinyWorld(WorldConfig(n_words=3, seed=5))
    prompt = np.array([1, 1])
    L = 4
    complete = [np.array(w) for k in range(L + 1) for w in itertools.product(range(3), repeat=k)]
    p_complete = np.exp(world.log_prob([prompt] * len(complete), complete, [True] * len(complete))).sum()
    prefixes = [np.array(w) for w in itertools.product(range(3), repeat=L + 1)]
    p_longer = np.exp(world.log_prob([prompt] * len(prefixes), prefixes, [False] * len(prefixes))).sum()
    assert 0 < p_longer < 1
    assert abs(p_complete + p_longer - 1.0) < 1e-9


def test_sampling_frequencies_match_exact_probabilities():
    world = TinyWorld(WorldConfig(n_words=3, seed=11, length_base=1.0, length_per_prompt_word=0.5))
    prompt = np.array([0, 2, 1])
    budget = 3
    n = 60_000
    rng = np.random.default_rng(0)
    ys, complete = world.sample_responses([prompt] * n, rng, budget)
    counts = {}
    for y, c in zip(ys, complete):
        key = (tuple(y.tolist()), bool(c))
        counts[key] = counts.get(key, 0) + 1
    events = list(all_events(3, budget))
    probs = np.exp(world.log_prob([prompt] * len(events), [e[0] for e in events], [e[1] for e in events]))
    observed = np.array([counts.get((tuple(e[0].tolist()), e[1]), 0) for e in events]) / n
    # Every sampled event is a valid event, and frequencies agree within 5 binomial std errors.
    assert sum(counts.values()) == int(round(observed.sum() * n))
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(observed - probs) <= 5 * se + 1e-4), np.max(np.abs(observed - probs) / (se + 1e-12))


def test_world_is_a_pure_function_of_its_config_and_roundtrips(tmp_path):
    a, b = TinyWorld(WorldConfig(seed=9)), TinyWorld(WorldConfig(seed=9))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != TinyWorld(WorldConfig(seed=10)).fingerprint()
    a.save(tmp_path / "w.json")
    c = TinyWorld.load(tmp_path / "w.json")
    assert c.fingerprint() == a.fingerprint() and c.words == a.words


def test_default_world_has_structure_and_variable_length():
    world = TinyWorld(WorldConfig())
    rng = np.random.default_rng(1)
    prompts = world.sample_prompts(3000, rng)
    ys, complete = world.sample_responses(prompts, rng, 96)
    lengths = np.array([len(y) for y in ys])
    assert complete.all()
    assert lengths.std() > 1.5 and 5 < lengths.mean() < 15
    entropy_per_token = -world.log_prob(prompts, ys, complete).sum() / (lengths + 1).sum()
    # Far below log(41) = 3.7 nats (uniform over words + EOS): there is structure to learn.
    assert 0.5 < entropy_per_token < 2.5
    # Longer prompts ask for longer answers (the length hint).
    plen = np.array([len(p) for p in prompts])
    assert lengths[plen == 5].mean() > lengths[plen == 2].mean() + 3


def test_unknown_word_is_reported(world):
    with pytest.raises(DataError, match="'zzz' is not in the tiny world's vocabulary"):
        world.from_text("ba zzz", where="test.jsonl: row 3")


def test_bad_world_file_is_reported(tmp_path):
    bad = tmp_path / "w.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a tiny-world file"):
        TinyWorld.load(bad)
