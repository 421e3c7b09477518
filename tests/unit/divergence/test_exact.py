"""Exact divergence: the CI arithmetic, and that the estimate tells a trained model from a random one."""

import numpy as np
import pytest

from spin_core.config import DivergenceConfig, EncodingConfig, GenerateConfig, SFTConfig, SpinConfig
from spin_core.divergence.exact import exact_divergence, tokens_to_words, world_token_map
from spin_core.divergence.samples import sample_heldout
from spin_core.errors import DataError
from spin_core.io import write_jsonl, write_table
from spin_core.modeling import save_model, save_tokenizer
from spin_core.train.sft import train_sft
from spin_core.world.sft_data import make_tiny_sft_data


def test_tokens_to_words(world, tokenizer):
    mapping = world_token_map(tokenizer, world)
    ids = tokenizer.convert_tokens_to_ids(["ba", "de"]) + [tokenizer.eos_token_id]
    words, complete = tokens_to_words(ids, tokenizer.eos_token_id, mapping)
    assert complete and words.tolist() == [world.index["ba"], world.index["de"]]
    words, complete = tokens_to_words(ids[:-1], tokenizer.eos_token_id, mapping)
    assert not complete and len(words) == 2
    with pytest.raises(DataError, match="outside the world's alphabet"):
        tokens_to_words([tokenizer.convert_tokens_to_ids("<|user|>")], tokenizer.eos_token_id, mapping)


def test_trained_model_is_closer_to_p_data_than_random_init(tmp_path, world, tokenizer, tiny_model, tiny_arch):
    train, test = make_tiny_sft_data(world, 400, 30, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    world.save(tmp_path / "world.json")
    save_tokenizer(tokenizer, tmp_path / "tok")
    save_model(tiny_model, tokenizer, tmp_path / "random")
    cfg = SFTConfig(architecture=tiny_arch, start="weak", validation_rows=40, learning_rate=3e-3, num_train_epochs=3,
                    per_device_train_batch_size=16)  # fmt: skip
    spin = SpinConfig(max_length=64, max_prompt_length=16)
    train_sft(cfg, spin, tmp_path / "train.jsonl", tmp_path / "tok", tmp_path / "trained", tmp_path / "ck")

    dcfg = DivergenceConfig(n_prompts=30, samples_per_prompt=4, max_new_tokens=40, batch_size=64)
    for name in ("random", "trained"):
        samples = sample_heldout(
            dcfg,
            GenerateConfig(),
            EncodingConfig(max_length=64, max_prompt_length=16),
            tmp_path / name,
            tmp_path / "test.jsonl",
        )
        write_table(tmp_path / f"{name}.parquet", samples)
    rand = exact_divergence(dcfg, tmp_path / "random", tmp_path / "world.json", tmp_path / "random.parquet", "sft")
    good = exact_divergence(dcfg, tmp_path / "trained", tmp_path / "world.json", tmp_path / "trained.parquet", "sft")
    for df in (rand, good):
        assert list(df["metric"]) == ["forward_kl", "reverse_kl"]
        assert np.isfinite(df[["value", "ci_low", "ci_high"]].to_numpy()).all()
    r, g = rand.set_index("metric")["value"], good.set_index("metric")["value"]
    assert g["forward_kl"] < r["forward_kl"] - 5
    assert g["reverse_kl"] < r["reverse_kl"]
    # A KL is non-negative; a Monte Carlo estimate of it can dip below 0 only by noise.
    assert good.set_index("metric").loc["forward_kl", "ci_high"] > 0
