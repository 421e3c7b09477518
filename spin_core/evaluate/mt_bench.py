"""MT-Bench in FastChat llm_judge's file formats: questions, model answers, single-answer judgments.

fschat 0.2.36 (the newest release) cannot be imported beside current libraries (its llm_judge
imports anthropic and the pre-1.0 openai API), so this module speaks its formats directly:
- question.jsonl:        {question_id, category, turns: [q1, q2], reference?}
- model_answer/M.jsonl:  {question_id, answer_id, model_id, choices: [{index: 0, turns: [a1, a2]}], tstamp}
- model_judgment/*.jsonl (single): {question_id, model, judge: [judge_model, prompt_name], user_prompt,
                          judgment, score, turn, tstamp}
- judge_prompts.jsonl:   {name, type, system_prompt, prompt_template, description, category, output_format}
Grading follows FastChat's gen_judgment: prompts single-v1 / single-v1-multi-turn, the math variants
with reference answers for math/reasoning/coding, judge temperature 0, ratings parsed from [[x]].
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import time
from pathlib import Path

import pandas as pd

from ..config import MTBenchConfig
from ..errors import ConfigError, DataError, SpinError
from ..io import read_jsonl, write_jsonl, write_table
from ..names import MT_BENCH
from ..world.oracle_judge import OracleJudge

log = logging.getLogger(__name__)

NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")  # as FastChat's common.py
# FastChat's per-category answer temperatures (gen_model_answer.py); others get 0.7.
TEMPERATURE_BY_CATEGORY = {
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
    "reasoning": 0.0, "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0,
}  # fmt: skip
SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*)\]\]")
SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


class JudgeError(SpinError):
    """The judge could not be reached, or answered without a rating."""


REDACTED = "[api key redacted]"


class RedactSecret(logging.Filter):
    """Replaces a secret in every log record a handler emits (some OpenAI-compatible servers echo
    the key in their error messages, which the client may log)."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, REDACTED), ()
        return True


# ---------------------------------------------------------------- files
def load_questions(path: str | Path) -> list[dict]:
    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no questions")
    for i, q in enumerate(rows, start=1):
        for key in ("question_id", "category", "turns"):
            if key not in q:
                raise DataError(f"{path}: line {i}: missing field '{key}'")
        if not isinstance(q["turns"], list) or not q["turns"]:
            raise DataError(f"{path}: line {i}: field 'turns' must be a non-empty list")
    return rows


def load_judge_prompts(path: str | Path) -> dict[str, dict]:
    prompts = {}
    for i, p in enumerate(read_jsonl(path), start=1):
        for key in ("name", "system_prompt", "prompt_template", "output_format"):
            if key not in p:
                raise DataError(f"{path}: line {i}: missing field '{key}'")
        prompts[p["name"]] = p
    return prompts


def load_answers(path: str | Path) -> dict[int, dict]:
    answers = {}
    for i, a in enumerate(read_jsonl(path), start=1):
        if "question_id" not in a or not a.get("choices"):
            raise DataError(f"{path}: line {i}: needs 'question_id' and 'choices'")
        answers[a["question_id"]] = a
    return answers


# ---------------------------------------------------------------- judges
def parse_rating(judgment: str) -> float | None:
    """FastChat's rule: the first [[x]], else the first [x]; None when there is none."""
    m = SCORE_PATTERN.search(judgment) or SCORE_PATTERN_BACKUP.search(judgment)
    if not m:
        return None
    value = ast.literal_eval(m.group(1))
    return float(value)


class JudgeCache:
    """sqlite cache of judge responses keyed by the request, so a rerun does not pay twice."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, response TEXT)")
        self.db.commit()

    @staticmethod
    def key(payload: dict) -> str:
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT response FROM cache WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, response: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?)", (key, response))
        self.db.commit()


UNRATED = -1.0  # FastChat's score for a judgment without a parsable [[rating]]

# The openai client's retry backoff (openai/_constants.py: INITIAL_RETRY_DELAY, MAX_RETRY_DELAY; up to
# 25% jitter taken off): before retry n it sleeps min(0.5 * 2**n, 8) seconds at most.
RETRY_DELAY_S, MAX_RETRY_DELAY_S = 0.5, 8.0


def judge_wait_bound(cfg: MTBenchConfig) -> float:
    """The longest a judge request waits on a server that never answers: every try runs into
    timeout_s, with the client's backoff between tries. With the defaults (120 s, 5 retries): 735.5 s."""
    backoff = sum(min(RETRY_DELAY_S * 2**n, MAX_RETRY_DELAY_S) for n in range(cfg.max_retries))
    return (cfg.max_retries + 1) * cfg.timeout_s + backoff


