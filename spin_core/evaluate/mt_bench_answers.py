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
from ..train.encoding import SYSTEM_TURNS, encode_chat
from .mt_bench import TEMPERATURE_BY_CATEGORY, load_questions

log = logging.getLogger(__name__)


def answer_prompt_ids(tok, conversation: list[dict], system_turn: str = "none", bos: bool = False) -> list[int]:
    """An answer's prompt: the conversation so far through the chat template, after the system turn
    evaluation.mt_bench.system_turn names, with BOS first when evaluation.mt_bench.bos (FastChat's form)."""
    ids = encode_chat(tok, [*SYSTEM_TURNS[system_turn], *conversation])
    if bos and tok.bos_token_id is not None and ids[:1] != [tok.bos_token_id]:
        ids = [tok.bos_token_id, *ids]
    return ids


@torch.no_grad()
def generate_answers(
    model_dir: str | Path,
    questions: list[dict],
    model_id: str,
    max_new_tokens: int,
    seed: int = 0,
    batch_size: int = 32,
    default_temperature: float = 0.7,
    system_turn: str = "none",
    bos: bool = False,
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
                    [answer_prompt_ids(tok, convs[i], system_turn, bos) for i in group],
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
        system_turn=mt_bench.system_turn,
        bos=mt_bench.bos,
    )
    write_jsonl(out, answers)
