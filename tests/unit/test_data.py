"""SFT data and pairs: the UltraChat schema, the official chosen/rejected schema, and clear errors."""

import json

import pytest

from spin_core.data import load_pairs, load_sft
from spin_core.errors import DataError
from spin_core.io import write_jsonl
from spin_core.names import prompt_id
from spin_core.world.sft_data import make_tiny_sft_data


def row(pid="a", user="ba", assistant="be"):
    return {
        "prompt_id": pid,
        "prompt": user,
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
    }


def test_tiny_sft_data_is_in_ultrachat_schema_with_disjoint_splits(world, tmp_path):
    train, test = make_tiny_sft_data(world, 50, 20, seed=0)
    assert len(train) == 50 and len(test) == 20
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in test})
    for r in train + test:
        assert r["prompt_id"] == prompt_id(r["prompt"])
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert r["messages"][0]["content"] == r["prompt"]
    write_jsonl(tmp_path / "train.jsonl", train)
    assert load_sft(tmp_path / "train.jsonl") == train


def test_tiny_sft_data_is_deterministic(world):
    assert make_tiny_sft_data(world, 10, 5, seed=3) == make_tiny_sft_data(world, 10, 5, seed=3)
    assert make_tiny_sft_data(world, 10, 5, seed=3) != make_tiny_sft_data(world, 10, 5, seed=4)


@pytest.mark.parametrize(
    "lines, message",
    [
        ([], "dataset is empty"),
        ([json.dumps(row()), "{broken"], r"x.jsonl:2: invalid JSON"),
        ([json.dumps({"prompt_id": "a", "prompt": "ba"})], r"row 1: missing field 'messages'"),
        ([json.dumps(row("a")), json.dumps(row("a"))], r"row 2: duplicate prompt_id 'a' \(first seen in row 1\)"),
        (
            [json.dumps({**row(), "messages": [{"role": "user", "content": "ba"}]})],
            "no user turn followed by an assistant turn",
        ),
        (
            [json.dumps({**row(), "messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]})],
            r"messages\[0\] needs 'role' and 'content'",
        ),
        (["[1, 2]"], "expected a JSON object"),
    ],
    ids=[
        "malformed_empty",
        "malformed_broken_line",
        "malformed_missing_messages",
        "malformed_duplicate_id",
        "malformed_no_assistant",
        "malformed_message_fields",
        "malformed_not_object",
    ],
)
def test_bad_sft_files_name_file_row_and_field(tmp_path, lines, message):
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(DataError, match=message):
        load_sft(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_sft(tmp_path / "nope.jsonl")


def test_official_chosen_rejected_parquet_is_read(tmp_path):
    import pandas as pd

    chosen = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "human answer"}]
    rejected = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "model answer"}]
    pd.DataFrame({"chosen": [chosen], "rejected": [rejected]}).to_parquet(tmp_path / "train_prefs-0.parquet")
    (pair,) = load_pairs(tmp_path / "train_prefs-0.parquet")
    assert pair["real"] == chosen and pair["generated"] == rejected
    assert pair["prompt"] == "hi" and pair["prompt_id"] == prompt_id("hi")


def test_pairs_without_generated_are_rejected(tmp_path):
    write_jsonl(tmp_path / "p.jsonl", [{"real": row()["messages"]}])
    with pytest.raises(DataError, match=r"p.jsonl: row 1: missing field 'generated'"):
        load_pairs(tmp_path / "p.jsonl")


def test_a_local_dataset_folder_is_read_afresh_not_from_another_runs_cache(tmp_path, monkeypatch):
    """Two runs' folders at the same relative path (assets/chat_data) with different rows: each run
    reads its own (datasets' cache once served the first one's rows to the second)."""
    from spin_core.assets.sharegpt import write_dataset_folder
    from spin_core.data import load_ultrachat

    def rows(tag, n):
        return [{"prompt": f"{tag} {i}", "prompt_id": prompt_id(f"{tag} {i}"),
                 "messages": [{"role": "user", "content": f"{tag} {i}"}, {"role": "assistant", "content": "a"}]}
                for i in range(n)]  # fmt: skip

    for tag, n in (("first", 3), ("second", 5)):
        run = tmp_path / tag
        write_dataset_folder(run / "assets" / "chat_data", {"train_sft": rows(tag, n), "test_sft": rows(tag, 2)}, "t")
        monkeypatch.chdir(run)
        got = load_ultrachat("assets/chat_data", "train_sft", 10, seed=0)
        assert sorted(r["prompt"] for r in got) == sorted(f"{tag} {i}" for i in range(n))


def test_a_dataset_that_is_neither_a_folder_nor_reachable_says_where_it_looked(tmp_path, monkeypatch):
    import datasets.config

    from spin_core.data import load_ultrachat

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # as HF_DATASETS_OFFLINE=1 sets it at import
    with pytest.raises(DataError, match=rf"data.dataset 'rehearsal/ultrachat': no such folder \({tmp_path}/rehearsal/"
                                        r"ultrachat\), nor in datasets. cache, and the hub is offline"):  # fmt: skip
        load_ultrachat("rehearsal/ultrachat", "train_sft", 10, seed=0)
