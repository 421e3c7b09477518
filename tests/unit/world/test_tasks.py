"""Tiny-world evaluation tasks: lm-eval task files over local JSONL, MT-Bench questions, and the
BIG-bench JSON format with its converter (the tasks through lm-eval: tests/unit/evaluate/test_harness.py)."""

import json
from pathlib import Path

import pytest
import yaml

from spin_core.errors import DataError
from spin_core.world.tasks import bigbench_json_to_docs, convert_bigbench_task, make_bigbench_continuation


def test_task_files_are_lm_eval_configs_over_local_jsonl(tasks):
    for name in ("tiny_choice", "tiny_greedy", "tiny_bb_continuation"):
        cfg = yaml.safe_load((tasks / "out" / "lm_eval" / f"{name}.yaml").read_text())
        assert cfg["task"] == name and cfg["dataset_path"] == "json"
        assert Path(cfg["dataset_kwargs"]["data_files"]["test"]).exists()
    q = [json.loads(line) for line in (tasks / "out" / "mt_bench" / "question.jsonl").read_text().splitlines()]
    assert len(q) == 3 and all(len(x["turns"]) == 2 for x in q)


def test_bigbench_json_roundtrip(tmp_path, world):
    import numpy as np

    task = make_bigbench_continuation(
        world, world.sample_prompts(10, np.random.default_rng(0)), np.random.default_rng(1)
    )
    assert task["examples"] and set(task) >= {"name", "description", "keywords", "metrics", "examples"}
    for ex in task["examples"]:
        assert sum(ex["target_scores"].values()) == 1
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    yaml_path = convert_bigbench_task(path, tmp_path / "lm", "bb")
    docs = [json.loads(line) for line in (tmp_path / "lm" / "bb.jsonl").read_text().splitlines()]
    assert len(docs) == len(task["examples"]) and yaml_path.exists()
    for doc, ex in zip(docs, task["examples"]):
        assert doc["input"] == ex["input"] and ex["target_scores"][doc["choices"][doc["gold"]]] == 1


@pytest.mark.parametrize(
    "task, message",
    [
        ({}, "field 'examples' must be a non-empty list"),
        ({"examples": [{"input": "x"}]}, r"examples\[0\] needs 'input' and a non-empty 'target_scores'"),
        ({"examples": [{"input": "x", "target_scores": {}}]}, r"examples\[0\]"),
    ],
    ids=["malformed_bigbench_no_examples", "malformed_bigbench_no_scores", "malformed_bigbench_empty_scores"],
)
def test_malformed_bigbench_task(task, message):
    with pytest.raises(DataError, match=message):
        bigbench_json_to_docs(task, "task.json")
