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
