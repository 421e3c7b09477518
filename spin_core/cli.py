"""Command line for the workflow's rules: `python -m spin_core.cli <command> ...`.

Each command does one stage. Rules pass their config sections as JSON (`--params`), so Snakemake
re-runs a stage when its parameters change. Our errors are printed without a traceback and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from .errors import ConfigError, SpinError

log = logging.getLogger("spin_core")


def _params(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params: invalid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ConfigError("--params: expected a JSON object of config sections")
    return value


def cmd_validate(a):
    from .config import load_yaml, validate_config

    for path in a.configs:
        validate_config(load_yaml(path), source=str(path))
        print(f"{path}: ok")


def cmd_world(a):
    from .tokenizer import build_tokenizer, save_tokenizer
    from .world import TinyWorld, WorldConfig

    world = TinyWorld(WorldConfig.from_dict(_params(a.params)["world"]))
    tok = build_tokenizer(world.words)
    from .io import atomic_dir

    with atomic_dir(a.tokenizer_out) as tmp:
        save_tokenizer(tok, tmp)
    world.save(a.world_out)
    log.info("world: %d words, fingerprint %s; tokenizer of %d tokens", len(world.words), world.fingerprint(), len(tok))


def cmd_data(a):
    from .data import load_ultrachat, make_tiny_sft_data, validate_sft_rows
    from .io import write_jsonl

    p = _params(a.params)
    d = p["data"]
    if d["source"] == "tiny_world":
        from .world import TinyWorld

        train, test = make_tiny_sft_data(TinyWorld.load(a.world), d["n_train"], d["n_test"], d["seed"])
    else:
        train = load_ultrachat(d["dataset"], d["train_split"], d["n_train"], d["seed"], d.get("revision"))
        test = load_ultrachat(d["dataset"], d["test_split"], d["n_test"], d["seed"], d.get("revision"))
    validate_sft_rows(train, a.train_out)
    validate_sft_rows(test, a.test_out)
    write_jsonl(a.train_out, train)
    write_jsonl(a.test_out, test)
    log.info("data: %d train rows -> %s, %d test rows -> %s", len(train), a.train_out, len(test), a.test_out)


def cmd_sft(a):
    from .config import SFTConfig, SpinConfig
    from .sft import import_pretrained, train_sft

    p = _params(a.params)
    cfg = SFTConfig.from_dict(p["sft"])
    if cfg.mode == "pretrained":
        import_pretrained(cfg.model, cfg.revision, a.out)
        return
    spin = SpinConfig.from_dict(p["spin"])
    summary = train_sft(cfg, a.train, a.tokenizer, a.out, a.checkpoints, spin.max_length, spin.max_prompt_length)
    log.info("sft: %s", summary)


def cmd_generate(a):
    from .config import GenerateConfig
    from .generation import generate_shard

    cfg = GenerateConfig.from_dict(_params(a.params)["generate"])
    generate_shard(a.model, a.prompts, a.out, cfg, a.shard, a.iteration)


def cmd_reference(a):
    from .config import SpinConfig
    from .reference import reference_pass

    p = _params(a.params)
    reference_pass(a.pairs, a.model, a.out, SpinConfig.from_dict(p["spin"]), dtype=p.get("dtype", "float32"))


def cmd_train(a):
    from .config import SpinConfig
    from .trainer import train_spin

    train_spin(SpinConfig.from_dict(_params(a.params)["spin"]), a.pairs, a.init, a.out, a.checkpoints, a.metrics)


def cmd_divergence(a):
    from .config import DivergenceConfig
    from .divergence import exact_divergence
    from .io import write_table

    cfg = DivergenceConfig.from_dict(_params(a.params)["divergence"])
    write_table(a.out, exact_divergence(a.model, a.world, a.samples, cfg, a.name, a.iteration))


def cmd_heldout_samples(a):
    from .config import DivergenceConfig, GenerateConfig
    from .heldout import sample_heldout
    from .io import write_table

    p = _params(a.params)
    cfg = DivergenceConfig.from_dict(p["divergence"])
    write_table(a.out, sample_heldout(a.model, a.test, cfg, GenerateConfig.from_dict(p["generate"])))


def cmd_proxies(a):
    from .config import DivergenceConfig, SpinConfig
    from .io import write_table
    from .proxies import divergence_proxies

    p = _params(a.params)
    df = divergence_proxies(
        a.model,
        a.samples,
        a.test,
        DivergenceConfig.from_dict(p["divergence"]),
        SpinConfig.from_dict(p["spin"]),
        a.name,
        a.iteration,
        ref_model_dir=a.ref_model,
        ref_samples_path=a.ref_samples,
    )
    write_table(a.out, df)


def cmd_sft_continue(a):
    from .config import SpinConfig
    from .io import read_json
    from .sft import continue_sft

    p = _params(a.params)
    spin = SpinConfig.from_dict(p["spin"])
    lr = p["convergence"].get("control", {}).get("learning_rate") or spin.learning_rate
    steps = int(read_json(a.match_steps)["final"]["global_step"])
    continue_sft(spin, lr, steps, a.train, a.init, a.out, a.checkpoints, a.metrics)


def cmd_map_cell(a):
    from .config import DivergenceConfig, GenerateConfig, SpinConfig
    from .convergence_map import MapConfig, run_cell
    from .io import write_table

    p = _params(a.params)
    df = run_cell(
        a.beta,
        a.learning_rate,
        a.epochs,
        MapConfig.from_dict(p["convergence"].get("map")),
        SpinConfig.from_dict(p["spin"]),
        GenerateConfig.from_dict(p["generate"]),
        DivergenceConfig.from_dict(p["divergence"]),
        a.sft,
        a.world,
        a.train,
        a.test,
        a.work_dir,
    )
    write_table(a.out, df)


def cmd_theory(a):
    from .io import write_table
    from .theory import TheoryConfig, theory_overlay

    cfg = TheoryConfig.from_dict(_params(a.params)["convergence"].get("theory"))
    write_table(a.out, theory_overlay(cfg))


def cmd_gather(a):
    import pandas as pd

    from .io import write_table

    frames = [pd.read_csv(p) for p in a.inputs]
    write_table(a.out, pd.concat(frames, ignore_index=True))
    log.info("gathered %d files into %s", len(frames), a.out)


def cmd_eval_tasks(a):
    from .eval_tasks import build_tiny_eval_tasks

    written = build_tiny_eval_tasks(a.world, a.test, a.out_dir, _params(a.params)["evaluation"].get("tiny_tasks", {}))
    log.info("eval tasks: %s", written)


def cmd_fetch(a):
    from .remote import fetch_verified

    fetch_verified(a.url, a.sha256, a.out)


def cmd_eval_lm(a):
    from .io import write_table
    from .lm_eval_runner import run_lm_eval

    fam = _params(a.params)["family"]
    task = fam["tasks"][a.task]
    df = run_lm_eval(
        a.model,
        a.name,
        a.benchmark,
        a.task,
        task["metrics"],
        task["num_fewshot"],
        backend=fam.get("backend", "hf"),
        dtype=fam.get("dtype", "float32"),
        batch_size=fam.get("batch_size", 16),
        limit=fam.get("limit"),
        include_path=a.include_path,
        results_json=a.out_json,
        extra_model_args=fam.get("model_args", ""),
    )
    write_table(a.out_csv, df)


def cmd_mt_bench_answer(a):
    from .io import write_jsonl
    from .mt_bench import generate_answers, load_questions

    cfg = _params(a.params)["mt_bench"]
    answers = generate_answers(
        a.model,
        load_questions(a.questions),
        a.name,
        cfg.get("max_new_tokens", 1024),
        seed=a.seed,
        batch_size=cfg.get("batch_size", 16),
        default_temperature=cfg.get("default_temperature", 0.7),
    )
    write_jsonl(a.out, answers)


def cmd_mt_bench_judge(a):
    from .io import write_jsonl, write_table
    from .mt_bench import (
        OpenAIJudge,
        OracleJudge,
        judge_answers,
        judgment_scores,
        load_answers,
        load_judge_prompts,
        load_questions,
    )

    cfg = _params(a.params)["mt_bench"]
    if cfg.get("judge", "oracle") == "oracle":
        if not a.world:
            raise ConfigError("evaluation.mt_bench.judge: 'oracle' needs the tiny world (scale: tiny)")
        judge = OracleJudge(a.world)
    else:
        if not a.judge_prompts:
            raise ConfigError(
                "mt-bench-judge: --judge-prompts (FastChat's judge_prompts.jsonl) is required for an API judge"
            )
        judge = OpenAIJudge(cfg, load_judge_prompts(a.judge_prompts), a.cache)
    refs = load_answers(a.reference) if a.reference else None
    judgments = judge_answers(load_questions(a.questions), load_answers(a.answers), judge, a.name, refs)
    write_jsonl(a.out, judgments)
    write_table(a.out_csv, judgment_scores(judgments, a.name))


def cmd_scores(a):
    from analysis.scores import collect_scores

    from .io import write_table

    p = _params(a.params)
    primary = {t: c.get("primary", c["metrics"][0]) for t, c in p["leaderboard_tasks"].items()}
    write_table(a.out, collect_scores(a.inputs, primary, p["models"]))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spin-repro", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("validate", help="validate config files against the schema")
    s.add_argument("configs", nargs="+")
    s.set_defaults(fn=cmd_validate)

    s = sub.add_parser("world", help="build the tiny world and its tokenizer")
    s.add_argument("--params", required=True)
    s.add_argument("--world-out", required=True)
    s.add_argument("--tokenizer-out", required=True)
    s.set_defaults(fn=cmd_world)

    s = sub.add_parser("data", help="write SFT train/test data (UltraChat schema)")
    s.add_argument("--params", required=True)
    s.add_argument("--world")
    s.add_argument("--train-out", required=True)
    s.add_argument("--test-out", required=True)
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser("sft", help="train (tiny) or import (paper) the SFT model")
    s.add_argument("--params", required=True)
    s.add_argument("--train")
    s.add_argument("--tokenizer")
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoints", default="work/sft")
    s.set_defaults(fn=cmd_sft)

    s = sub.add_parser("generate", help="sample y' from the previous iterate for one shard of prompts")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--shard", type=int, default=0)
    s.add_argument("--iteration", type=int, required=True)
    s.set_defaults(fn=cmd_generate)

    s = sub.add_parser("reference", help="score pairs under the frozen reference model")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--pairs", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_reference)

    s = sub.add_parser("train", help="one SPIN iteration")
    s.add_argument("--params", required=True)
    s.add_argument("--pairs", required=True)
    s.add_argument("--init", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoints", required=True)
    s.add_argument("--metrics", required=True)
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("divergence", help="exact forward/reverse KL of one model (tiny world)")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--world", required=True)
    s.add_argument("--samples", required=True, help="the model's held-out samples (heldout-samples)")
    s.add_argument("--name", required=True)
    s.add_argument("--iteration", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_divergence)

    s = sub.add_parser("heldout-samples", help="sample one model on the held-out prompts")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_heldout_samples)

    s = sub.add_parser("proxies", help="paper-scale divergence proxies of one model")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--samples", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--ref-model", help="the previous iterate (omit for the SFT model)")
    s.add_argument("--ref-samples", help="the previous iterate's held-out samples")
    s.add_argument("--name", required=True)
    s.add_argument("--iteration", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_proxies)

    s = sub.add_parser("sft-continue", help="the SFT-continued control for one iteration")
    s.add_argument("--params", required=True)
    s.add_argument("--train", required=True)
    s.add_argument("--init", required=True)
    s.add_argument("--match-steps", required=True, help="the SPIN iteration's metrics.json (its step count)")
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoints", required=True)
    s.add_argument("--metrics", required=True)
    s.set_defaults(fn=cmd_sft_continue)

    s = sub.add_parser("map-cell", help="one convergence-map cell: many SPIN iterations at one beta and budget")
    s.add_argument("--params", required=True)
    s.add_argument("--beta", type=float, required=True)
    s.add_argument("--learning-rate", type=float, required=True)
    s.add_argument("--epochs", type=float, required=True)
    s.add_argument("--sft", required=True)
    s.add_argument("--world", required=True)
    s.add_argument("--train", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--work-dir", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_map_cell)

    s = sub.add_parser("theory", help="the tabular theory overlay on an enumerable world")
    s.add_argument("--params", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_theory)

    s = sub.add_parser("eval-tasks", help="write the tiny world's evaluation tasks")
    s.add_argument("--params", required=True)
    s.add_argument("--world", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--out-dir", required=True)
    s.set_defaults(fn=cmd_eval_tasks)

    s = sub.add_parser("fetch", help="download a file and check its sha256")
    s.add_argument("--url", required=True)
    s.add_argument("--sha256")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_fetch)

    s = sub.add_parser("eval-lm", help="one model on one lm-eval task")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--benchmark", required=True)
    s.add_argument("--task", required=True)
    s.add_argument("--include-path")
    s.add_argument("--out-json", required=True)
    s.add_argument("--out-csv", required=True)
    s.set_defaults(fn=cmd_eval_lm)

    s = sub.add_parser("mt-bench-answer", help="answer MT-Bench questions (FastChat model_answer format)")
    s.add_argument("--params", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--questions", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_mt_bench_answer)

    s = sub.add_parser("mt-bench-judge", help="single-answer grading (FastChat model_judgment format)")
    s.add_argument("--params", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--questions", required=True)
    s.add_argument("--answers", required=True)
    s.add_argument("--judge-prompts")
    s.add_argument("--reference")
    s.add_argument("--world")
    s.add_argument("--cache", default="results/eval/mt_bench/judge_cache.sqlite")
    s.add_argument("--out", required=True)
    s.add_argument("--out-csv", required=True)
    s.set_defaults(fn=cmd_mt_bench_judge)

    s = sub.add_parser("scores", help="gather evaluation rows into scores.csv with the leaderboard average")
    s.add_argument("--params", required=True)
    s.add_argument("--inputs", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_scores)

    s = sub.add_parser("gather", help="concatenate tidy CSVs")
    s.add_argument("--inputs", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_gather)
    return ap


def run_command(args: argparse.Namespace) -> int:
    """Logging setup, then args.fn(args); our errors and OS errors (disk full, permissions) become
    one `error:` line on stderr and a non-zero exit, without a traceback."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t0 = time.time()
    try:
        args.fn(args)
    except SpinError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # Disk full, permission denied, ...: say which file, no traceback.
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: cannot write or read{where}: {e.strerror or e}", file=sys.stderr)
        return 1
    log.info("%s done in %.1fs", args.command, time.time() - t0)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
