"""Gather per-job evaluation rows into results/eval/scores.csv, adding the leaderboard average."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..config import LmEvalFamily
from ..names import EVAL_FAMILIES

# The tidy evaluation rows of every job (lm-eval tasks, MT-Bench) and of scores.csv.
# harness: what produced the number (lm-eval and its version, or the MT-Bench judge).
SCORE_COLUMNS = ["model", "benchmark", "task", "metric", "value", "stderr", "harness"]


def leaderboard_average(scores: pd.DataFrame, primary: dict[str, str]) -> pd.DataFrame:
    """Per model, the mean of each leaderboard task's primary metric, as the paper averages its
    six tasks (values as lm-eval reports them, 0..1). Only models with every task get a row.

    Its stderr is that of a mean of independent estimates: sqrt(sum of the tasks' stderr^2) / n_tasks
    (NaN if a task reports none)."""
    rows = []
    lb = scores[scores["benchmark"] == EVAL_FAMILIES["leaderboard"]]
    for model, part in lb.groupby("model", sort=False):
        values, errors, harnesses = [], [], set()
        for task, metric in primary.items():
            hit = part[(part["task"] == task) & (part["metric"] == metric)]
            if hit.empty:
                break
            values.append(float(hit["value"].iloc[0]))
            errors.append(float(hit["stderr"].iloc[0]))
            harnesses.add(str(hit["harness"].iloc[0]) if "harness" in hit else "")
        else:
            rows.append(
                {
                    "model": model,
                    "benchmark": EVAL_FAMILIES["leaderboard"],
                    "task": "average",
                    "metric": "average",
                    "value": sum(values) / len(values),
                    "stderr": math.sqrt(sum(e * e for e in errors)) / len(errors),
                    "harness": ", ".join(sorted(harnesses)),
                }
            )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def collect_scores(leaderboard: LmEvalFamily, inputs: list[Path], models: list[str]) -> pd.DataFrame:
    """Gather evaluation rows into scores.csv with the leaderboard average, models in the given order."""
    primary = {task: spec.primary_metric for task, spec in leaderboard.tasks.items()}
    frames = [pd.read_csv(p) for p in inputs]
    scores = pd.concat(frames, ignore_index=True).reindex(columns=SCORE_COLUMNS)
    scores = pd.concat([scores, leaderboard_average(scores, primary)], ignore_index=True)
    order = {m: i for i, m in enumerate(models)}
    scores["_order"] = scores["model"].map(order)
    return scores.sort_values(["_order", "benchmark", "task", "metric"]).drop(columns="_order").reset_index(drop=True)
