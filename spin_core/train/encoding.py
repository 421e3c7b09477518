"""Chat encoding shared by every stage: prompts through the model's chat template, responses with
EOS, truncated alike, so the reference, the trainer, generation and scoring see the same tokens."""

from __future__ import annotations

from ..data import first_exchange


def encode_chat(tokenizer, messages: list[dict]) -> list[int]:
    """A conversation through the chat template, ending with the assistant header."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    # transformers 5 returns a BatchEncoding; 4.x returned the id list.
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt tokens: the user turn through the chat template, ending with the assistant header."""
    return encode_chat(tokenizer, [{"role": "user", "content": prompt}])


def encode_response(tokenizer, text: str) -> list[int]:
    """Response tokens followed by EOS, so the model is scored on ending the response too."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids) + [tokenizer.eos_token_id]


def truncate_pair(
    prompt_ids: list[int], response_ids: list[int], max_length: int, max_prompt_length: int
) -> tuple[list[int], list[int]]:
    """Keep the prompt's last max_prompt_length tokens, then cut the response to fit max_length."""
    prompt_ids = prompt_ids[-max_prompt_length:]
    return prompt_ids, response_ids[: max(0, max_length - len(prompt_ids))]


def encode_pair(tokenizer, row: dict, max_length: int, max_prompt_length: int, where: str = "pair"):
    """(prompt_ids, real_response_ids, generated_response_ids) of a pairs row, truncated alike.

    The reference pass and the trainer both call this, so the reference and policy log-probs
    are always taken over exactly the same tokens.
    """
    user, real = first_exchange(row["real"], f"{where}: field 'real'")
    _, generated = first_exchange(row["generated"], f"{where}: field 'generated'")
    prompt = encode_prompt(tokenizer, user)
    p, r = truncate_pair(prompt, encode_response(tokenizer, real), max_length, max_prompt_length)
    _, g = truncate_pair(prompt, encode_response(tokenizer, generated), max_length, max_prompt_length)
    return p, r, g
