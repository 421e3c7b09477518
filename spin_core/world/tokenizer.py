"""Word-level tokenizer for the tiny world: one token per word, so model and world log-probs
refer to the same units. Built locally with `tokenizers`, saved as a Hugging Face tokenizer."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, EOS = "<pad>", "<unk>", "</s>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, UNK, EOS, *ROLE_TOKENS]

# Zephyr-style turns, with spaces instead of newlines because the tokenizer splits on whitespace.
# Each turn ends with EOS, so an assistant response is scored "words + EOS" at both scales.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|> ' + m['content'] + ' </s> ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


def build_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer over SPECIAL_TOKENS + words, with the chat template set."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + list(words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        additional_special_tokens=ROLE_TOKENS,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def non_response_token_ids(tokenizer) -> list[int]:
    """Ids the tiny world never emits in a response (every special token but EOS).

    The tiny-world policy is the model's softmax restricted to the world's alphabet (words + EOS);
    these ids are written to the model's generation_config.suppress_tokens so that sampling,
    scoring and training all use that same distribution.
    """
    return [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS if t != EOS]
