"""MT-Bench: FastChat formats round-trip; the oracle judge; the OpenAI-compatible judge over real
HTTP against a local fake server (500s, timeouts, garbage, cache, missing key)."""

import json
import logging

import numpy as np
import pytest

from spin_core.config import MTBenchConfig
from spin_core.errors import ConfigError, DataError
from spin_core.evaluate.mt_bench import (
    JudgeError,
    OpenAIJudge,
    judge_answers,
    judgment_scores,
    load_answers,
    load_judge_prompts,
    load_questions,
    parse_rating,
)
from spin_core.evaluate.mt_bench_answers import generate_answers
from spin_core.io import write_jsonl
from spin_core.modeling import save_model
from spin_core.world.oracle_judge import OracleJudge
from spin_core.world.tasks import TINY_JUDGE_PROMPTS, make_mt_bench_questions
from tests.helpers.fake_openai import FakeOpenAI

SECRET = "sk-test-secret-123"


@pytest.fixture()
def questions(world):
    return make_mt_bench_questions(world, np.random.default_rng(0), 3)


def answer(qid, a1="ba be", a2="bi"):
    return {
        "question_id": qid,
        "answer_id": "x",
        "model_id": "m",
        "choices": [{"index": 0, "turns": [a1, a2]}],
        "tstamp": 0,
    }


def test_fastchat_formats_roundtrip(tmp_path, world, questions, tiny_model, tokenizer):
    write_jsonl(tmp_path / "question.jsonl", questions)
    write_jsonl(tmp_path / "judge_prompts.jsonl", TINY_JUDGE_PROMPTS)
    assert load_questions(tmp_path / "question.jsonl") == questions
    assert set(load_judge_prompts(tmp_path / "judge_prompts.jsonl")) == {"single-v1", "single-v1-multi-turn"}
    save_model(tiny_model, tokenizer, tmp_path / "m")
    answers = generate_answers(tmp_path / "m", questions, "tiny", max_new_tokens=8, seed=0)
    write_jsonl(tmp_path / "a.jsonl", answers)
    loaded = load_answers(tmp_path / "a.jsonl")
    assert set(loaded) == {q["question_id"] for q in questions}
    a = loaded[questions[0]["question_id"]]
    assert (
        set(a) == {"question_id", "answer_id", "model_id", "choices", "tstamp"} and len(a["choices"][0]["turns"]) == 2
    )
    world.save(tmp_path / "w.json")
    judgments = judge_answers(questions, loaded, OracleJudge(tmp_path / "w.json"), "tiny")
    assert len(judgments) == 6
    assert set(judgments[0]) == {"question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"}
    assert all(parse_rating(j["judgment"]) == pytest.approx(j["score"], abs=0.01) for j in judgments)
    scores = judgment_scores(judgments, "tiny")
    assert list(scores["task"]) == ["turn1", "turn2", "overall"]


def test_oracle_judge_prefers_p_data_answers(tmp_path, world):
    world.save(tmp_path / "w.json")
    judge = OracleJudge(tmp_path / "w.json")
    rng = np.random.default_rng(3)
    good, bad = [], []
    for qid, prompt in enumerate(world.sample_prompts(20, rng), start=1):
        (y,), _ = world.sample_responses([prompt], rng, 96)
        noise = world.to_text(rng.integers(0, world.config.n_words, size=max(len(y), 1)))
        q = {"question_id": qid, "category": "tiny-world", "turns": [world.to_text(prompt)]}
        good.append(judge.judge(q, answer(qid, world.to_text(y)), 1)[0])
        bad.append(judge.judge(q, answer(qid, noise), 1)[0])
    assert all(1 <= s <= 10 for s in good + bad)
    assert np.mean(good) > 7 and np.mean(bad) < 4
    q = {"question_id": 1, "category": "tiny-world", "turns": ["ba"]}
    assert judge.judge(q, answer(1, "<|user|> hello"), 1)[0] == 1.0


