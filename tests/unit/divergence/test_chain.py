"""A chain job (map cell, recipe run): it reuses finished iterations only when its inputs are unchanged."""

import json

from spin_core.config import DivergenceConfig, GenerateConfig, MapConfig, SpinConfig
from spin_core.divergence.chain import inputs_stamp


def test_map_cell_inputs_stamp_changes_with_the_sft_model(tmp_path):
    """A convergence-map cell reuses finished iterations only when its inputs are unchanged."""
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "model.safetensors").write_bytes(b"weights-a")
    (tmp_path / "train.jsonl").write_text("{}\n")
    sections = (MapConfig(), SpinConfig(), GenerateConfig(), DivergenceConfig())
    files = (tmp_path / "sft", tmp_path / "train.jsonl", tmp_path / "train.jsonl")
    first = inputs_stamp([0.1, 1e-4, 1.0], sections, *files)
    assert inputs_stamp((0.1, 1e-4, 1.0), sections, *files) == first
    (tmp_path / "sft" / "model.safetensors").write_bytes(b"weights-b")
    assert inputs_stamp((0.1, 1e-4, 1.0), sections, *files) != first
    assert inputs_stamp((0.5, 1e-4, 1.0), sections, *files) != inputs_stamp((0.1, 1e-4, 1.0), sections, *files)
    # what is written to inputs.json reads back equal (else every rerun would start over)
    assert json.loads(json.dumps(first)) == first


def test_fictitious_play_samples_each_prompt_from_one_earlier_model_in_prompt_order(
    tmp_path, world, tokenizer, tiny_model, tiny_arch
):
    """Fictitious play: y' for each prompt from a model drawn uniformly from the chain so far, sampled as
    the generate stage samples that model's prompts; rows in prompt order; the same draw on a rerun."""
    import pandas as pd

    from spin_core.config import EncodingConfig, GenerateConfig, SpinConfig
    from spin_core.divergence.chain import fictitious_generation
    from spin_core.generate.pairs import generate_shard
    from spin_core.io import write_jsonl
    from spin_core.modeling import save_model
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.sft_data import make_tiny_sft_data
    from spin_core.world.tokenizer import non_response_token_ids

    train, _ = make_tiny_sft_data(world, 12, 2, seed=3)
    write_jsonl(tmp_path / "prompts.jsonl", train)
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    other = build_tiny_model(tiny_arch, tokenizer, non_response_token_ids(tokenizer), seed=1)
    save_model(other, tokenizer, tmp_path / "iter0")
    history = [tmp_path / "sft", tmp_path / "iter0"]
    spin, gen = SpinConfig(max_length=48, max_prompt_length=12), GenerateConfig(max_new_tokens=4, num_shards=1)
    work = tmp_path / "work"
    work.mkdir()
    fictitious_generation(work, 1, history, tmp_path / "prompts.jsonl", spin, gen, work / "out.parquet")
    df = pd.read_parquet(work / "out.parquet")
    assert list(df.prompt_id) == [r["prompt_id"] for r in train]
    assert set(df.opponent) == {"sft", "iter0"}  # both models drawn for 12 prompts (seeded)
    for k, model in enumerate(history):
        alone = tmp_path / f"alone{k}.parquet"
        generate_shard(GenerateConfig(max_new_tokens=4, num_shards=1, seed=gen.seed + k), spin.view(EncodingConfig),
                       model, work / f"prompts_iter1_from{k}.jsonl", alone, iteration=1)  # fmt: skip
        mine = df[df.opponent == model.name]
        assert [g[1]["content"] for g in mine.generated] == [g[1]["content"] for g in pd.read_parquet(alone).generated]
    again = tmp_path / "again"
    again.mkdir()
    fictitious_generation(again, 1, history, tmp_path / "prompts.jsonl", spin, gen, again / "out.parquet")
    assert pd.read_parquet(again / "out.parquet").equals(df)


def test_ema_opponent_averages_the_chains_weights_once_per_tied_tensor(tmp_path, tokenizer, tiny_arch):
    """SAPO's opponent: E_0 is the SFT model, E_t = d E_(t-1) + (1 - d) iter(t-1), parameter by parameter;
    the tied embedding / LM-head tensor is averaged once, and each E_t is kept for the next."""
    import torch

    from spin_core.divergence.chain import ema_opponent
    from spin_core.modeling import load_model, save_model
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.tokenizer import non_response_token_ids

    arch = {**tiny_arch, "tie_word_embeddings": True}
    models = [build_tiny_model(arch, tokenizer, non_response_token_ids(tokenizer), seed=s) for s in (0, 1, 2)]
    save_model(models[0], tokenizer, tmp_path / "sft")
    save_model(models[1], tokenizer, tmp_path / "iter0")
    save_model(models[2], tokenizer, tmp_path / "iter1")
    assert ema_opponent(tmp_path, 0, tmp_path / "sft", 0.25) == tmp_path / "sft"
    e2 = ema_opponent(tmp_path, 2, tmp_path / "sft", 0.25)
    assert (tmp_path / "ema_iter1").exists() and e2 == tmp_path / "ema_iter2"
    got, _ = load_model(e2)
    p = [dict(m.named_parameters()) for m in models]
    for name, value in got.named_parameters():
        e1 = 0.25 * p[0][name] + 0.75 * p[1][name]
        want = 0.25 * e1 + 0.75 * p[2][name]
        torch.testing.assert_close(value, want, rtol=1e-6, atol=1e-6)
    assert got.lm_head.weight.data_ptr() == got.model.embed_tokens.weight.data_ptr()  # still tied


def test_replay_buffer_trains_on_the_last_iterations_pairs():
    from spin_core.names import pair_source_iterations

    assert pair_source_iterations(0, True, 3) == [0]
    assert pair_source_iterations(4, True, 3) == [2, 3, 4]
    assert pair_source_iterations(4, False, 1) == [4]
    assert pair_source_iterations(4, True) == [3, 4] and pair_source_iterations(4, False) == [4]
