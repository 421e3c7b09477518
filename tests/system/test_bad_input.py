"""Bad input through the command line the rules call: each case must exit non-zero with a one-line
error that names the file (and row/line/field where there is one), and leave no output behind."""

import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spin_core import cli
from spin_core.config import EncodingConfig, ReferenceConfig
from spin_core.io import write_jsonl, write_table
from spin_core.modeling import save_model
from tests.helpers.workflow import MICRO


@pytest.fixture(scope="module")
def env(tmp_path_factory, world, tokenizer, tiny_model):
    """A valid model, world and data to break one piece at a time."""
    root = tmp_path_factory.mktemp("bad_input")
    save_model(tiny_model, tokenizer, root / "model")
    world.save(root / "world.json")
    good = {
        "prompt_id": "p1",
        "prompt": world.words[0] + " " + world.words[1],
        "messages": [
            {"role": "user", "content": world.words[0] + " " + world.words[1]},
            {"role": "assistant", "content": world.words[2]},
        ],
    }
    write_jsonl(root / "good.jsonl", [good])
    return root, good


def micro_config() -> dict:
    return yaml.safe_load(MICRO.read_text())


def with_key(path: str, value):
    cfg = micro_config()
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


def spin_view(view) -> dict:
    """The micro config's spin keys a stage reads (what the rules pass it)."""
    return {k: v for k, v in micro_config()["spin"].items() if k in view.model_fields}


REHEARSAL_QUESTIONS_LINE = next(
    i for i, line in enumerate((MICRO.parent / "rehearsal.yaml").read_text().splitlines(), 1) if "questions:" in line
)
SPIN_PARAMS = json.dumps({"spin": micro_config()["spin"]})
REF_PARAMS = json.dumps({"spin": spin_view(ReferenceConfig)})
GEN_PARAMS = json.dumps({"generate": micro_config()["generate"], "spin": spin_view(EncodingConfig)})


def config_case(name, cfg_or_text, expected):
    def setup(root, good):
        path = root / f"{name}.yaml"
        path.write_text(cfg_or_text if isinstance(cfg_or_text, str) else yaml.safe_dump(cfg_or_text))
        return ["validate", str(path)], None, [path.name, *expected]

    return pytest.param(setup, id=f"bad_input-{name}")


def jsonl_case(name, lines, expected):
    """A broken SFT/prompts file fed to the generate stage."""

    def setup(root, good):
        path = root / f"{name}.jsonl"
        path.write_text("".join(line + "\n" for line in lines(good)))
        out = root / f"{name}.parquet"
        argv = ["generate", "--params", GEN_PARAMS, "--model", str(root / "model"), "--prompts", str(path)]
        return [*argv, "--out", str(out), "--iteration", "0"], out, [path.name, *expected]

    return pytest.param(setup, id=f"bad_input-{name}")


def model_case(name, breaker, expected):
    def setup(root, good):
        import shutil

        model = root / f"model_{name}"
        if breaker is not None:
            shutil.copytree(root / "model", model, dirs_exist_ok=True)
            breaker(model)
        out = root / f"{name}.parquet"
        argv = ["generate", "--params", GEN_PARAMS, "--model", str(model), "--prompts", str(root / "good.jsonl")]
        return [*argv, "--out", str(out), "--iteration", "0"], out, [model.name, *expected]

    return pytest.param(setup, id=f"bad_input-{name}")


def _no_tokenizer(model: Path):
    (model / "tokenizer_config.json").unlink()


def _no_chat_template(model: Path):
    for f in model.glob("chat_template.*"):
        f.unlink()
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))


def _no_weights(model: Path):
    for f in model.glob("*.safetensors"):
        f.unlink()


def _truncated_weights(model: Path):
    for f in model.glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _tokenizer_of_another_world(model: Path):
    from spin_core.config import WorldConfig
    from spin_core.world.tokenizer import build_tokenizer
    from spin_core.world.world import TinyWorld

    build_tokenizer(TinyWorld(WorldConfig(n_words=40)).words).save_pretrained(str(model))


