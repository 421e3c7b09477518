"""lm-eval through our runner, offline: on the tiny tasks the exact-p_data oracle scores perfectly and a
random tiny Llama does not; unknown tasks are clear errors; the paper config's task names exist."""

import json

import pytest
import yaml

from spin_core.errors import ConfigError
from spin_core.evaluate.harness import run_lm_eval
from spin_core.modeling import save_model
from tests.helpers.workflow import ROOT


def test_oracle_is_perfect_and_random_model_is_not(tasks, tiny_model, tokenizer):
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
            assert list(df.columns) == ["model", "benchmark", "task", "metric", "value", "stderr", "harness"]
            assert df.harness.str.startswith("lm-eval 0.4").all()
            assert "results" in json.loads((tasks / f"{name}_{task}.json").read_text())  # lm-eval's own JSON
    for task in ("tiny_choice", "tiny_greedy", "tiny_bb_continuation"):
        assert scores["oracle", task] == 1.0
    assert scores["random", "tiny_choice"] < 0.75 and scores["random", "tiny_bb_continuation"] < 0.75
    assert scores["random", "tiny_greedy"] < 0.3


def test_unknown_lm_eval_task_is_a_clear_error(tasks):
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
    # v3 Table 6: BBH's CoT few-shot tasks and OpenBookQA 1-shot; PIQA is not in the paper.
    bb = {t: c["num_fewshot"] for t, c in cfg["bigbench"]["tasks"].items()}
    assert bb == {
        "bbh_cot_fewshot_causal_judgement": 3,
        "bbh_cot_fewshot_formal_fallacies": 3,
        "bbh_cot_fewshot_sports_understanding": 3,
        "openbookqa": 1,
    }


def test_paper_task_names_exist_in_lm_eval():
    from lm_eval.tasks import TaskManager

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["evaluation"]
    known = set(TaskManager().all_tasks)
    for family in ("leaderboard", "bigbench"):
        for task in cfg[family]["tasks"]:
            assert task in known, task
