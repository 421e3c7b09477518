"""Shared fixtures: a small world, its tokenizer and a tiny random Llama, all built locally."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from spin_core.world import TinyWorld, WorldConfig  # noqa: E402


@pytest.fixture(scope="session")
def world():
    return TinyWorld(WorldConfig(n_words=12, seed=3))


@pytest.fixture(scope="session")
def tokenizer(world):
    from spin_core.tokenizer import build_tokenizer

    return build_tokenizer(world.words)


@pytest.fixture(scope="session")
def tiny_arch():
    """LlamaConfig kwargs of the tests' tiny models."""
    return dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="session")
def tiny_model(tokenizer, tiny_arch):
    from spin_core.modeling import build_tiny_model
    from spin_core.tokenizer import non_response_token_ids

    model = build_tiny_model(tiny_arch, tokenizer, non_response_token_ids(tokenizer), seed=0)
    return model.eval()