def sft_case(name, make_rows, expected):
    """A broken SFT training file fed to the sft stage (tiny world: train from the world's tokenizer)."""

    def setup(root, good):
        path = root / f"{name}.jsonl"
        write_jsonl(path, make_rows(good))
        params = json.dumps({"sft": micro_config()["sft"], "spin": spin_view(EncodingConfig)})
        out = root / f"{name}_model"
        argv = ["sft", "--params", params, "--train", str(path), "--tokenizer", str(root / "model")]
        return [*argv, "--out", str(out), "--checkpoints", str(root / f"{name}_ck")], out, [path.name, *expected]

    return pytest.param(setup, id=f"bad_input-{name}")


def _with_answer(good, text):
    return {**good, "messages": [good["messages"][0], {"role": "assistant", "content": text}]}


def pairs_case(name, make_rows, command, expected):
    def setup(root, good):
        pairs = root / f"{name}.parquet"
        write_table(pairs, pd.DataFrame.from_records(make_rows(good)))
        out = root / f"{name}_out"
        if command == "reference":
            argv = ["reference", "--params", REF_PARAMS, "--model", str(root / "model"), "--pairs", str(pairs)]
            argv += ["--out", str(out) + ".parquet"]
            out = Path(str(out) + ".parquet")
        else:
            argv = ["train", "--params", SPIN_PARAMS, "--pairs", str(pairs), "--init", str(root / "model")]
            argv += [
                "--out",
                str(out),
                "--checkpoints",
                str(root / f"{name}_ck"),
                "--metrics",
                str(root / f"{name}.json"),
            ]
        return argv, out, expected

    return pytest.param(setup, id=f"bad_input-{name}")


def _pair(good, **extra):
    real = good["messages"]
    generated = [real[0], {"role": "assistant", "content": real[1]["content"]}]
    return {"prompt_id": good["prompt_id"], "prompt": good["prompt"], "real": real, "generated": generated, **extra}


def special_case(name):
    return pytest.param(name, id=f"bad_input-{name}")


