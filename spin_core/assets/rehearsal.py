"""Local stand-ins for the paper-scale inputs, so config/rehearsal.yaml runs the paper's code path on a
CPU without the hub: a small chat model saved as a Hugging Face folder (a byte-level BPE tokenizer
trained on the local text, a zephyr-style chat template, a tiny random Llama), an UltraChat-200k-schema
dataset folder that `datasets.load_dataset` reads exactly as it reads the hub's (README `configs` with
the train_sft / test_sft splits), MT-Bench files in FastChat's formats, and an lm-eval task that
includes lm-eval's own `arc_easy` definition over a local copy of data in ARC's schema.

`spin-repro rehearsal-assets --out rehearsal` writes them and `rehearsal/paths.yaml`, a config overlay
with their paths and sha256s: `snakemake --configfile config/rehearsal.yaml rehearsal/paths.yaml`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..io import write_jsonl, write_table, write_text
from .registry import file_sha256

log = logging.getLogger(__name__)

SUBJECTS = ["the garden", "a small boat", "the old bridge", "a red kite", "the city library", "a quiet lake"]
VERBS = ["describe", "explain", "improve", "paint", "visit", "repair"]
ADJECTIVES = ["calm", "bright", "careful", "simple", "useful", "gentle"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# FastChat's single-answer grading prompts, shortened; the judge client needs these four names.
JUDGE_PROMPTS = [
    {"name": name, "type": "single", "system_prompt": "You are a helpful judge.", "output_format": "[[rating]]",
     "prompt_template": template, "description": "rehearsal", "category": "general"}
    for name, template in [
        ("single-v1", "[Question]\n{question}\n[Answer]\n{answer}\nRate it 1-10 as [[rating]]."),
        ("single-v1-multi-turn", "{question_1}\n{answer_1}\n{question_2}\n{answer_2}\nRate turn 2 as [[rating]]."),
        ("single-math-v1", "{question}\n{ref_answer_1}\n{answer}\nRate it as [[rating]]."),
        ("single-math-v1-multi-turn", "{question_1}\n{ref_answer_1}\n{answer_1}\n{question_2}\n{ref_answer_2}\n"
         "{answer_2}\nRate turn 2 as [[rating]]."),
    ]
]  # fmt: skip


def _exchange(rng) -> tuple[str, str]:
    s, v, a = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(ADJECTIVES)
    return f"How would you {v} {s}?", f"To {v} {s}, be {a}: look at {s} first, then {v} it step by step."


def ultrachat_rows(n: int, seed: int, split: str) -> list[dict]:
    """Rows in UltraChat-200k's schema: prompt, prompt_id, messages (user/assistant turns)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        (q1, a1), (q2, a2) = _exchange(rng), _exchange(rng)
        rows.append({
            "prompt": q1,
            "prompt_id": hashlib.sha256(f"{split}-{i}-{q1}".encode()).hexdigest(),
            "messages": [{"role": "user", "content": q1}, {"role": "assistant", "content": a1},
                         {"role": "user", "content": q2}, {"role": "assistant", "content": a2}],
        })  # fmt: skip
    return rows


def write_ultrachat(out: Path, n_train: int, n_test: int, seed: int) -> list[dict]:
    """A dataset folder laid out as the hub's HuggingFaceH4/ultrachat_200k (parquet + README configs)."""
    splits = {"train_sft": ultrachat_rows(n_train, seed, "train"), "test_sft": ultrachat_rows(n_test, seed + 1, "test")}
    for split, rows in splits.items():
        write_table(out / "data" / f"{split}-00000-of-00001.parquet", pd.DataFrame(rows))
    card = {"configs": [{"config_name": "default", "data_files": [
        {"split": split, "path": f"data/{split}-*"} for split in splits]}]}  # fmt: skip
    write_text(out / "README.md", f"---\n{yaml.safe_dump(card, sort_keys=False)}---\nUltraChat-schema stand-in.\n")
    return splits["train_sft"] + splits["test_sft"]