@pytest.mark.parametrize(
    "text, rating", [("Rating: [[7]]", 7.0), ("[[8.5]] ok", 8.5), ("score [6]", 6.0), ("great!", None)]
)
def test_parse_rating_follows_fastchat(text, rating):
    assert parse_rating(text) == rating


def judge_cfg(server, **kw):
    cfg = {
        "judge": "openai",
        "judge_model": "judge-x",
        "base_url": server.base_url,
        "api_key_env": "SPIN_TEST_KEY",
        "timeout_s": 1.0,
        "max_retries": 2,
        "garbage_retries": 1,
    }
    cfg.update(kw)
    return MTBenchConfig(**cfg)


def test_openai_judge_grades_caches_and_hides_the_key(tmp_path, questions, monkeypatch, caplog):
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI() as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "cache.sqlite")
        answers = {q["question_id"]: answer(q["question_id"]) for q in questions}
        out = judge_answers(questions, answers, judge, "m")
        assert [j["score"] for j in out] == [7.0] * 6 and len(server.requests) == 6
        req = server.requests[1]
        assert req["model"] == "judge-x" and req["temperature"] == 0
        assert "[Question 2]" in req["messages"][1]["content"]  # turn 2 uses the multi-turn prompt
        assert server.auth_headers[0] == f"Bearer {SECRET}"
        # A rerun (new judge object, same cache file) does not pay twice.
        judge2 = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "cache.sqlite")
        judge_answers(questions, answers, judge2, "m")
        assert len(server.requests) == 6
    assert SECRET not in caplog.text


def test_openai_judge_retries_500_and_timeout(tmp_path, questions, monkeypatch):
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    script = [("status", 500), ("sleep", 2.0, "late [[2]]"), ("ok", "Rating: [[9]]")]
    with FakeOpenAI(script) as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        score, _, text = judge.judge(questions[0], answer(questions[0]["question_id"]), 1)
    assert score == 9.0 and len(server.requests) == 3


def test_openai_judge_gives_up_with_a_clear_error(tmp_path, questions, monkeypatch):
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    with FakeOpenAI([("status", 500)] * 3) as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        with pytest.raises(JudgeError, match=rf"question {questions[0]['question_id']} turn 1: InternalServerError"):
            judge.judge(questions[0], answer(questions[0]["question_id"]), 1)


@pytest.mark.parametrize(
    "body, message",
    [
        ("<html>502 Bad Gateway</html>", r"a body that is not JSON: '<html>502 Bad Gateway</html>'"),
        ('{"id": "x", "object": "chat.completion"}', r"JSON has no choices\[0\]\.message\.content: '\{\"id\""),
        ('{"choices": []}', r"JSON has no choices\[0\]\.message\.content"),
    ],
    ids=["not_json", "no_choices", "empty_choices"],
)
def test_openai_judge_server_answering_200_with_a_bad_body_is_one_line(tmp_path, questions, monkeypatch, body, message):
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    with FakeOpenAI([("raw", 200, body)]) as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        with pytest.raises(JudgeError, match=message) as e:
            judge.judge(questions[0], answer(questions[0]["question_id"]), 1)
    assert len(str(e.value).splitlines()) == 1 and len(server.requests) == 1


