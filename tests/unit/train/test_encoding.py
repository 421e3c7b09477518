"""The official code's encoding choices on a real byte-level BPE tokenizer with zephyr's chat form
(`<|role|>\\n...</s>\\n`): the empty system turn, and both truncation rules against closed cases."""

import pytest

from spin_core.config import EncodingConfig, GenerateConfig
from spin_core.generate.backends import generation_prompt_ids
from spin_core.train.encoding import (
    encode_pair,
    encode_prompt,
    encode_whole_pair,
    truncate,
    truncate_official,
    truncation_counts,
)


@pytest.fixture(scope="module")
def zephyr_tok(tmp_path_factory):
    """The rehearsal's chat model folder: a byte-level BPE and a zephyr-style template, built here."""
    from spin_core.assets.rehearsal import write_chat_model
    from spin_core.modeling import load_tokenizer

    out = tmp_path_factory.mktemp("zephyr") / "model"
    texts = ["describe the garden in a calm way", "a small boat on the quiet lake", "repair the old bridge"] * 20
    write_chat_model(out, texts, seed=0)
    return load_tokenizer(out)


def test_system_turn_empty_is_the_official_prompt(zephyr_tok):
    empty = zephyr_tok.decode(encode_prompt(zephyr_tok, "repair the bridge", "empty"))
    none = zephyr_tok.decode(encode_prompt(zephyr_tok, "repair the bridge", "none"))
    assert empty == "<|system|>\n</s>\n<|user|>\nrepair the bridge</s>\n<|assistant|>\n"
    assert none == "<|user|>\nrepair the bridge</s>\n<|assistant|>\n"
    # Generation shows the model the prompt training scores: the same system turn.
    gen = generation_prompt_ids(zephyr_tok, "repair the bridge", GenerateConfig(), "empty")
    assert gen == encode_prompt(zephyr_tok, "repair the bridge", "empty")
    row = {"real": [{"role": "user", "content": "a boat"}, {"role": "assistant", "content": "on the lake"}],
           "generated": [{"role": "user", "content": "a boat"}, {"role": "assistant", "content": "calm"}]}  # fmt: skip
    p, _, _ = encode_pair(zephyr_tok, row, EncodingConfig(max_length=64, max_prompt_length=32, system_turn="empty"))
    assert zephyr_tok.decode(p).startswith("<|system|>\n</s>\n<|user|>\na boat")


def test_system_turn_is_refused_where_the_template_has_none():
    from spin_core.configfile import load_yaml, validate_config
    from spin_core.errors import ConfigError
    from tests.helpers.workflow import ROOT

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    cfg["spin"]["system_turn"] = "empty"
    with pytest.raises(ConfigError, match="spin.system_turn: the tiny world's chat template has no system turn"):
        validate_config(cfg)
    paper = validate_config(load_yaml(ROOT / "config" / "paper.yaml")).spin
    assert (paper.system_turn, paper.truncation) == ("empty", "official")


P, R, G = list(range(100, 118)), [1, 2, 3], [4, 5, 6, 7, 8]  # an 18-token prompt


@pytest.mark.parametrize(
    "prompt, responses, expected_official, expected_prompt_first",
    [
        # fits in max_length 20? 10 + 5 = 15: the official rule cuts nothing; ours cuts the prompt to 6
        (P[:10], [R, G], (10, [3, 5]), (6, [3, 5])),
        # 18 + 5 > 20: both cut the prompt to its last 6 tokens; 6 + 5 fits
        (P, [R, G], (6, [3, 5]), (6, [3, 5])),
        # 18 + 30 > 20: prompt to 6; 6 + 30 still > 20: official cuts both responses to 20 - 6 = 14; ours
        # cuts each response to fit beside the prompt: 14 too
        (P, [R, list(range(30))], (6, [3, 14]), (6, [3, 14])),
        # a 4-token prompt, a 30-token response: official keeps the prompt (4 < 6 after "cutting") and
        # cuts responses to max_length - max_prompt_length = 14, not to 16 as ours does
        (P[:4], [R, list(range(30))], (4, [3, 14]), (4, [3, 16])),
    ],
    ids=["fits", "long_prompt", "long_response", "short_prompt_long_response"],
)
def test_truncation_rules_against_closed_cases(prompt, responses, expected_official, expected_prompt_first):
    for rule, expected in (("official", expected_official), ("prompt_first", expected_prompt_first)):
        p, cut = truncate(prompt, responses, EncodingConfig(max_length=20, max_prompt_length=6, truncation=rule))
        assert (len(p), [len(c) for c in cut]) == expected, rule
        assert p == prompt[-len(p) :] and all(c == r[: len(c)] for c, r in zip(cut, responses))
    assert truncate_official(prompt, responses, 20, 6)[0] == prompt[-expected_official[0] :]