def write_chat_model(out: Path, texts: list[str], seed: int) -> None:
    """A byte-level BPE tokenizer trained on `texts` with a chat template, and a tiny random Llama."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from ..modeling import save_model

    special = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", chat_template=CHAT_TEMPLATE)  # fmt: skip
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                      pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)  # fmt: skip
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    save_model(model, fast, out)


def write_mt_bench(out: Path, seed: int) -> dict[str, Path]:
    """FastChat's question.jsonl (one writing and one math question, two turns each), the judge
    prompts and GPT-4-style reference answers, in their formats."""
    rng = np.random.default_rng(seed)
    questions = [
        {"question_id": 81, "category": "writing", "turns": [_exchange(rng)[0], "Now make it shorter."]},
        {"question_id": 111, "category": "math", "turns": ["What is 2 + 3?", "And 2 + 4?"], "reference": ["5", "6"]},
    ]
    references = [{"question_id": 111, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["5", "6"]}]}]
    files = {"questions": out / "question.jsonl", "judge_prompts": out / "judge_prompts.jsonl",
             "reference_answers": out / "reference_answer.jsonl"}  # fmt: skip
    write_jsonl(files["questions"], questions)
    write_jsonl(files["judge_prompts"], JUDGE_PROMPTS)
    write_jsonl(files["reference_answers"], references)
    return files


def write_arc_task(out: Path, seed: int, n: int = 12) -> Path:
    """A folder for lm-eval's include_path: a task that includes lm-eval's own arc_easy.yaml (its
    prompt, choices, metrics) and reads a local JSONL in ARC's schema instead of the hub."""
    import lm_eval

    arc = Path(lm_eval.__file__).parent / "tasks" / "arc" / "arc_easy.yaml"
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        s = rng.choice(SUBJECTS)
        options = [f"look at {s}", f"forget {s}", f"hide {s}", f"sell {s}"]
        order = rng.permutation(4)  # the right answer ("look at") at a random position
        labels = ["A", "B", "C", "D"]
        docs.append({"id": f"rehearsal-{i}", "question": f"What should you do first to describe {s}?",
                     "choices": {"text": [options[j] for j in order], "label": labels},
                     "answerKey": labels[int(np.where(order == 0)[0][0])]})  # fmt: skip
    write_jsonl(out / "arc_rehearsal.jsonl", docs)
    split = {"train": str(out / "arc_rehearsal.jsonl"), "validation": str(out / "arc_rehearsal.jsonl"),
             "test": str(out / "arc_rehearsal.jsonl")}  # fmt: skip
    task = {"include": str(arc), "task": "arc_rehearsal", "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": split}}  # fmt: skip
    write_text(out / "arc_rehearsal.yaml", yaml.safe_dump(task, sort_keys=False))
    return out


def write_rehearsal_assets(out: Path, seed: int = 0) -> None:
    """Every stand-in under `out`, and `out/paths.yaml`: the config overlay that points at them."""
    out = Path(out).resolve()
    rows = write_ultrachat(out / "ultrachat", n_train=48, n_test=16, seed=seed)
    texts = [m["content"] for r in rows for m in r["messages"]] + ["What is 2 + 3?", "Now make it shorter."]
    write_chat_model(out / "sft_model", texts, seed)
    mt = write_mt_bench(out / "mt_bench", seed)
    tasks = write_arc_task(out / "lm_eval", seed)
    overlay = {
        "data": {"dataset": str(out / "ultrachat")},
        "sft": {"model": str(out / "sft_model")},
        "evaluation": {
            "leaderboard": {"include_path": str(tasks)},
            "bigbench": {"include_path": str(tasks)},
            "mt_bench": {k: {"url": path.as_uri(), "sha256": file_sha256(path)} for k, path in mt.items()},
        },
    }
    write_text(
        out / "paths.yaml", "# Written by spin-repro rehearsal-assets.\n" + yaml.safe_dump(overlay, sort_keys=False)
    )
    log.info("rehearsal assets in %s: %s", out, json.dumps(overlay)[:300])
