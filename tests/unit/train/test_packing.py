"""Prefix-shared packing: the layout by hand, and the same log-probs and gradients as padding."""

import pytest
import torch

from spin_core.errors import ConfigError
from spin_core.train.encoding import encode_prompt, encode_response
from spin_core.train.logprobs import collate_sequences, model_logps, response_logps
from spin_core.train.packing import (
    check_packing_supported,
    choose_rows,
    final_hidden_states,
    first_fit_decreasing,
    head_logps,
    pack_pairs,
    packed_logps,
    pair_logps,
)
from spin_core.world.tokenizer import non_response_token_ids


def test_first_fit_decreasing_by_hand():
    # Longest first: 6 -> bin A, 5 -> B, 4 -> C, 3 -> B (fills it), 2 -> A (fills it).
    assert first_fit_decreasing([5, 3, 4, 2, 6], 8) == [[4, 3], [0, 1], [2]]
    with pytest.raises(ValueError, match="exceeds"):
        first_fit_decreasing([9], 8)


def test_choose_rows_takes_the_width_with_fewest_slots():
    # Width 16 (the longest): 16 | 8+8 | 8+8 -> 3 rows, 48 slots. Width 24: 16+8 | 8+8+8 -> 48
    # slots too, so the narrower wins; width 32: 16+8+8 | 8+8 -> 64.
    assert choose_rows([16, 8, 8, 8, 8]) == (16, [[0], [1, 2], [3, 4]])
    # Width 16: 16 | 16 | 16 | 8+8 | 8 -> 80 slots; width 24: three rows of 16+8 -> 72; width 32:
    # 16+16 | 16+8+8 | 8 -> 96.
    assert choose_rows([16, 16, 16, 8, 8, 8]) == (24, [[0, 3], [1, 4], [2, 5]])


def test_pack_pairs_wants_one_prompt_real_and_generated_per_pair():
    with pytest.raises(ValueError, match="2 prompts, 1 real and 2 generated"):
        pack_pairs([[1], [2]], [[3]], [[4], [6]], pad_id=0)
    with pytest.raises(ValueError, match="non-empty prompt"):
        pack_pairs([[1], []], [[3], [5]], [[4], [6]], pad_id=0)


def test_pack_pairs_layout_by_hand():
    b = pack_pairs([[10, 11]], [[20, 21]], [[30]], pad_id=0)
    assert b["input_ids"].tolist() == [[10, 11, 20, 21, 30, 0, 0, 0]]  # width rounded up to 8
    # The generated response restarts where the prompt ends, as in its own sequence.
    assert b["position_ids"].tolist() == [[0, 1, 2, 3, 2, 0, 0, 0]]
    m = b["attention_mask"][0, 0]
    assert m[3].tolist()[:5] == [True, True, True, True, False]  # real: prompt + itself
    assert m[4].tolist()[:5] == [True, True, False, False, True]  # generated: prompt + itself, not real
    assert m[6].tolist() == [False] * 6 + [True, False]  # padding sees itself only (no NaN rows)
    # Real tokens are read at positions 1, 2; the generated one at the prompt's last position, 1.
    assert b["target_pos"].tolist() == [1, 2, 1]
    assert b["target_ids"].tolist() == [20, 21, 30]
    assert b["target_seq"].tolist() == [0, 0, 1]
    assert b["n_pairs"] == 1


def test_segments_in_one_row_do_not_see_each_other():
    b = pack_pairs([[1], [2]], [[3], [5]], [[4], [6]], pad_id=0)  # two length-3 segments: one row of 8
    assert b["input_ids"].tolist() == [[1, 3, 4, 2, 5, 6, 0, 0]]
    m = b["attention_mask"][0, 0]
    assert not m[3:6, 0:3].any() and not m[0:3, 3:6].any()
    # Pair 0's real then generated token, then pair 1's: sequences 0 and 2, then 1 and 3.
    assert b["target_seq"].tolist() == [0, 2, 1, 3]
    assert b["target_pos"].tolist() == [0, 0, 3, 3]


