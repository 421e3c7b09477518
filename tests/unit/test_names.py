"""The workflow's vocabulary: model names parse back, chains start from the SFT model, paths give the
rules' patterns, and the pair sources follow the mixing rule."""

import pytest

from spin_core import names


def test_parse_model_names():
    assert names.parse_model("sft") == names.ModelName("", -1)
    assert names.parse_model("iter3") == names.ModelName("", 3)
    m = names.parse_model("seed2/iter1")
    assert (m.method, m.seed, m.iteration) == ("spin", "seed2", 1)
    c = names.parse_model("sft_continued/iter0")
    assert (c.method, c.seed, c.iteration) == ("sft_continued", "main", 0)
    s = names.parse_model("seed1/sft")  # a replicate chain's own SFT model
    assert (s.method, s.seed, s.iteration) == ("spin", "seed1", -1)
    for bad in ("iterx", "sft_continued/sft"):  # the control has no SFT model of its own
        with pytest.raises(ValueError, match="not a model name"):
            names.parse_model(bad)


@pytest.mark.parametrize("name", ["sft", "seed2/sft", "iter0", "iter12", "seed3/iter2", "sft_continued/iter1"])
def test_names_round_trip_and_match_the_wildcard(name):
    import re

    assert re.fullmatch(names.MODEL_PATTERN, name)
    m = names.parse_model(name)
    assert (names.sft_model(m.chain) if m.iteration < 0 else names.model_name(m.iteration, m.chain)) == name


def test_previous_model_stays_in_its_chain_and_starts_at_its_sft_model():
    assert names.previous_model("iter0") == "sft"
    assert names.previous_model("iter2") == "iter1"
    assert names.previous_model("seed1/iter0") == "seed1/sft"  # each replicate chain has its own
    assert names.previous_model("sft_continued/iter0") == "sft"  # the control is paired with the main run
    assert names.previous_model("seed1/iter3") == "seed1/iter2"
    assert names.previous_model("sft_continued/iter1") == "sft_continued/iter0"


def test_chain_seeds_are_distinct_and_the_main_run_is_unshifted():
    assert names.seed_chains(3) == ["seed1", "seed2"] and names.seed_chains(1) == []
    assert names.chain_seed_offset("") == 0 and names.chain_seed_offset("sft_continued") == 0
    offsets = {names.chain_seed_offset(c) for c in names.seed_chains(5)}
    assert len(offsets) == 4
    # a chain's shifted seeds never meet another chain's per-iteration/shard seeds
    seeds = [names.shard_seed(42 + o, t, k) for o in offsets | {0} for t in range(10) for k in range(8)]
    assert len(seeds) == len(set(seeds))


@pytest.mark.parametrize("mix, t, sources", [(True, 0, [0]), (True, 2, [1, 2]), (False, 2, [2]), (False, 0, [0])])
def test_pair_sources_follow_the_mixing_rule(mix, t, sources):
    assert names.pair_source_iterations(t, mix) == sources


def test_paths_give_concrete_files_and_rule_patterns():
    assert names.pairs_file(2) == "data/pairs/pairs_iter2.parquet"
    assert names.pairs_file("{t}", "{chain}") == "data/pairs/{chain}/pairs_iter{t}.parquet"
    assert names.generated_shards(1, 2, "seed1") == [
        "data/generated/seed1/iter1/shard0-of-2.parquet",
        "data/generated/seed1/iter1/shard1-of-2.parquet",
    ]
    assert names.model_dir(names.model_name("{t}", "{chain}")) == "models/{chain}/iter{t}"
    assert names.cell_name(0.1, 1e-4, 3.0) == "beta0.1_lr0.0001_ep3"
