"""Generation: shards partition the prompts, sampling is seeded, the policy's alphabet is respected."""

import pandas as pd
import pytest

from spin_core.config import EncodingConfig, GenerateConfig
from spin_core.errors import BackendUnavailableError
from spin_core.generate.backends import hf_generate
from spin_core.generate.pairs import generate_shard, shard_rows
from spin_core.io import write_jsonl
from spin_core.modeling import save_model
from spin_core.train.encoding import encode_prompt
from spin_core.world.sft_data import make_tiny_sft_data
from spin_core.world.tokenizer import non_response_token_ids

ENCODING = EncodingConfig(max_length=64, max_prompt_length=16)


@pytest.mark.parametrize("n, shards", [(10, 3), (7, 7), (5, 1), (3, 4)])
def test_shards_partition_rows_in_order(n, shards):
    rows = list(range(n))
    parts = [shard_rows(rows, k, shards) for k in range(shards)]
    assert sum(parts, []) == rows


def test_sampling_is_seeded_and_stays_in_the_alphabet(tiny_model, tokenizer):
    prompts = [encode_prompt(tokenizer, p) for p in ["ba be", "bi", "bo bu ba be"]] * 4
    cfg = GenerateConfig(max_new_tokens=12, batch_size=5)
    a, fa = hf_generate(tiny_model, tokenizer, prompts, cfg, seed=7)
    b, fb = hf_generate(tiny_model, tokenizer, prompts, cfg, seed=7)
    c, _ = hf_generate(tiny_model, tokenizer, prompts, cfg, seed=8)
    assert a == b and fa == fb and a != c
    banned = set(non_response_token_ids(tokenizer))
    for toks, done in zip(a, fa):
        assert not banned & set(toks)
        assert len(toks) <= 12
        assert done == (tokenizer.eos_token_id in toks)
        if done:
            assert toks[-1] == tokenizer.eos_token_id