class OpenAIJudge:
    """Any OpenAI-compatible chat endpoint as judge (FastChat's GPT-4 single grading by default).

    The API key is read from the environment variable named in the config and never logged. The
    openai client retries 5xx answers and timeouts with exponential backoff; answers without a
    rating are asked again (uncached) up to `garbage_retries` times, then recorded as -1 and left out
    of the mean, as FastChat does (counted in the scores' harness column).
    """

    def __init__(self, cfg: MTBenchConfig, prompts: dict[str, dict], cache_path: str | Path):
        env = cfg.api_key_env
        key = os.environ.get(env)
        if not key:
            raise ConfigError(f"evaluation.mt_bench.api_key_env: environment variable {env} is not set (judge API key)")
        try:
            from openai import OpenAI
        except ImportError as e:
            raise ConfigError(f"evaluation.mt_bench.judge: 'openai' needs the openai package ({e})") from None
        self.model = cfg.judge_model
        self.base_url = cfg.base_url or "https://api.openai.com/v1"
        self.client = OpenAI(api_key=key, base_url=self.base_url, timeout=cfg.timeout_s, max_retries=cfg.max_retries)
        log.info(
            "judge %s at %s: a request that gets no answer is given up after at most %.0f s"
            " (evaluation.mt_bench.timeout_s=%g per try, %d retries with backoff)",
            self.model, self.base_url, judge_wait_bound(cfg), cfg.timeout_s, cfg.max_retries,
        )  # fmt: skip
        self._secret = key
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecret(key))
        self.max_tokens = cfg.judge_max_tokens
        self.garbage_retries = cfg.garbage_retries
        self.prompts = prompts
        self.cache = JudgeCache(cache_path)

    @property
    def name(self):
        return (self.model, "single-v1")

    def _prompt_name(self, question: dict, turn: int) -> str:
        base = "single-math-v1" if question["category"] in NEED_REF_CATS else "single-v1"
        return base + ("-multi-turn" if turn == 2 else "")

    def judge(self, question: dict, answer: dict, turn: int, ref_answer: dict | None = None) -> tuple[float, str, str]:
        name = self._prompt_name(question, turn)
        if name not in self.prompts:
            raise ConfigError(f"evaluation.mt_bench.judge_prompts: no prompt named {name!r}")
        tpl = self.prompts[name]
        a = answer["choices"][0]["turns"]
        kwargs = {}
        if question["category"] in NEED_REF_CATS:
            ref = (ref_answer or {}).get("choices", [{}])[0].get("turns") or question.get("reference")
            if not ref:
                raise DataError(
                    f"question {question['question_id']}: category {question['category']!r} needs a reference answer"
                )
            kwargs["ref_answer_1"] = ref[0]
            if turn == 2:
                kwargs["ref_answer_2"] = ref[1]
        if turn == 2:
            user = tpl["prompt_template"].format(
                question_1=question["turns"][0], question_2=question["turns"][1], answer_1=a[0], answer_2=a[1], **kwargs
            )
        else:
            user = tpl["prompt_template"].format(question=question["turns"][0], answer=a[0], **kwargs)
        messages = [{"role": "system", "content": tpl["system_prompt"]}, {"role": "user", "content": user}]
        payload = {
            "base_url": self.base_url,
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        key = JudgeCache.key(payload)
        cached = self.cache.get(key)
        if cached is not None and parse_rating(cached) is not None:
            return parse_rating(cached), user, cached
        text = ""
        for _ in range(self.garbage_retries + 1):
            text = self._call(messages, question, turn)
            rating = parse_rating(text)
            if rating is not None:
                self.cache.put(key, text)
                return rating, user, text
        # FastChat's gen_judgment.py records -1 for a judgment without a rating; show_result leaves it
        # out of the mean. judgment_scores counts them in the harness column.
        log.warning(
            "judge %s: no [[rating]] in its answer for question %s turn %s after %d tries (recorded as -1, left"
            " out of the mean as FastChat does): %r",
            self.model, question["question_id"], turn, self.garbage_retries + 1, text[:200],
        )  # fmt: skip
        return UNRATED, user, text

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, REDACTED)

    def _call(self, messages, question, turn) -> str:
        """The judge's answer, with the API key removed should a server echo it. The body is read as
        sent: one that is not JSON, or JSON without a message in `choices`, is a JudgeError quoting it
        (not a traceback, nor an answer "without a rating")."""
        import openai

        where = f"judge {self.model} at {self.base_url}: question {question['question_id']} turn {turn}"
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, temperature=0, max_tokens=self.max_tokens
            )
            body = raw.http_response.text
        except openai.APIError as e:  # raised after the client's own retries
            raise JudgeError(self._redact(f"{where}: {type(e).__name__}: {getattr(e, 'message', e)}")) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise JudgeError(
                self._redact(f"{where}: the server answered with a body that is not JSON: {body[:200]!r}")
            ) from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeError(
                self._redact(f"{where}: the server's JSON has no choices[0].message.content: {body[:200]!r}")
            ) from None
        return self._redact(content or "")


