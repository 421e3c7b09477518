"""The paper's harness, lm-eval v0.4.0 (`evaluation.<family>.harness: v0.4.0`), through the same runner
as the suite's: on the tiny tasks the exact-p_data oracle scores perfectly under it too, the harness
column says which lm-eval produced a number, each harness refuses an environment holding the other, and
the paper's task names exist in v0.4.0's registry.

The environment is the one users build, by scripts/setup_paper_harness.sh from PyPI (cached under
~/.cache/spin-repro, so a second run does not rebuild it). On import lm-eval 0.4.0 loads Hugging Face
evaluate's `exact_match` metric script from the hub (EleutherAI/lm-evaluation-harness#1697), which
cannot be reached here: evaluate.load looks for a local `exact_match/exact_match.py` first, so the
runner works in a folder holding EXACT_MATCH below, our implementation of that metric's options (what
lm-eval 0.4.3+ bundles in its place). On a machine that reaches the hub, the real one is loaded.
"""

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from spin_core.evaluate.lm_eval_versions import HARNESSES, harness_problem, lm_eval_shots
from spin_core.modeling import save_model
from tests.helpers.workflow import ROOT

CACHE = Path(os.environ.get("SPIN_REPRO_CACHE", Path.home() / ".cache" / "spin-repro")) / "venv-paper-harness"

EXACT_MATCH = """
import re
import string

import datasets
import evaluate
import numpy as np


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="share of predictions equal to their reference (test stand-in)",
            citation="",
            inputs_description="predictions, references: lists of strings",
            features=datasets.Features(
                {"predictions": datasets.Value("string", id="sequence"), "references": datasets.Value("string", id="sequence")}
            ),
        )

    def _compute(self, predictions, references, regexes_to_ignore=None, ignore_case=False,
                 ignore_punctuation=False, ignore_numbers=False):
        p, r = list(predictions), list(references)
        for rx in regexes_to_ignore or []:
            p, r = [re.sub(rx, "", x) for x in p], [re.sub(rx, "", x) for x in r]
        drop = (string.punctuation if ignore_punctuation else "") + (string.digits if ignore_numbers else "")
        table = str.maketrans("", "", drop)
        fold = (lambda x: x.lower()) if ignore_case else (lambda x: x)
        p, r = [fold(x).translate(table) for x in p], [fold(x).translate(table) for x in r]
        return {"exact_match": float(np.mean([a == b for a, b in zip(p, r)]))}
"""

RUNNER = """
import json, sys
from spin_core.errors import BackendUnavailableError
from spin_core.evaluate.harness import run_lm_eval

args = json.loads(sys.argv[1])
out = {}
try:
    run_lm_eval(args["oracle"], "o", "b", "tiny_choice", ["acc"], 0, backend="tiny-world-oracle",
                include_path=args["include"], key="evaluation.leaderboard")
except BackendUnavailableError as e:
    out["current_refused"] = str(e)
for name, backend, path in [("oracle", "tiny-world-oracle", args["oracle"]), ("random", "hf", args["random"])]:
    for task, metric in [("tiny_choice", "acc"), ("tiny_greedy", "exact_match"), ("tiny_bb_continuation", "acc")]:
        df = run_lm_eval(path, name, "b", task, [metric], 0, backend=backend, include_path=args["include"],
                         batch_size=32, harness="v0.4.0", results_json=f"{args['out']}/{name}_{task}.json")
        out[f"{name}/{task}"] = df.to_dict("records")[0]
import lm_eval.tasks
lm_eval.tasks.initialize_tasks()
out["paper_tasks_known"] = {t: t in lm_eval.tasks.ALL_TASKS for t in args["paper_tasks"]}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def paper_harness_python():
    """The paper harness's virtualenv, built once by the script users run (atomic, idempotent)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup_paper_harness.sh"), str(CACHE)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"scripts/setup_paper_harness.sh failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return CACHE / "bin" / "python"


def test_paper_harness_v040_runs_the_tiny_tasks_and_says_so(
    paper_harness_python, tasks, tiny_model, tokenizer, tmp_path
):
    save_model(tiny_model, tokenizer, tmp_path / "random")
    (tmp_path / "exact_match").mkdir()
    (tmp_path / "exact_match" / "exact_match.py").write_text(textwrap.dedent(EXACT_MATCH))
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["evaluation"]
    paper_tasks = [t for family in ("leaderboard", "bigbench") for t in paper[family]["tasks"]]
    args = {
        "oracle": str(tasks / "world.json"),
        "random": str(tmp_path / "random"),
        "include": str(tasks / "out" / "lm_eval"),
        "out": str(tmp_path),
        "paper_tasks": paper_tasks,
    }
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    done = subprocess.run(
        [str(paper_harness_python), "-c", RUNNER, json.dumps(args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    # The suite's harness refuses this environment, naming the key and the way out.
    assert "evaluation.leaderboard.harness: 'current' runs lm-eval>=0.4.9,<0.5" in out["current_refused"]
    assert "this environment has lm-eval 0.4.0; run with --use-conda (envs/eval-lm.yaml)" in out["current_refused"]
    for task in ("tiny_choice", "tiny_greedy", "tiny_bb_continuation"):
        assert out[f"oracle/{task}"]["value"] == 1.0, task
        assert {out[f"{m}/{task}"]["harness"] for m in ("oracle", "random")} == {"lm-eval 0.4.0"}
        assert "results" in json.loads((tmp_path / f"oracle_{task}.json").read_text())  # v0.4.0's own JSON
    assert out["random/tiny_choice"]["value"] < 0.75 and out["random/tiny_greedy"]["value"] < 0.3
    assert out["paper_tasks_known"] == dict.fromkeys(paper_tasks, True)


def test_paper_harness_is_refused_where_the_suites_lm_eval_is_installed():
    problem = harness_problem("v0.4.0", "evaluation.leaderboard.harness")
    assert problem.startswith(
        "evaluation.leaderboard.harness: 'v0.4.0' runs lm-eval==0.4.0, but this environment has lm-eval 0.4."
    )
    assert "envs/eval-lm-v0.4.0.yaml" in problem and "bash scripts/setup_paper_harness.sh" in problem
    assert harness_problem("current", "k") is None


def test_paper_harness_counts_bbh_exemplars_in_the_prompt_text():
    # v0.4.0's BBH CoT prompts carry their 3 exemplars; lm-eval must add none (it would add test questions).
    assert lm_eval_shots("v0.4.0", "bbh_cot_fewshot_causal_judgement", 3) == 0
    assert lm_eval_shots("current", "bbh_cot_fewshot_causal_judgement", 3) == 3
    assert lm_eval_shots("v0.4.0", "gsm8k", 5) == 5
    assert set(HARNESSES) == {"current", "v0.4.0"}