def test_generate_shard_writes_pairs_with_metadata(tmp_path, world, tiny_model, tokenizer):
    train, _ = make_tiny_sft_data(world, 9, 1, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    save_model(tiny_model, tokenizer, tmp_path / "model")
    cfg = GenerateConfig(max_new_tokens=10, num_shards=2, batch_size=4)
    generate_shard(
        cfg, ENCODING, tmp_path / "model", tmp_path / "train.jsonl", tmp_path / "s1.parquet", iteration=2, shard=1
    )
    df = pd.read_parquet(tmp_path / "s1.parquet")
    expected = shard_rows(train, 1, 2)
    assert 4 <= len(expected) <= 5
    assert list(df["prompt_id"]) == [r["prompt_id"] for r in expected]
    row = df.iloc[0]
    assert [m["role"] for m in row["generated"]] == ["user", "assistant"]
    assert row["real"][1]["content"] == expected[0]["messages"][1]["content"]
    assert row["iteration"] == 2
    meta = row["generation"]
    assert meta["model"].endswith("model") and meta["temperature"] == 1.0 and meta["top_p"] == 1.0
    assert meta["max_new_tokens"] == 10 and meta["shard"] == 1 and meta["num_shards"] == 2


def test_vllm_backend_missing_is_a_clear_error(tmp_path, world, tiny_model, tokenizer):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    train, _ = make_tiny_sft_data(world, 3, 1, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    save_model(tiny_model, tokenizer, tmp_path / "model")
    with pytest.raises(BackendUnavailableError, match="generate.backend: 'vllm'"):
        generate_shard(
            GenerateConfig(backend="vllm"),
            ENCODING,
            tmp_path / "model",
            tmp_path / "train.jsonl",
            tmp_path / "o.parquet",
            0,
        )
    assert not (tmp_path / "o.parquet").exists()


def test_prompt_template_and_model_decoding_as_the_official_generate_py(tmp_path, world, tiny_model, tokenizer):
    """generate.prompt_template fills the text and tokenizes it without special tokens (no chat
    template, no BOS), and decoding "model" passes no sampling arguments: the model's
    generation_config decides (the tiny model's sets none: greedy, so equal to temperature 0)."""
    from spin_core.generate.backends import generation_prompt_ids, sampling_kwargs

    template = GenerateConfig(prompt_template="### Instruction: {prompt}\n\n### Response: ", decoding="model")
    user = " ".join(world.words[:3])
    ids = generation_prompt_ids(tokenizer, user, template)
    expected = tokenizer(f"### Instruction: {user}\n\n### Response: ", add_special_tokens=False)["input_ids"]
    assert ids == list(expected) and ids != encode_prompt(tokenizer, user)
    assert sampling_kwargs(template) == {}
    assert sampling_kwargs(GenerateConfig(temperature=0.0)) == {"do_sample": False}
    prompts = [encode_prompt(tokenizer, " ".join(world.words[i : i + 2])) for i in range(4)]
    by_model, _ = hf_generate(tiny_model, tokenizer, prompts, GenerateConfig(decoding="model", max_new_tokens=6), 0)
    greedy, _ = hf_generate(tiny_model, tokenizer, prompts, GenerateConfig(temperature=0.0, max_new_tokens=6), 1)
    assert by_model == greedy
    with pytest.raises(Exception, match="prompt_template"):
        from spin_core.configfile import parse_section

        parse_section(GenerateConfig, {"prompt_template": "no placeholder"}, "generate")


@pytest.mark.parametrize("policy", ["truncate", "skip"])
def test_long_prompt_is_bounded_in_generation_and_trained_on_the_same_tokens(
    tmp_path, world, tiny_model, tokenizer, monkeypatch, caplog, policy
):
    """A 2,000-word prompt: generation shows the model the prompt's last max_prompt_length tokens (or
    drops the row), counts it in the log, and training scores y' under exactly the tokens it was
    sampled from."""
    from spin_core.config import ReferenceConfig, SpinConfig
    from spin_core.data import load_pairs
    from spin_core.generate import backends
    from spin_core.names import prompt_id
    from spin_core.train.reference import reference_pass
    from spin_core.train.spin import encode_pairs_for_training

    train, _ = make_tiny_sft_data(world, 6, 1, seed=0)
    long = " ".join(world.words[i % len(world.words)] for i in range(2000))
    train[0] = {"prompt_id": prompt_id(long), "prompt": long,
                "messages": [{"role": "user", "content": long}, train[0]["messages"][1]]}  # fmt: skip
    write_jsonl(tmp_path / "train.jsonl", train)
    save_model(tiny_model, tokenizer, tmp_path / "model")
    seen = []

    def spy(model, tok, prompts, *args, **kw):
        seen.extend(prompts)
        return real(model, tok, prompts, *args, **kw)

    real = backends.generate_batch
    monkeypatch.setattr(backends, "generate_batch", spy)
    spin = SpinConfig(max_length=64, max_prompt_length=16, long_prompts=policy)
    with caplog.at_level("WARNING"):
        generate_shard(GenerateConfig(max_new_tokens=6, batch_size=8), spin.view(EncodingConfig),
                       tmp_path / "model", tmp_path / "train.jsonl", tmp_path / "gen.parquet", 0)  # fmt: skip
    assert "generate: 1 of 6 prompts are longer than spin.max_prompt_length=16 tokens" in caplog.text
    assert max(map(len, seen)) <= 16 and len(seen) == (6 if policy == "truncate" else 5)
    assert (long in set(pd.read_parquet(tmp_path / "gen.parquet")["prompt"])) == (policy == "truncate")
    reference_pass(spin.view(ReferenceConfig), [tmp_path / "gen.parquet"], tmp_path / "model", tmp_path / "p.parquet")
    trained = encode_pairs_for_training(load_pairs(tmp_path / "p.parquet"), tokenizer, spin, "pairs")
    assert sorted(map(tuple, seen)) == sorted(tuple(e["prompt_ids"]) for e in trained)
    if policy == "truncate":
        assert encode_prompt(tokenizer, long)[-16:] in seen