CASES = [
    config_case("unknown_config_key", with_key("spin.betta", 2), ["spin", "betta"]),
    config_case("wrong_type", with_key("spin.beta", "high"), ["spin.beta"]),
    config_case("negative_lr", with_key("spin.learning_rate", -1e-4), ["spin.learning_rate"]),
    config_case("beta_zero", with_key("spin.beta", 0), ["spin.beta"]),
    config_case("iterations_not_0_to_n", with_key("iterations", [0, 2]), ["iterations"]),
    config_case("invalid_yaml", "scale: tiny\nspin: [unclosed\n", ["invalid YAML"]),
    config_case("configfile_tab_indented", "scale: tiny\nspin:\n\tbeta: 0.1\n", [":3:1:", "not tabs"]),
    config_case(
        "configfile_duplicate_key", "scale: tiny\nspin:\n  beta: 0.1\n  beta: 5\n", [":4:", "duplicate key 'beta'"]
    ),
    config_case("configfile_not_a_mapping", "- scale\n", ["top level must be a mapping"]),
    config_case(
        "tiny_task_the_world_does_not_build",
        {
            **micro_config(),
            "evaluation": {
                "enabled": True,
                "leaderboard": {"tasks": {"hellaswag": {"num_fewshot": 0, "metrics": ["acc"]}}},
            },
        },
        ["evaluation.leaderboard.tasks", "'hellaswag'", "tiny_choice"],
    ),
    config_case(
        "paper_mt_bench_without_its_files",  # config/rehearsal.yaml without rehearsal/paths.yaml
        (MICRO.parent / "rehearsal.yaml").read_text(),
        [
            f":{REHEARSAL_QUESTIONS_LINE}:",
            "evaluation.mt_bench.questions.url: required at paper scale",
            "rehearsal-assets",
            "enabled: false",
        ],  # fmt: skip
    ),
    config_case(
        "task_name_with_shell_characters",
        with_key("evaluation.leaderboard.tasks", {"a;b": {"num_fewshot": 0, "metrics": ["acc"]}}),
        ["evaluation.leaderboard.tasks", "not an lm-eval task name"],
    ),
    config_case(
        "accelerate_config_with_a_command",
        with_key("spin.accelerate_config", "$(touch x)"),
        ["spin.accelerate_config", "local path"],
    ),
    special_case("configfile_missing"),
    special_case("configfile_is_a_directory"),
    config_case("max_prompt_not_below_max_length", with_key("spin.max_prompt_length", 48), ["spin.max_prompt_length"]),
    jsonl_case("empty_dataset", lambda g: [], ["dataset is empty"]),
    jsonl_case("jsonl_broken_line", lambda g: [json.dumps(g), "{broken"], [":2:", "invalid JSON"]),
    special_case("jsonl_invalid_utf8"),
    config_case("nan_for_a_number", with_key("spin.beta", float("nan")), ["spin.beta", "finite number"]),
    config_case("inf_for_a_number", with_key("spin.learning_rate", float("inf")), ["spin.learning_rate", "finite"]),
    jsonl_case(
        "row_missing_messages", lambda g: [json.dumps({"prompt_id": "a", "prompt": "x"})], ["row 1", "messages"]
    ),
    jsonl_case(
        "no_assistant_turn",
        lambda g: [json.dumps({**g, "messages": g["messages"][:1]})],
        ["row 1", "no user turn followed by an assistant turn"],
    ),
    jsonl_case(
        "duplicate_prompt_id",
        lambda g: [json.dumps(g), json.dumps(g)],
        ["row 2", "duplicate prompt_id 'p1'"],
    ),
    model_case("missing_model_path", None, ["model directory not found"]),
    model_case("model_without_tokenizer", _no_tokenizer, ["no tokenizer"]),
    model_case("model_without_chat_template", _no_chat_template, ["no chat template"]),
    model_case("model_without_weights", _no_weights, ["no model weights"]),
    model_case("model_weights_truncated", _truncated_weights, ["the model does not load"]),
    model_case("tokenizer_larger_than_the_model", _tokenizer_of_another_world, ["tokenizer has 46 tokens", "only 18"]),
    pairs_case(
        "pairs_word_outside_the_vocabulary",
        lambda g: [_pair(g, real=[g["messages"][0], {"role": "assistant", "content": "ba zzzq"}])],
        "reference",
        ["row 1", "field 'real: assistant turn'", "1 word(s) the tokenizer does not know ('zzzq')"],
    ),  # fmt: skip
    pairs_case(
        "pairs_empty_prompt",
        lambda g: [_pair(g, real=[{"role": "user", "content": " "}, g["messages"][1]])],
        "reference",
        ["row 1", "field 'real: user turn' is empty"],
    ),  # fmt: skip
    sft_case(
        "sft_word_outside_the_vocabulary", lambda g: [_with_answer(g, "ba qqqx")], ["row 1", "does not know ('qqqx')"]
    ),
    pairs_case(
        "pairs_missing_generated",
        lambda g: [{k: v for k, v in _pair(g).items() if k != "generated"}],
        "reference",
        ["row 1", "missing field 'generated'"],
    ),  # fmt: skip
    pairs_case("pairs_without_reference_logps", lambda g: [_pair(g)], "train", ["ref_logp_real"]),
    pairs_case(
        "nan_loss",
        lambda g: [_pair(g, ref_logp_real=np.nan, ref_logp_generated=-1.0)] * 8,
        "train",
        ["loss is nan", "at step 0"],
    ),  # fmt: skip
    special_case("invalid_params_json"),
    special_case("judge_api_key_missing"),
    special_case("judge_prompts_missing"),
    special_case("lm_eval_task_unknown"),
    special_case("world_file_malformed"),
    special_case("disk_full_while_writing"),
    special_case("output_dir_not_writable"),
]


