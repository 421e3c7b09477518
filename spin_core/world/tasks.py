"""Tiny-world evaluation tasks: lm-eval task YAMLs over local JSONL, a task in BIG-bench's own JSON
format (and its converter to lm-eval), and MT-Bench questions in FastChat's format.

Every answer key is computed from the exact p_data, so the tasks measure closeness to the world:
- `tiny_choice` (multiple_choice): among k responses of equal length sampled from p_data, pick the
  one p_data ranks highest.
- `tiny_greedy` (generate_until): greedy-decode the first tokens; the answer is p_data's own greedy
  path, which is deterministic.
- `tiny_bb_continuation` (BIG-bench JSON): given a prompt and the first half of a response, pick
  the continuation p_data ranks highest among k of equal length.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import yaml

from ..config import TinyTasksConfig
from ..errors import DataError
from ..io import read_jsonl, write_jsonl, write_text
from .world import TinyWorld

log = logging.getLogger(__name__)

EOS_TEXT = "</s>"


def chat_context(prompt: str) -> str:
    """The prompt as the tiny chat template renders it, up to the assistant header."""
    return f"<|user|> {prompt} </s> <|assistant|>"


def response_text(world: TinyWorld, words, complete: bool = True) -> str:
    text = world.to_text(words)
    return f"{text} {EOS_TEXT}".strip() if complete else text


def _distinct_same_length(world, prompt, rng, k, length=None, tries=400):
    """k distinct p_data samples of one length (the first sample's unless given), or None."""
    found: dict[tuple, np.ndarray] = {}
    for _ in range(tries):
        ys, done = world.sample_responses([prompt] * 32, rng, 96)
        for y, d in zip(ys, done):
            if not d or len(y) == 0:
                continue
            if length is None:
                length = len(y)
            if len(y) == length:
                found.setdefault(tuple(y.tolist()), y)
            if len(found) == k:
                return list(found.values())
    return None


def make_choice_docs(world: TinyWorld, prompts: list[np.ndarray], rng, k: int = 4) -> list[dict]:
    docs = []
    for p in prompts:
        cands = _distinct_same_length(world, p, rng, k)
        if cands is None:
            continue
        order = rng.permutation(k)
        cands = [cands[i] for i in order]
        logp = world.log_prob([p] * k, cands, [True] * k)
        docs.append(
            {
                "prompt": world.to_text(p),
                "context": chat_context(world.to_text(p)),
                "choices": [response_text(world, c) for c in cands],
                "gold": int(np.argmax(logp)),
            }
        )
    return docs


def make_greedy_docs(world: TinyWorld, prompts: list[np.ndarray], n_tokens: int = 3) -> list[dict]:
    docs = []
    for p in prompts:
        words, _ = world.greedy_response(p, n_tokens)
        docs.append(
            {"prompt": world.to_text(p), "context": chat_context(world.to_text(p)), "target": world.to_text(words)}
        )
    return docs


def make_bigbench_continuation(world: TinyWorld, prompts: list[np.ndarray], rng, k: int = 4) -> dict:
    """A task in BIG-bench's JSON format (examples with `input` and `target_scores`)."""
    examples = []
    for p in prompts:
        ys, done = world.sample_responses([p] * 64, rng, 96)
        long = [y for y, d in zip(ys, done) if d and len(y) >= 4]
        if not long:
            continue
        y = long[0]
        m = len(y) // 2
        suffix_len = len(y) - m
        pool = {tuple(y[m:].tolist())}
        for other in long[1:]:
            if len(other) >= suffix_len:
                pool.add(tuple(other[len(other) - suffix_len :].tolist()))
            if len(pool) == k:
                break
        if len(pool) < k:
            continue
        cands = [np.array(c) for c in pool]
        full = [np.concatenate([y[:m], c]) for c in cands]
        logp = world.log_prob([p] * k, full, [True] * k)
        best = int(np.argmax(logp))
        examples.append(
            {
                "input": f"{chat_context(world.to_text(p))} {world.to_text(y[:m])}",
                "target_scores": {response_text(world, c): int(i == best) for i, c in enumerate(cands)},
            }
        )
    return {
        "name": "tiny_world_continuation",
        "description": "Continue a tiny-world response: pick the continuation most probable under p_data.",
        "keywords": ["multiple choice", "synthetic", "exact answer key"],
        "metrics": ["multiple_choice_grade"],
        "preferred_score": "multiple_choice_grade",
        "examples": examples,
    }


def bigbench_json_to_docs(task: dict, where: str) -> list[dict]:
    """Convert BIG-bench JSON examples to lm-eval multiple-choice docs (input, choices, gold)."""
    examples = task.get("examples")
    if not isinstance(examples, list) or not examples:
        raise DataError(f"{where}: field 'examples' must be a non-empty list")
    docs = []
    for i, ex in enumerate(examples):
        if "input" not in ex or not isinstance(ex.get("target_scores"), dict) or not ex["target_scores"]:
            raise DataError(f"{where}: examples[{i}] needs 'input' and a non-empty 'target_scores'")
        choices = list(ex["target_scores"])
        scores = [float(ex["target_scores"][c]) for c in choices]
        docs.append({"input": ex["input"], "choices": choices, "gold": int(np.argmax(scores))})
    return docs


def write_lm_eval_task(
    out_dir: str | Path, name: str, docs: list[dict], kind: str, description: str | None = None
) -> Path:
    """Write `name.jsonl` and an lm-eval task config `name.yaml` that reads it (no hub); `description`
    is lm-eval's text before the whole prompt (a BIG-bench task_prefix)."""
    out_dir = Path(out_dir).resolve()
    data = out_dir / f"{name}.jsonl"
    write_jsonl(data, docs)
    cfg = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "target_delimiter": " ",
    }
    if description:
        cfg["description"] = description
    if kind == "multiple_choice":
        text_field = "context" if "context" in docs[0] else "input"
        cfg.update(
            output_type="multiple_choice",
            doc_to_text="{{" + text_field + "}}",
            doc_to_choice="{{choices}}",
            doc_to_target="{{gold}}",
            metric_list=[
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        )
    elif kind == "generate_until":
        cfg.update(
            output_type="generate_until",
            doc_to_text="{{context}}",
            doc_to_target="{{target}}",
            generation_kwargs={"until": [EOS_TEXT], "max_gen_toks": 3, "do_sample": False, "temperature": 0.0},
            filter_list=[{"name": "strip", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
            metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        )
    else:
        raise ValueError(kind)
    path = out_dir / f"{name}.yaml"
    write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def make_mt_bench_questions(world: TinyWorld, rng, n: int) -> list[dict]:
    """Two-turn questions in FastChat's question.jsonl format."""
    prompts = world.sample_prompts(2 * n, rng)
    return [
        {
            "question_id": i + 1,
            "category": "tiny-world",
            "turns": [world.to_text(prompts[2 * i]), world.to_text(prompts[2 * i + 1])],
        }
        for i in range(n)
    ]


# Judge prompts in FastChat's judge_prompts.jsonl format (our wording; paper scale downloads
# FastChat's own file). The oracle judge does not read them; the openai judge does.
TINY_JUDGE_PROMPTS = [
    {
        "name": "single-v1",
        "type": "single",
        "system_prompt": "You are a strict grader of answers in a small synthetic language.",
        "prompt_template": "[Question]\n{question}\n\n[Answer]\n{answer}\n\nRate the answer from 1 to 10 "
        'and end with the rating in this format: "[[rating]]", for example "Rating: [[5]]".',
        "description": "Single-answer grading, first turn",
        "category": "general",
        "output_format": "[[rating]]",
    },
    {
        "name": "single-v1-multi-turn",
        "type": "single",
        "system_prompt": "You are a strict grader of conversations in a small synthetic language. "
        "Grade the assistant's second answer.",
        "prompt_template": "[Question 1]\n{question_1}\n\n[Answer 1]\n{answer_1}\n\n[Question 2]\n{question_2}\n\n"
        '[Answer 2]\n{answer_2}\n\nRate the second answer from 1 to 10 and end with "[[rating]]".',
        "description": "Single-answer grading, second turn",
        "category": "general",
        "output_format": "[[rating]]",
    },
]


def build_tiny_eval_tasks(tiny_tasks: TinyTasksConfig, world: Path, test: Path, out_dir: Path) -> dict:
    """Write the tiny world's evaluation tasks (lm-eval, BIG-bench JSON, MT-Bench questions)."""
    tiny = TinyWorld.load(world)
    rows = read_jsonl(test)
    prompts = [tiny.from_text(r["prompt"], f"{test}: prompt") for r in rows][: tiny_tasks.n_docs]
    rng = np.random.default_rng(tiny_tasks.seed)
    out_dir = Path(out_dir)
    k = tiny_tasks.n_choices
    written = {
        "tiny_choice": write_lm_eval_task(
            out_dir / "lm_eval", "tiny_choice", make_choice_docs(tiny, prompts, rng, k), "multiple_choice"
        ),
        "tiny_greedy": write_lm_eval_task(
            out_dir / "lm_eval", "tiny_greedy", make_greedy_docs(tiny, prompts), "generate_until"
        ),
    }
    bb = make_bigbench_continuation(tiny, prompts, rng, k)
    bb_path = out_dir / "bigbench" / "tiny_bb_continuation" / "task.json"
    write_text(bb_path, json.dumps(bb, indent=1) + "\n")
    written["tiny_bb_continuation"] = convert_bigbench_task(bb_path, out_dir / "lm_eval", "tiny_bb_continuation")
    q = make_mt_bench_questions(tiny, rng, tiny_tasks.n_mt_bench_questions)
    write_jsonl(out_dir / "mt_bench" / "question.jsonl", q)
    write_jsonl(out_dir / "mt_bench" / "judge_prompts.jsonl", TINY_JUDGE_PROMPTS)
    log.info("eval tasks: %s", written)
    return {k: str(v) for k, v in written.items()}


def convert_bigbench_task(task_json: str | Path, out_dir: str | Path, name: str) -> Path:
    """BIG-bench JSON task file -> lm-eval multiple_choice task (YAML + JSONL)."""
    task_json = Path(task_json)
    try:
        task = json.loads(task_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{task_json}: cannot read BIG-bench task ({e})") from None
    return write_lm_eval_task(out_dir, name, bigbench_json_to_docs(task, str(task_json)), "multiple_choice")
