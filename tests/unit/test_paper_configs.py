"""The paper-scale configs: config/paper.yaml follows the recipe the paper states (App. B.1),
config/paper-official.yaml the official code's defaults, and they differ in exactly the keys the
official code changes; the evaluation tasks exist in the installed lm-eval."""

from pathlib import Path

import lm_eval
import pytest
import yaml

from spin_core.configfile import validate_config
from tests.helpers.workflow import ROOT

PAPER = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
OFFICIAL = yaml.safe_load((ROOT / "config" / "paper-official.yaml").read_text())
RESULTS = yaml.safe_load((ROOT / "analysis" / "paper_results.yaml").read_text())["paper"]


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def test_paper_config_follows_app_b1_per_iteration():
    cfg = validate_config(PAPER, "paper.yaml")
    recipe = RESULTS["recipe"]
    for t in range(4):
        s = cfg.spin.for_iteration(t)
        assert s.learning_rate == recipe["learning_rate"][f"iter{t}"], t
        assert s.beta == recipe["beta"][f"iter{t}"], t
        assert s.num_train_epochs == recipe["num_train_epochs"] and s.max_length == recipe["max_length"]
    assert cfg.generate.backend == "hf" and cfg.generate.decoding == "model"
    assert cfg.generate.prompt_template == recipe["prompt_template"]
    assert "per_iteration" in (ROOT / "config" / "paper.yaml").read_text()


def test_official_config_differs_from_the_paper_config_only_where_the_official_code_does():
    a, b = flatten(PAPER), flatten(OFFICIAL)
    assert a.keys() == b.keys()
    differ = {k for k in a if a[k] != b[k]}
    assert differ == {"recipe", "spin.num_train_epochs", "spin.max_length", "generate.batch_size"}
    assert b["spin.num_train_epochs"] == 6 and b["spin.max_length"] == 1024


def lm_eval_task_names() -> set[str]:
    root = Path(lm_eval.__file__).parent / "tasks"
    names = set()
    for path in root.rglob("*.yaml"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("task:"):
                names.add(line.split(":", 1)[1].strip().strip("'\""))
    return names


@pytest.mark.parametrize("config", ["paper.yaml", "paper-official.yaml", "paper-released.yaml"])
def test_paper_evaluation_tasks_are_lm_eval_tasks_as_the_paper_ran_them(config):
    cfg = validate_config(yaml.safe_load((ROOT / "config" / config).read_text()), config)
    known = lm_eval_task_names()
    bb = cfg.evaluation.bigbench.tasks
    for task in [*cfg.evaluation.leaderboard.tasks, *bb]:
        assert task in known or task == "mmlu", task  # mmlu is a group
    columns = RESULTS["mt_bench_bigbench"]["columns"]
    assert set(bb) == set(columns) - {"mt_bench"}  # Table 6's columns, no PIQA
    for task, spec in bb.items():
        assert spec.num_fewshot == columns[task]["shots"] and spec.primary_metric == columns[task]["metric"]
    for task, spec in cfg.evaluation.leaderboard.tasks.items():
        assert spec.num_fewshot == RESULTS["leaderboard_tasks"][task]["shots"]