def _pairs(tokenizer, world):
    import numpy as np

    rng = np.random.default_rng(1)
    words = world.words
    out = []
    for i in range(7):  # unequal lengths, so several segments share rows
        prompt = " ".join(rng.choice(words, 1 + i % 4))
        real = " ".join(rng.choice(words, 2 + (3 * i) % 7))
        gen = " ".join(rng.choice(words, 1 + (5 * i) % 6))
        out.append(
            (encode_prompt(tokenizer, prompt), encode_response(tokenizer, real), encode_response(tokenizer, gen))
        )
    return out


def test_packed_logps_and_gradients_equal_padded_ones(tiny_model, tokenizer, world):
    pairs = _pairs(tokenizer, world)
    p, r, g = map(list, zip(*pairs))
    suppress = non_response_token_ids(tokenizer)
    packed = pack_pairs(p, r, g, tokenizer.pad_token_id)
    assert packed["input_ids"].shape[0] < len(pairs)  # packing put several pairs in a row
    padded = collate_sequences(p * 2, r + g, tokenizer.pad_token_id)
    weights = torch.linspace(-1.0, 1.0, 2 * len(pairs))

    def grads(fn, batch):
        tiny_model.zero_grad(set_to_none=True)
        logps = fn(tiny_model, batch, suppress)
        (weights * logps).sum().backward()
        return logps.detach(), torch.cat([q.grad.flatten() for q in tiny_model.parameters()])

    lp_packed, g_packed = grads(packed_logps, packed)
    lp_padded, g_padded = grads(model_logps, padded)
    tiny_model.zero_grad(set_to_none=True)
    assert torch.allclose(lp_packed, lp_padded, atol=1e-5), (lp_packed - lp_padded).abs().max()
    assert torch.allclose(g_packed, g_padded, atol=1e-6, rtol=1e-4)


def test_pair_logps_equals_response_logps(tiny_model, tokenizer, world):
    pairs = _pairs(tokenizer, world)
    real, gen = pair_logps(tiny_model, pairs, tokenizer.pad_token_id, batch_size=3)
    p, r, g = map(list, zip(*pairs))
    expected = response_logps(tiny_model, p * 2, r + g, tokenizer.pad_token_id)
    assert torch.allclose(torch.tensor(real + gen), torch.tensor(expected), atol=1e-5)


def test_unsupported_models_are_clear_config_errors(tiny_model):
    from types import SimpleNamespace

    check_packing_supported(tiny_model)  # sdpa, plain LM head: fine
    fa2 = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2"))
    with pytest.raises(ConfigError, match=r"spin.packing: .*'flash_attention_2'.*spin.packing: false"):
        check_packing_supported(fa2)
    capped = SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa", final_logit_softcapping=30.0))
    with pytest.raises(ConfigError, match=r"spin.packing: .*final_logit_softcapping"):
        check_packing_supported(capped)


def test_final_hidden_states_are_the_decoders_output(tiny_model, tokenizer):
    ids = torch.tensor([encode_prompt(tokenizer, "ba be bi")])
    with torch.no_grad():
        got = final_hidden_states(tiny_model, input_ids=ids)
        expected = tiny_model.get_decoder()(input_ids=ids).last_hidden_state
    assert torch.equal(got, expected)
    assert not tiny_model.get_decoder()._forward_hooks  # the capture hook is removed again


def test_chunked_head_recomputes_to_the_same_values_and_gradients(tiny_model, tokenizer, monkeypatch):
    import spin_core.train.packing as packing

    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, tiny_model.config.hidden_size, generator=g, requires_grad=True)
    targets = torch.randint(0, len(tokenizer), (10,), generator=g)
    suppress = non_response_token_ids(tokenizer)

    def run():
        tiny_model.zero_grad(set_to_none=True)
        hidden.grad = None
        out = head_logps(tiny_model, hidden, targets, suppress)
        out.sum().backward()
        return out.detach(), hidden.grad.clone(), tiny_model.get_output_embeddings().weight.grad.clone()

    whole = run()
    vocab = tiny_model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(packing, "HEAD_CHUNK_ELEMENTS", 3 * vocab)  # chunks of 3 tokens, recomputed
    chunked = run()
    tiny_model.zero_grad(set_to_none=True)
    for a, b in zip(whole, chunked):
        assert torch.allclose(a, b, atol=1e-6)
