"""Tiny-world evaluation tasks through the real lm-eval harness, offline: the exact-p_data oracle
scores perfectly, a random tiny Llama does not; the BIG-bench JSON converter; paper task names."""

import json
from pathlib import Path

import pytest
import yaml

from spin_core.data import make_tiny_sft_data
from spin_core.errors import ConfigError, DataError
from spin_core.eval_tasks import (
    bigbench_json_to_docs,
    build_tiny_eval_tasks,
    convert_bigbench_task,
    make_bigbench_continuation,
)
from spin_core.io import write_jsonl
from spin_core.modeling import save_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tasks(tmp_path_factory, world):
    d = tmp_path_factory.mktemp("eval")
    _, test = make_tiny_sft_data(world, 5, 40, seed=1)
    write_jsonl(d / "test.jsonl", test)
    world.save(d / "world.json")
    build_tiny_eval_tasks(
        d / "world.json", d / "test.jsonl", d / "out", {"n_docs": 40, "n_choices": 4, "n_mt_bench_questions": 3}
    )
    return d


def test_task_files_are_lm_eval_configs_over_local_jsonl(tasks):
    for name in ("tiny_choice", "tiny_greedy", "tiny_bb_continuation"):
        cfg = yaml.safe_load((tasks / "out" / "lm_eval" / f"{name}.yaml").read_text())
        assert cfg["task"] == name and cfg["dataset_path"] == "json"
        assert Path(cfg["dataset_kwargs"]["data_files"]["test"]).exists()
    q = [json.loads(line) for line in (tasks / "out" / "mt_bench" / "question.jsonl").read_text().splitlines()]
    assert len(q) == 3 and all(len(x["turns"]) == 2 for x in q)


def test_oracle_is_perfect_and_random_model_is_not(tasks, tiny_model, tokenizer):
    from spin_core.lm_eval_runner import run_lm_eval

    save_model(tiny_model, tokenizer, tasks / "random")
    include = str(tasks / "out" / "lm_eval")
    scores = {}
    for name, backend, path in [
        ("oracle", "tiny-world-oracle", tasks / "world.json"),
        ("random", "hf", tasks / "random"),
    ]:
        for task, metric in [("tiny_choice", "acc"), ("tiny_greedy", "exact_match"), ("tiny_bb_continuation", "acc")]:
            df = run_lm_eval(
                str(path),
                name,
                "b",
                task,
                [metric],
                0,
                backend=backend,
                include_path=include,
                batch_size=32,
                results_json=tasks / f"{name}_{task}.json",
            )
            scores[name, task] = df["value"].iloc[0]
            assert list(df.columns) == ["model", "benchmark", "task", "metric", "value", "stderr"]
            assert "results" in json.loads((tasks / f"{name}_{task}.json").read_text())  # lm-eval's own JSON
    for task in ("tiny_choice", "tiny_greedy", "tiny_bb_continuation"):
        assert scores["oracle", task] == 1.0
    assert scores["random", "tiny_choice"] < 0.75 and scores["random", "tiny_bb_continuation"] < 0.75
    assert scores["random", "tiny_greedy"] < 0.3


def test_unknown_lm_eval_task_is_a_clear_error(tasks):
    from spin_core.lm_eval_runner import run_lm_eval

    with pytest.raises(ConfigError, match="lm-eval task 'tiny_choise' is unknown"):
        run_lm_eval(
            str(tasks / "world.json"),
            "o",
            "b",
            "tiny_choise",
            ["acc"],
            0,
            backend="tiny-world-oracle",
            include_path=str(tasks / "out" / "lm_eval"),
        )


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


def test_paper_config_names_every_task():
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["evaluation"]
    assert set(cfg["leaderboard"]["tasks"]) == {
        "arc_challenge",
        "hellaswag",
        "truthfulqa_mc2",
        "mmlu",
        "winogrande",
        "gsm8k",
    }
    shots = {t: c["num_fewshot"] for t, c in cfg["leaderboard"]["tasks"].items()}
    assert shots == {"arc_challenge": 25, "hellaswag": 10, "truthfulqa_mc2": 0, "mmlu": 5, "winogrande": 5, "gsm8k": 5}
    assert {
        "bigbench_causal_judgment_multiple_choice",
        "bigbench_sports_understanding_multiple_choice",
        "bigbench_formal_fallacies_syllogisms_negation_multiple_choice",
        "openbookqa",
        "piqa",
    } <= set(cfg["bigbench"]["tasks"])


def test_paper_task_names_exist_in_lm_eval():
    from lm_eval.tasks import TaskManager

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["evaluation"]
    known = set(TaskManager().all_tasks)
    for family in ("leaderboard", "bigbench"):
        for task in cfg[family]["tasks"]:
            assert task in known, task
