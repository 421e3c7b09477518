"""Chat encoding shared by every stage: prompts through the model's chat template, responses with
EOS, truncated alike, so the reference, the trainer, generation and scoring see the same tokens. One
prompt rule (`bound_prompts`, spin.max_prompt_length and spin.long_prompts) holds in every stage that
tokenizes a prompt: generation samples y' from the prompt tokens training scores it under."""

from __future__ import annotations

import logging

from ..data import first_exchange
from ..errors import DataError

log = logging.getLogger(__name__)


def encode_chat(tokenizer, messages: list[dict]) -> list[int]:
    """A conversation through the chat template, ending with the assistant header."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    # transformers 5 returns a BatchEncoding; 4.x returned the id list.
    return list(out["input_ids"] if hasattr(out, "keys") else out)


# The turns before the user's (spin.system_turn): "empty" is the official code's (spin/alignment/data.py
# inserts {"role": "system", "content": ""}), as the alignment-handbook's SFT of zephyr did.
SYSTEM_TURNS = {"none": [], "empty": [{"role": "system", "content": ""}]}


def encode_prompt(tokenizer, prompt: str, system_turn: str = "none") -> list[int]:
    """Prompt tokens: the user turn (after the system turn spin.system_turn names) through the chat
    template, ending with the assistant header."""
    return encode_chat(tokenizer, [*SYSTEM_TURNS[system_turn], {"role": "user", "content": prompt}])


def encode_response(tokenizer, text: str, form: str = "content_eos") -> list[int]:
    """Response tokens followed by EOS, so the model is scored on ending the response too.

    form (spin.response_tokens): content_eos, the text itself; official, as uclaml/SPIN's data.py, the
    chat template's rendering of the assistant turn with the assistant header stripped (for zephyr:
    content, `</s>`, newline), then the appended EOS."""
    if form == "official":
        rendered = tokenizer.apply_chat_template([{"role": "assistant", "content": text}], tokenize=False)
        header = assistant_header(tokenizer)
        if header and not rendered.startswith(header):
            # ChatML templates such as SmolLM2's put a default system turn before a lone assistant turn:
            # stripping nothing would train on that system prompt as part of every response.
            raise DataError(
                "spin.response_tokens: official needs a chat template that renders an assistant turn alone as"
                f" its header {header!r} + content; this one renders {rendered[:80]!r}... (use content_eos)"
            )
        text = rendered[len(header) :] if rendered.startswith(header) else rendered
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids) + [tokenizer.eos_token_id]


def assistant_header(tokenizer) -> str:
    """What the chat template adds for add_generation_prompt (zephyr: "<|assistant|>\n"): the prefix the
    official code strips from a rendered assistant turn."""
    turn = [{"role": "user", "content": "x"}]
    without = tokenizer.apply_chat_template(turn, tokenize=False)
    with_header = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    return with_header[len(without) :] if with_header.startswith(without) else ""


def hidden_eos(tokenizer, spin) -> int | None:
    """The token id hidden from attention inside prompts and responses (spin.response_tokens: official,
    as uclaml/SPIN's collator: every EOS but the appended one), or None."""
    return tokenizer.eos_token_id if spin.response_tokens == "official" else None


def bound_prompts(
    prompts: list[list[int]], spin, stage: str, where: str, rule: str = "prompt_first"
) -> tuple[list[int], list[list[int]]]:
    """The prompt rule: prompts longer than spin.max_prompt_length tokens keep their last tokens
    (spin.long_prompts: truncate) or are dropped (skip); how many, in the log under `stage`. Returns the
    indices of the prompts kept and their tokens. Generation applies it before sampling, so a long
    prompt never reaches the model whole (memory) and y' is sampled from the tokens it is trained on.
    `rule` is the truncation the stage's encoding applies (spin.truncation where pairs are cut): under
    "official" a long prompt is cut only where its pair exceeds max_length."""
    limit = spin.max_prompt_length
    long = [len(p) > limit for p in prompts]
    if any(long):
        action = "skipped" if spin.long_prompts == "skip" else f"truncated to their last {limit} tokens"
        if rule == "official" and spin.long_prompts != "skip":
            action += " where the pair exceeds max_length (spin.truncation: official)"
        log.warning(
            "%s: %d of %d prompts are longer than spin.max_prompt_length=%d tokens (longest %d): %s (spin.long_prompts)",
            stage, sum(long), len(prompts), limit, max(map(len, prompts)), action,
        )  # fmt: skip
    keep = [i for i, is_long in enumerate(long) if not (is_long and spin.long_prompts == "skip")]
    if prompts and not keep:
        raise DataError(
            f"{where}: every prompt is longer than spin.max_prompt_length={limit} (spin.long_prompts: skip)"
        )
    return keep, [prompts[i][-limit:] for i in keep]


def truncate_pair(
    prompt_ids: list[int], response_ids: list[int], max_length: int, max_prompt_length: int
) -> tuple[list[int], list[int]]:
    """Keep the prompt's last max_prompt_length tokens, then cut the response to fit max_length."""
    prompt_ids = prompt_ids[-max_prompt_length:]
    return prompt_ids, response_ids[: max(0, max_length - len(prompt_ids))]


def truncate_official(
    prompt_ids: list[int], responses: list[list[int]], max_length: int, max_prompt_length: int
) -> tuple[list[int], list[list[int]]]:
    """uclaml/SPIN's rule (spin/alignment/utils.py, keep_end): only when the prompt and the longer
    response exceed max_length is the prompt cut to its last max_prompt_length tokens; if they still
    do, every response is cut to max_length - max_prompt_length."""
    longer = max(map(len, responses))
    if len(prompt_ids) + longer > max_length:
        prompt_ids = prompt_ids[-max_prompt_length:]
    if len(prompt_ids) + longer > max_length:
        responses = [r[: max_length - max_prompt_length] for r in responses]
    return prompt_ids, responses


def truncate(prompt_ids: list[int], responses: list[list[int]], spin) -> tuple[list[int], list[list[int]]]:
    """A prompt and its responses cut to spin.max_length by the rule spin.truncation names."""
    if spin.truncation == "official":
        return truncate_official(prompt_ids, responses, spin.max_length, spin.max_prompt_length)
    cut = [truncate_pair(prompt_ids, r, spin.max_length, spin.max_prompt_length) for r in responses]
    return prompt_ids[-spin.max_prompt_length :], [r for _, r in cut]


def encode_whole_pair(tokenizer, row: dict, spin, where: str = "pair") -> tuple[list[int], list[list[int]]]:
    """(prompt_ids, [real_ids, generated_ids]) of a pairs row before any cut: the prompt after
    spin.system_turn, the responses in the form spin.response_tokens names. The prompt rule and the
    truncation rules read these, so each pair is tokenized once."""
    user, real = first_exchange(row["real"], f"{where}: field 'real'")
    _, generated = first_exchange(row["generated"], f"{where}: field 'generated'")
    form = spin.response_tokens
    prompt = encode_prompt(tokenizer, user, spin.system_turn)
    return prompt, [encode_response(tokenizer, real, form), encode_response(tokenizer, generated, form)]


def encode_pair(tokenizer, row: dict, spin, where: str = "pair"):
    """(prompt_ids, real_response_ids, generated_response_ids) of a pairs row, truncated alike by the
    rule spin.truncation names, the prompt after spin.system_turn.

    The reference pass and the trainer both encode this way, so the reference and policy log-probs
    are always taken over exactly the same tokens.
    """
    p, (r, g) = truncate(*encode_whole_pair(tokenizer, row, spin, where), spin)
    return p, r, g


def truncation_counts(whole: list[tuple[list[int], list[list[int]]]], spin) -> dict[str, int]:
    """How many of the pairs (encode_whole_pair's) each truncation rule changes: cuts a prompt or a
    response. For the log."""
    counts = {"prompt_first": 0, "official": 0}
    for prompt, responses in whole:
        for rule in counts:
            p, cut = truncate(prompt, responses, spin.model_copy(update={"truncation": rule}))
            counts[rule] += int(len(p) < len(prompt) or any(len(c) < len(r) for c, r in zip(cut, responses)))
    return counts


def text_problem(tokenizer, text: str, field: str, allow_empty: bool = False) -> str | None:
    """Why a prompt or response cannot be scored or trained on, or None: an empty prompt (nothing to
    condition on), or words the tokenizer maps to its unknown token (log-probs of -3.4e38, losses of
    -inf). An empty response is allowed: it is the response that ends at once, scored as EOS alone (the
    tiny world samples such responses; screen_rows counts them in the log)."""
    if not text.strip():
        return None if allow_empty else f"field '{field}' is empty"
    unk = tokenizer.unk_token_id
    if unk is None:  # byte-level tokenizers (Zephyr's) have no unknown token
        return None
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    unknown = [text[a:b] for t, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if t == unk]
    if unknown:
        shown = ", ".join(repr(w) for w in unknown[:3])
        return f"field '{field}' has {len(unknown)} word(s) the tokenizer does not know ({shown})"
    return None


def screen_rows(rows: list[dict], problem, policy: str, where: str) -> list[dict]:
    """Rows with a problem (`problem(row)` -> reason or None) stop the stage with the file, row and
    field (spin.invalid_rows: error) or are dropped, counted in the log (skip)."""
    kept, dropped, empty = [], [], []
    for i, row in enumerate(rows, start=1):
        reason = problem(row)
        if reason == EMPTY_RESPONSE:
            empty.append(i)
            reason = None
        if reason is None:
            kept.append(row)
        elif policy == "error":
            raise DataError(f"{where}: row {i}: {reason} (spin.invalid_rows: skip drops such rows)")
        else:
            dropped.append((i, reason))
    if empty:
        log.warning(
            "%s: %d of %d rows have an empty human response (scored and trained as EOS alone), e.g. row %d",
            where, len(empty), len(rows), empty[0],
        )  # fmt: skip
    if dropped:
        log.warning(
            "%s: %d of %d rows skipped (spin.invalid_rows: skip), e.g. row %d: %s",
            where, len(dropped), len(rows), *dropped[0],
        )  # fmt: skip
    if not kept:
        raise DataError(f"{where}: no row left after dropping the invalid ones")
    return kept


EMPTY_RESPONSE = "empty human response"  # not a problem: counted in the log


def pair_problem(tokenizer, row: dict) -> str | None:
    """The first problem of a pairs row: its prompt, its real response, its generated response."""
    user, real = first_exchange(row["real"], "pair")
    _, generated = first_exchange(row["generated"], "pair")
    return (
        text_problem(tokenizer, user, "real: user turn")
        or text_problem(tokenizer, real, "real: assistant turn", allow_empty=True)
        or text_problem(tokenizer, generated, "generated: assistant turn", allow_empty=True)
        or (EMPTY_RESPONSE if not real.strip() else None)
    )


def sft_row_problem(tokenizer, row: dict) -> str | None:
    """The first problem of an SFT row: its prompt, its response."""
    user, answer = first_exchange(row["messages"], "row")
    return (
        text_problem(tokenizer, user, "messages: user turn")
        or text_problem(tokenizer, answer, "messages: assistant turn", allow_empty=True)
        or (EMPTY_RESPONSE if not answer.strip() else None)
    )