def test_openai_judge_gives_up_on_a_silent_server_within_its_stated_bound(tmp_path, questions, monkeypatch, caplog):
    import time

    from spin_core.evaluate.mt_bench import judge_wait_bound

    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    cfg_kw = dict(timeout_s=0.5, max_retries=1)
    with FakeOpenAI([("hang", 3.0)] * 2) as server:
        cfg = judge_cfg(server, **cfg_kw)
        assert judge_wait_bound(cfg) == pytest.approx(2 * 0.5 + 0.5)
        assert judge_wait_bound(MTBenchConfig()) == pytest.approx(6 * 120 + 0.5 + 1 + 2 + 4 + 8)  # the defaults
        with caplog.at_level("INFO"):
            judge = OpenAIJudge(cfg, {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        assert "given up after at most 2 s" in caplog.text
        t0 = time.time()
        with pytest.raises(JudgeError, match="APITimeoutError"):
            judge.judge(questions[0], answer(questions[0]["question_id"]), 1)
        elapsed = time.time() - t0
    assert 0.9 <= elapsed <= judge_wait_bound(cfg) + 1.0, elapsed


def test_openai_judge_unrated_answer_is_minus_one_and_left_out_of_the_mean(tmp_path, questions, monkeypatch, caplog):
    """As FastChat: a judgment without [[rating]] after the retries scores -1, is left out of the mean,
    and is counted where the scores are reported."""
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    script = [("ok", "I refuse to grade this.")] * 2  # the first turn's two tries; then "Rating: [[7]]"
    with FakeOpenAI(script) as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        answers = {q["question_id"]: answer(q["question_id"]) for q in questions}
        with caplog.at_level("WARNING"):
            out = judge_answers(questions, answers, judge, "m")
        assert len(server.requests) == 2 + len(out) - 1
    assert [j["score"] for j in out] == [-1.0] + [7.0] * (len(out) - 1)
    assert "recorded as -1, left out of the mean" in caplog.text
    scores = judgment_scores(out, "m").set_index("task")
    assert scores.loc["overall", "value"] == 7.0 and scores.loc["turn1", "value"] == 7.0
    assert f"1 of {len(out)} judgments unrated" in scores.loc["overall", "harness"]


def test_openai_judge_without_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIN_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable SPIN_TEST_KEY is not set"):
        OpenAIJudge(MTBenchConfig(api_key_env="SPIN_TEST_KEY"), {}, tmp_path / "c.sqlite")


def test_math_questions_need_a_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    prompts = {p["name"]: p for p in TINY_JUDGE_PROMPTS}
    prompts["single-math-v1"] = dict(
        prompts["single-v1"], name="single-math-v1", prompt_template="{question} {ref_answer_1} {answer} [[rating]]"
    )
    with FakeOpenAI() as server:
        judge = OpenAIJudge(judge_cfg(server), prompts, tmp_path / "c.sqlite")
        q = {"question_id": 111, "category": "math", "turns": ["1+1?"]}
        with pytest.raises(DataError, match="needs a reference answer"):
            judge.judge(q, answer(111, "2"), 1)
        score, user, _ = judge.judge(q, answer(111, "2"), 1, {"choices": [{"turns": ["2"]}]})
        assert score == 7.0 and "1+1? 2 2" in user


def test_bad_question_file(tmp_path):
    (tmp_path / "q.jsonl").write_text(json.dumps({"question_id": 1, "turns": ["x"]}) + "\n")
    with pytest.raises(DataError, match=r"q.jsonl: line 1: missing field 'category'"):
        load_questions(tmp_path / "q.jsonl")


def test_an_api_key_echoed_by_the_server_is_redacted_everywhere(tmp_path, questions, monkeypatch, caplog):
    """Some OpenAI-compatible servers repeat the key in their error message: neither the error, nor
    any log record (the openai client's included), nor a judgment may carry it."""
    monkeypatch.setenv("SPIN_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI([("echo_key", 401)]) as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "c.sqlite")
        with pytest.raises(JudgeError) as err:
            judge.judge(questions[0], answer(questions[0]["question_id"]), 1)
    assert "Incorrect API key provided" in str(err.value) and "[api key redacted]" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in caplog.text
    with FakeOpenAI(default_text=f"your key {SECRET} looks fine. Rating: [[8]]") as server:
        judge = OpenAIJudge(judge_cfg(server), {p["name"]: p for p in TINY_JUDGE_PROMPTS}, tmp_path / "d.sqlite")
        score, _, judgment = judge.judge(questions[0], answer(questions[0]["question_id"]), 1)
    assert score == 8.0 and SECRET not in judgment
