"""Response masking: summed log-probs over response tokens only, EOS included, any padding side."""

import torch

from spin_core.config import EncodingConfig
from spin_core.train.encoding import encode_pair, encode_prompt, encode_response, truncate_pair
from spin_core.train.logprobs import IGNORE_INDEX, collate_sequences, model_logps, response_logps, sequence_logps


def manual_sum(logits_row, ids, start):
    """Sum of log softmax(logits[t-1])[ids[t]] for t >= start, by hand."""
    total = 0.0
    for t in range(start, len(ids)):
        total += torch.log_softmax(logits_row[t - 1].double(), -1)[ids[t]].item()
    return total


def test_sequence_logps_matches_manual_sum_on_response_tokens_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 9, generator=g)
    ids = torch.tensor([[1, 2, 3, 4, 5, 2], [7, 8, 6, 2, 0, 0]])
    labels = ids.clone()
    labels[0, :3] = IGNORE_INDEX  # prompt of 3 tokens
    labels[1, :2] = IGNORE_INDEX  # prompt of 2 tokens
    labels[1, 4:] = IGNORE_INDEX  # right padding
    got = sequence_logps(logits, labels)
    assert abs(got[0].item() - manual_sum(logits[0], ids[0].tolist(), 3)) < 1e-5
    assert abs(got[1].item() - manual_sum(logits[1, :4], ids[1, :4].tolist(), 2)) < 1e-5


def test_suppressed_tokens_renormalise_over_the_alphabet():
    logits = torch.tensor([[[0.0, 5.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    labels = torch.tensor([[IGNORE_INDEX, 2]])
    got = sequence_logps(logits, labels, suppress_ids=[1]).item()
    assert abs(got - torch.log_softmax(torch.tensor([0.0, 1.0, 1.0]), -1)[1].item()) < 1e-6


def test_left_and_right_padding_give_the_same_logps_as_unpadded(tiny_model, tokenizer, world):
    prompts = [encode_prompt(tokenizer, "ba be"), encode_prompt(tokenizer, "bi bo bu ba be")]
    responses = [encode_response(tokenizer, "da de di do"), encode_response(tokenizer, "fa")]
    assert responses[0][-1] == tokenizer.eos_token_id  # EOS is part of the response
    single = [
        model_logps(tiny_model, collate_sequences([p], [r], tokenizer.pad_token_id), []).item()
        for p, r in zip(prompts, responses)
    ]
    with torch.no_grad():
        right = model_logps(tiny_model, collate_sequences(prompts, responses, tokenizer.pad_token_id, "right"), [])
        left = model_logps(tiny_model, collate_sequences(prompts, responses, tokenizer.pad_token_id, "left"), [])
    assert torch.allclose(right, torch.tensor(single), atol=1e-5)
    assert torch.allclose(left, torch.tensor(single), atol=1e-5)
    # ...and they equal a manual per-token sum over response tokens (EOS included).
    with torch.no_grad():
        ids = prompts[0] + responses[0]
        logits = tiny_model(torch.tensor([ids])).logits[0]
    assert abs(single[0] - manual_sum(logits, ids, len(prompts[0]))) < 1e-4


def test_response_logps_batches_and_restores_order(tiny_model, tokenizer):
    prompts = [encode_prompt(tokenizer, p) for p in ["ba", "be bi bo", "bu ba"]]
    responses = [encode_response(tokenizer, r) for r in ["da", "de di do du", ""]]
    one_by_one = [response_logps(tiny_model, [p], [r], tokenizer.pad_token_id)[0] for p, r in zip(prompts, responses)]
    batched = response_logps(tiny_model, prompts, responses, tokenizer.pad_token_id, batch_size=2)
    assert torch.allclose(torch.tensor(batched), torch.tensor(one_by_one), atol=1e-5)


def test_truncation_keeps_prompt_tail_and_cuts_response():
    p, r = truncate_pair(list(range(10)), [100, 101, 102, 103], max_length=8, max_prompt_length=6)
    assert p == [4, 5, 6, 7, 8, 9] and r == [100, 101]


def test_encode_pair_uses_same_prompt_for_both(tokenizer):
    row = {
        "real": [{"role": "user", "content": "ba be"}, {"role": "assistant", "content": "da de"}],
        "generated": [{"role": "user", "content": "ba be"}, {"role": "assistant", "content": "fa"}],
    }
    p, r, g = encode_pair(tokenizer, row, EncodingConfig(max_length=64, max_prompt_length=16))
    assert p == encode_prompt(tokenizer, "ba be")
    assert tokenizer.convert_ids_to_tokens(r) == ["da", "de", "</s>"]
    assert tokenizer.convert_ids_to_tokens(g) == ["fa", "</s>"]
    assert tokenizer.convert_ids_to_tokens(p) == ["<|user|>", "ba", "be", "</s>", "<|assistant|>"]


def test_progress_lines_give_rate_and_eta():
    from spin_core.train.logprobs import progress_line

    assert progress_line("scoring", 2, 10, 4.0) == "scoring: 2/10 batches (4s, 0.5 batches/s, ETA 16s)"
    assert progress_line("scoring", 10, 10, 5.0).endswith("ETA 0s)")