def judge_answers(
    questions: list[dict], answers: dict[int, dict], judge, model_id: str, ref_answers: dict[int, dict] | None = None
) -> list[dict]:
    """Single-answer grading of every turn, in FastChat's model_judgment format."""
    out = []
    t0 = time.time()
    for n, q in enumerate(questions, start=1):
        if q["question_id"] not in answers:
            raise DataError(f"model {model_id}: no answer for question {q['question_id']}")
        for turn in range(1, len(q["turns"]) + 1):
            score, user_prompt, judgment = judge.judge(
                q, answers[q["question_id"]], turn, (ref_answers or {}).get(q["question_id"])
            )
            out.append(
                {
                    "question_id": q["question_id"],
                    "model": model_id,
                    "judge": list(judge.name),
                    "user_prompt": user_prompt,
                    "judgment": judgment,
                    "score": score,
                    "turn": turn,
                    "tstamp": time.time(),
                }
            )
        if n % 10 == 0 or n == len(questions):
            log.info("mt-bench judge: %d/%d questions (%.0fs)", n, len(questions), time.time() - t0)
    return out


def judgment_scores(judgments: list[dict], model: str) -> pd.DataFrame:
    """Tidy rows: mean score per turn and overall, stderr over questions (FastChat's show_result)."""
    df = pd.DataFrame(judgments)
    judges = sorted({str(j[0]) if isinstance(j, list | tuple) else str(j) for j in df.get("judge", [])})
    harness = f"FastChat llm_judge single-v1, judge {', '.join(judges) or '?'}"
    unrated = int((df["score"] < 0).sum())
    if unrated:  # FastChat's show_result drops them from the mean: say how many
        harness += f", {unrated} of {len(df)} judgments unrated (-1, left out)"
    df = df[df["score"] >= 0]
    rows = []
    for task, part in [("turn1", df[df["turn"] == 1]), ("turn2", df[df["turn"] == 2]), ("overall", df)]:
        if part.empty:
            continue
        n = len(part)
        rows.append(
            {
                "model": model,
                "benchmark": MT_BENCH,
                "task": task,
                "metric": "score",
                "value": float(part["score"].mean()),
                "stderr": float(part["score"].std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                "harness": harness,
            }
        )
    return pd.DataFrame(rows)


def judge_model_answers(
    mt_bench: MTBenchConfig,
    name: str,
    questions: Path,
    answers: Path,
    out: Path,
    out_csv: Path,
    cache: Path,
    judge_prompts: Path | None = None,
    reference: Path | None = None,
    world: Path | None = None,
) -> None:
    """Single-answer grading of one model's answers (FastChat model_judgment format) and its scores."""
    if mt_bench.judge == "oracle":
        if world is None:
            raise ConfigError("evaluation.mt_bench.judge: 'oracle' needs the tiny world (scale: tiny)")
        judge = OracleJudge(world)
    else:
        if judge_prompts is None:
            raise ConfigError(
                "mt-bench-judge: --judge-prompts (FastChat's judge_prompts.jsonl) is required for an API judge"
            )
        judge = OpenAIJudge(mt_bench, load_judge_prompts(judge_prompts), cache)
    refs = load_answers(reference) if reference else None
    judgments = judge_answers(load_questions(questions), load_answers(answers), judge, name, refs)
    write_jsonl(out, judgments)
    write_table(out_csv, judgment_scores(judgments, name))
