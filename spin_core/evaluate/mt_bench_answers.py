"""MT-Bench answers (FastChat's gen_model_answer): every turn answered with the model's chat template,
the earlier turns in context, at FastChat's per-category temperatures; model_answer/*.jsonl."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import torch

from ..config import MTBenchConfig
from ..generate.backends import generate_batch
from ..io import write_jsonl
from ..modeling import load_model
from ..train.encoding import encode_chat
from .mt_bench import TEMPERATURE_BY_CATEGORY, load_questions

log = logging.getLogger(__name__)


@torch.no_grad()
def generate_answers(
    model_dir: str | Path,
    questions: list[dict],
    model_id: str,
    max_new_tokens: int,
    seed: int = 0,
    batch_size: int = 32,
    default_temperature: float = 0.7,
) -> list[dict]:
    """Answer every turn with the model's chat template, the earlier turns in context (FastChat's
    gen_model_answer), batched across questions turn by turn."""
    model, tok = load_model(model_dir)
    model.eval()
    torch.manual_seed(seed)
    n_turns = max(len(q["turns"]) for q in questions)
    convs: list[list[dict]] = [[] for _ in questions]
    answers: list[list[str]] = [[] for _ in questions]
    for turn in range(n_turns):
        active = [i for i, q in enumerate(questions) if turn < len(q["turns"])]
        for i in active:
            convs[i].append({"role": "user", "content": questions[i]["turns"][turn]})
        for start in range(0, len(active), batch_size):
            idx = active[start : start + batch_size]
            # Group by temperature: FastChat samples per category.
            for temp in sorted(
                {TEMPERATURE_BY_CATEGORY.get(questions[i]["category"], default_temperature) for i in idx}
            ):
                group = [
                    i for i in idx if TEMPERATURE_BY_CATEGORY.get(questions[i]["category"], default_temperature) == temp
                ]
                # FastChat samples only above temperature 1e-4; below, it decodes greedily.
                out = generate_batch(
                    model,
                    tok,
                    [encode_chat(tok, convs[i]) for i in group],
                    max_new_tokens,
                    dict(do_sample=True, temperature=temp, top_p=1.0, top_k=0)
                    if temp > 1e-4
                    else dict(do_sample=False),
                )
                texts = tok.batch_decode(out, skip_special_tokens=True)
                for i, text in zip(group, texts):
                    answers[i].append(text.strip())
                    convs[i].append({"role": "assistant", "content": text.strip()})
        log.info("mt-bench: %s answered turn %d of %d questions", model_id, turn + 1, len(active))
    return [
        {
            "question_id": q["question_id"],
            "answer_id": uuid.uuid4().hex[:22],
            "model_id": model_id,
            "choices": [{"index": 0, "turns": a}],
            "tstamp": time.time(),
        }
        for q, a in zip(questions, answers)
    ]


def answer_questions(
    mt_bench: MTBenchConfig, model: Path, name: str, questions: Path, out: Path, seed: int = 0
) -> None:
    """Answer the MT-Bench questions with one model (FastChat model_answer format)."""
    answers = generate_answers(
        model,
        load_questions(questions),
        name,
        mt_bench.max_new_tokens,
        seed=seed,
        batch_size=mt_bench.batch_size,
        default_temperature=mt_bench.default_temperature,
    )
    write_jsonl(out, answers)