def special_setup(name, root, good, monkeypatch):
    if name == "configfile_missing":
        return ["validate", str(root / "no_such.yaml")], None, ["no_such.yaml", "config file not found"]
    if name == "configfile_is_a_directory":
        (root / "a_dir.yaml").mkdir(exist_ok=True)
        return ["validate", str(root / "a_dir.yaml")], None, ["a_dir.yaml", "is a directory"]
    if name == "jsonl_invalid_utf8":
        path = root / "latin1.jsonl"
        path.write_bytes(
            json.dumps(good).encode() + b"\n" + json.dumps(good).replace("p1", "caf\u00e9").encode("latin-1") + b"\n"
        )
        out = root / "latin1.parquet"
        argv = ["generate", "--params", GEN_PARAMS, "--model", str(root / "model"), "--prompts", str(path)]
        return [*argv, "--out", str(out), "--iteration", "0"], out, ["latin1.jsonl:2:", "invalid UTF-8"]
    if name == "invalid_params_json":
        out = root / "x.parquet"
        argv = ["generate", "--params", "{bad", "--model", str(root / "model"), "--prompts", str(root / "good.jsonl")]
        return [*argv, "--out", str(out), "--iteration", "0"], out, ["--params", "invalid JSON"]
    if name == "judge_api_key_missing":
        monkeypatch.delenv("SPIN_TEST_NO_SUCH_KEY", raising=False)
        params = json.dumps(
            {"mt_bench": {"judge": "openai", "judge_model": "gpt-4", "api_key_env": "SPIN_TEST_NO_SUCH_KEY"}}
        )
        out = root / "judgment.jsonl"
        argv = ["mt-bench-judge", "--params", params, "--name", "m", "--questions", str(root / "good.jsonl")]
        prompts = root / "judge_prompts.jsonl"
        write_jsonl(
            prompts,
            [{"name": "single-v1", "system_prompt": "s", "prompt_template": "t", "output_format": "[[rating]]"}],
        )
        argv += ["--answers", str(root / "good.jsonl"), "--judge-prompts", str(prompts)]
        argv += ["--out", str(out), "--out-csv", str(root / "j.csv"), "--cache", str(root / "c.sqlite")]
        return argv, out, ["evaluation.mt_bench.api_key_env", "SPIN_TEST_NO_SUCH_KEY"]
    if name == "judge_prompts_missing":
        params = json.dumps({"mt_bench": {"judge": "openai", "judge_model": "gpt-4"}})
        out = root / "judgment2.jsonl"
        argv = ["mt-bench-judge", "--params", params, "--name", "m", "--questions", str(root / "good.jsonl")]
        argv += ["--answers", str(root / "good.jsonl"), "--out", str(out), "--out-csv", str(root / "j2.csv")]
        argv += ["--cache", str(root / "c2.sqlite")]
        return argv, out, ["--judge-prompts", "required"]
    if name == "lm_eval_task_unknown":
        (root / "tasks").mkdir(exist_ok=True)
        params = json.dumps({"family": {"tasks": {"no_such_task": {"num_fewshot": 0, "metrics": ["acc"]}}}})
        out = root / "lm.json"
        argv = ["eval-lm", "--params", params, "--model", str(root / "model"), "--name", "m", "--benchmark", "b"]
        argv += ["--task", "no_such_task", "--include-path", str(root / "tasks"), "--out-json", str(out)]
        return [*argv, "--out-csv", str(root / "lm.csv")], out, ["no_such_task", "unknown"]
    if name == "world_file_malformed":
        bad = root / "bad_world.json"
        bad.write_text('{"config": {"n_words": 12}')
        out = root / "div.csv"
        params = json.dumps({"divergence": micro_config()["divergence"]})
        argv = ["divergence", "--params", params, "--model", str(root / "model"), "--world", str(bad)]
        argv += ["--samples", str(root / "none.parquet"), "--name", "sft", "--out", str(out)]
        return argv, out, ["bad_world.json", "not a tiny-world file"]
    if name == "disk_full_while_writing":
        src = root / "part.csv"
        pd.DataFrame({"a": [1]}).to_csv(src, index=False)
        real_to_csv = pd.DataFrame.to_csv

        def full(self, path=None, *a, **k):
            if path is not None:
                Path(path).write_text("a\n")  # a partial write, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real_to_csv(self, path, *a, **k)

        monkeypatch.setattr(pd.DataFrame, "to_csv", full)
        out = root / "gathered.csv"
        return ["gather", "--inputs", str(src), "--out", str(out)], out, ["No space left on device"]
    if name == "output_dir_not_writable":
        blocker = root / "not_a_dir"
        blocker.write_text("a file where a directory should be")
        src = root / "part2.csv"
        pd.DataFrame({"a": [1]}).to_csv(src, index=False)
        out = blocker / "sub" / "gathered.csv"
        return ["gather", "--inputs", str(src), "--out", str(out)], out, ["not_a_dir"]
    raise AssertionError(name)


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, env, capsys, monkeypatch):
    root, good = env
    if isinstance(case, str):
        argv, out, expected = special_setup(case, root, good, monkeypatch)
    else:
        argv, out, expected = case(root, good)
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc != 0, err
    message = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(message) == 1, err[-2000:]  # one clear line, no traceback
    assert "Traceback" not in err
    for piece in expected:
        assert piece in message[0], (piece, message[0])
    if out is not None:
        assert not Path(out).exists(), f"{out} written despite the error"
        leftovers = [p for p in Path(out).parent.glob(f".{Path(out).name}*")] if Path(out).parent.is_dir() else []
        assert not leftovers, leftovers