def test_truncation_counts_say_how_many_pairs_each_rule_changes(zephyr_tok):
    def row(prompt, answer):
        return {"real": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                "generated": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "calm"}]}  # fmt: skip

    long_prompt = "describe the garden " * 12
    rows = [row("a boat", "on the lake"), row(long_prompt, "calm"), row("a boat", "repair the old bridge " * 20)]
    spin = EncodingConfig(max_length=64, max_prompt_length=32, system_turn="empty", truncation="official")
    counts = truncation_counts([encode_whole_pair(zephyr_tok, r, spin) for r in rows], spin)
    # ours cuts every prompt over 32 tokens; the official rule only where the pair does not fit
    prompt_lengths = [len(encode_prompt(zephyr_tok, r["real"][0]["content"], "empty")) for r in rows]
    assert prompt_lengths[0] < 32 < prompt_lengths[1]
    assert counts["official"] >= 1 and counts["prompt_first"] >= counts["official"]


def test_official_response_tokens_and_hidden_eos_match_the_official_collator(zephyr_tok, tmp_path):
    """spin.response_tokens: official scores the template's assistant text (content, `</s>`, newline)
    plus the appended EOS, and hides every other EOS from attention; the packed and the padded layout
    both give the log-probs of the official collator's inputs (attention_mask 0 at inner EOS tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from spin_core.train.encoding import encode_response, hidden_eos
    from spin_core.train.logprobs import response_logps
    from spin_core.train.packing import pair_logps

    eos = zephyr_tok.eos_token_id
    official = encode_response(zephyr_tok, "on the lake", "official")
    assert zephyr_tok.decode(official) == "on the lake</s>\n</s>"
    assert zephyr_tok.decode(encode_response(zephyr_tok, "on the lake")) == "on the lake</s>"
    spin = EncodingConfig(max_length=96, max_prompt_length=48, system_turn="empty", response_tokens="official")
    assert hidden_eos(zephyr_tok, spin) == eos and hidden_eos(zephyr_tok, EncodingConfig()) is None

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(zephyr_tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                         max_position_embeddings=128, attn_implementation="sdpa")).eval()  # fmt: skip
    rows = [(p, r, g) for p, r, g in [("a boat", "on the lake", "calm"), ("repair the old bridge", "a red kite", "")]]
    encoded = [
        encode_pair(
            zephyr_tok,
            {
                "real": [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                "generated": [{"role": "user", "content": p}, {"role": "assistant", "content": g}],
            },
            spin,
        )  # fmt: skip
        for p, r, g in rows
    ]
    assert all(eos in p[:-1] for p, _, _ in encoded)  # the system and user turns' </s> are inside the prompt

    def official_logp(prompt, response):  # the official collator's inputs, HF's default positions
        ids = torch.tensor([prompt + response])
        mask = torch.tensor([[0 if t == eos and i < len(prompt) + len(response) - 1 else 1
                              for i, t in enumerate(prompt + response)]])  # fmt: skip
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)[0]
        return sum(logits[len(prompt) - 1 + k, t].item() for k, t in enumerate(response))

    expected = [official_logp(p, r) for p, r, _ in encoded] + [official_logp(p, g) for p, _, g in encoded]
    packed = pair_logps(model, encoded, zephyr_tok.pad_token_id, hide_id=eos)
    padded = response_logps(model, [p for p, _, _ in encoded] * 2, [r for _, r, _ in encoded] + [g for _, _, g in encoded],
                            zephyr_tok.pad_token_id, hide_id=eos)  # fmt: skip
    assert packed[0] + packed[1] == pytest.approx(expected, abs=1e-4)
    assert padded == pytest.approx(expected, abs=1e-4)
    # Hiding changes the numbers: the test would pass on nothing otherwise.
    visible = pair_logps(model, encoded, zephyr_tok.pad_token_id)
    assert max(abs(a - b) for a, b in zip(visible[0] + visible[1], expected)) > 1e-3


def test_mt_bench_answer_prompt_is_fastchats_zephyr_form(zephyr_tok):
    """evaluation.mt_bench.system_turn: empty + bos: true give FastChat's zephyr conversation
    (fastchat/conversation.py: system "<|system|>\\n{system}", roles <|user|>/<|assistant|>, CHATML
    separator "</s>"), tokenized with BOS as gen_model_answer does; the defaults give the chat template alone."""
    from spin_core.evaluate.mt_bench_answers import answer_prompt_ids

    conv = [{"role": "user", "content": "describe the garden"}, {"role": "assistant", "content": "calm"},
            {"role": "user", "content": "and the lake"}]  # fmt: skip
    fastchat = (
        "<s><|system|>\n</s>\n<|user|>\ndescribe the garden</s>\n<|assistant|>\ncalm</s>\n"
        "<|user|>\nand the lake</s>\n<|assistant|>\n"
    )
    assert zephyr_tok.decode(answer_prompt_ids(zephyr_tok, conv, "empty", bos=True)) == fastchat
    assert zephyr_tok.decode(answer_prompt_ids(zephyr_tok, conv)) == fastchat.removeprefix("<s><|system|>\n</s>\n")
