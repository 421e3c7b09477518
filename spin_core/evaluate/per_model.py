"""Every evaluation of one model in one process, for the tiny world (where starting Python, torch and
lm-eval costs more than the evaluation): each lm-eval task of both families, then MT-Bench answers and
judgments, written to the same files as the paper scale's one job per model x task."""

from __future__ import annotations

from pathlib import Path

from .. import names
from ..config import LmEvalFamily, MTBenchConfig
from .harness import evaluate_task
from .mt_bench import judge_model_answers
from .mt_bench_answers import answer_questions


def evaluate_model(
    leaderboard: LmEvalFamily,
    bigbench: LmEvalFamily,
    mt_bench: MTBenchConfig,
    model: Path,
    name: str,
    include_path: Path,
    questions: Path,
    judge_prompts: Path,
    world: Path,
    seed: int = 0,
) -> None:
    """All evaluations of one model (tiny world): lm-eval tasks, MT-Bench answers and judgments."""
    for folder, family in (("leaderboard", leaderboard), ("bigbench", bigbench)):
        for task in family.tasks:
            json_out, csv_out = (Path(names.eval_task_result(folder, name, task, ext)) for ext in ("json", "csv"))
            benchmark = names.EVAL_FAMILIES[folder]
            evaluate_task(family, model, name, benchmark, task, json_out, csv_out, include_path)
    answers = Path(names.mt_bench_answers(name))
    answer_questions(mt_bench, model, name, questions, answers, seed)
    judge_model_answers(
        mt_bench,
        name,
        questions,
        answers,
        Path(names.mt_bench_judgments(name)),
        Path(names.mt_bench_scores(name)),
        Path(names.JUDGE_CACHE),
        judge_prompts=judge_prompts,
        world=world,
    )
