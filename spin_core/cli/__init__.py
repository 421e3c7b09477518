"""Command line of the workflow's stages: `python -m spin_core.cli <command> ...` (or `spin-repro`).

Each command is one stage function, declared once in COMMANDS as "module:function"; its command line
is generated from the function's signature (spin_core.cli.signature says how). `steps` runs several
commands in one process, in order, separated by `::` (`spin-repro steps sft ... :: divergence-model
...`): the tiny world's jobs do so, since starting a process (torch, transformers) costs more there
than most stages. Only the chosen commands' modules are imported. Our errors and OS errors (disk full,
permissions) are printed as one `error:` line, without a traceback, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import time

from ..errors import SpinError
from . import startup
from .signature import Command, command_parser, run_stage

__all__ = ["COMMANDS", "Command", "command_parser", "main", "run_stage"]

log = logging.getLogger("spin_core")

COMMANDS = {
    "validate": Command("spin_core.configfile:validate_files"),
    "schema": Command("spin_core.configfile:write_schema"),
    "world": Command("spin_core.world.build:build_world"),
    "import-model": Command("spin_core.train.sft:import_pretrained"),
    "rehearsal-assets": Command("spin_core.assets.rehearsal:write_rehearsal_assets"),
    "assets": Command("spin_core.assets.make:make_assets"),
    "asset-model": Command("spin_core.assets.chat_model:make_model_asset"),
    "asset-chat-data": Command("spin_core.assets.sharegpt:make_chat_data_asset"),
    "asset-bigbench": Command("spin_core.assets.bigbench:make_bigbench_asset"),
    "data": Command("spin_core.data:write_sft_data"),
    "sft": Command("spin_core.train.sft:make_sft_model"),
    "generate": Command("spin_core.generate.pairs:generate_shard"),
    "generate-shards": Command("spin_core.generate.pairs:generate_shards"),
    "reference": Command("spin_core.train.reference:reference_pass"),
    "train": Command("spin_core.train.spin:train_spin"),
    "sft-continue": Command("spin_core.train.sft:continue_sft"),
    "heldout-samples": Command("spin_core.divergence.samples:sample_heldout", table=True),
    "divergence": Command("spin_core.divergence.exact:exact_divergence", table=True),
    "proxies": Command("spin_core.divergence.proxies:divergence_proxies", table=True),
    "divergence-model": Command("spin_core.divergence.per_model:measure_model"),
    "theory": Command("spin_core.divergence.theory:theory_overlay", table=True),
    "map-cell": Command("spin_core.divergence.convergence_map:run_cell", table=True),
    "recipe-run": Command("spin_core.divergence.recipes:run_recipe", table=True),
    "long-horizon-run": Command("spin_core.divergence.recipes:run_long_horizon", table=True),
    "study-pool": Command("spin_core.divergence.studies:make_pool"),
    "study-run": Command("spin_core.divergence.studies:run_study_arm", table=True),
    "eval-tasks": Command("spin_core.world.tasks:build_tiny_eval_tasks"),
    "fetch": Command("spin_core.evaluate.fetch:fetch_verified"),
    "eval-lm": Command("spin_core.evaluate.harness:evaluate_task"),
    "mt-bench-answer": Command("spin_core.evaluate.mt_bench_answers:answer_questions"),
    "mt-bench-judge": Command("spin_core.evaluate.mt_bench:judge_model_answers"),
    "eval-model": Command("spin_core.evaluate.per_model:evaluate_model"),
    "scores": Command("spin_core.evaluate.scores:collect_scores", table=True),
    "gather": Command("spin_core.io:gather_tables"),
}


def run_command(name: str, action) -> int:
    """Logging set up, then action(); our errors and OS errors (disk full, permissions) become one
    `error:` line on stderr and a non-zero exit, without a traceback."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t0 = time.time()
    try:
        action()
    except SpinError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # Disk full, permission denied, ...: say which file, no traceback.
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: cannot write or read{where}: {e.strerror or e}", file=sys.stderr)
        return 1
    log.info("%s done in %.1fs", name, time.time() - t0)
    return 0


STEPS = "steps"  # the command that runs several others in one process
STEP_SEPARATOR = "::"


def _usage(prog: str, commands: dict[str, Command]) -> str:
    width = max(map(len, [*commands, STEPS]))
    lines = [f"usage: {prog} <command> [options]   ({prog} <command> --help for its options)", "", "commands:"]
    for name, command in commands.items():
        doc = (inspect.getdoc(command.function()) or "").splitlines()
        lines.append(f"  {name:<{width}}  {doc[0] if doc else ''}")
    lines.append(
        f"  {STEPS:<{width}}  Several commands in one process, in order: <command> [options] {STEP_SEPARATOR} ..."
    )
    return "\n".join(lines)


def split_steps(argv: list[str]) -> list[list[str]]:
    """`<command> [options] :: <command> [options] ...` as one argv per step."""
    steps, current = [], []
    for arg in [*argv, STEP_SEPARATOR]:
        if arg == STEP_SEPARATOR:
            steps.append(current)
            current = []
        else:
            current.append(arg)
    return steps


def parse_steps(prog: str, argv: list[str], commands: dict[str, Command]) -> list[tuple[str, argparse.Namespace]]:
    """`<command> [options] :: <command> [options] ...` as (name, parsed arguments) per step, every step
    parsed before any runs (a typo in the last one stops the job before the first)."""
    steps = []
    for step in split_steps(argv):
        if not step:
            print(
                f"{prog} {STEPS}: error: an empty step ({STEP_SEPARATOR} twice in a row, or at an end)", file=sys.stderr
            )
            raise SystemExit(2)
        name, *rest = step
        if name not in commands:
            print(f"{prog} {STEPS}: error: unknown command {name!r} (one of: {', '.join(commands)})", file=sys.stderr)
            raise SystemExit(2)
        steps.append((name, command_parser(prog, name, commands[name]).parse_args(rest)))
    return steps


def stash_options(prog: str, argv: list[str]) -> tuple[argparse.Namespace | None, list[str]]:
    """`steps --stash DIR --inputs PATH... --outputs PATH... -- <command> ...`: the job's stash (its
    finished steps kept across a kill, spin_core.cli.stash) and the rest of argv; (None, argv) without."""
    if not argv or argv[0] != "--stash":
        return None, argv
    if "--" not in argv:
        print(
            f"{prog} {STEPS}: error: --stash DIR --inputs ... --outputs ... needs -- before the steps", file=sys.stderr
        )
        raise SystemExit(2)
    end = argv.index("--")
    parser = argparse.ArgumentParser(prog=f"{prog} {STEPS}")
    parser.add_argument("--stash", required=True, help="the job's stash folder")
    parser.add_argument("--inputs", nargs="*", default=[], help="the job's inputs (their contents key a step)")
    parser.add_argument("--outputs", nargs="+", required=True, help="the job's declared outputs")
    return parser.parse_args(argv[:end]), argv[end + 1 :]


def run_steps(
    steps: list[tuple[str, argparse.Namespace]], commands: dict[str, Command], argvs=None, stash=None
) -> None:
    """The steps in order; with a stash (and each step's argv), a step stashed by an earlier run of this
    job with the same key is linked back instead of run, and each finished step is stashed."""
    for k, (name, args) in enumerate(steps, 1):
        t0 = time.time()
        key = stash.key(argvs[k - 1]) if stash is not None else None
        if key is not None and (restored := stash.restore(key)) is not None:
            log.info("step %d/%d: %s finished in an earlier run of this job: %d output(s) restored from %s",
                     k, len(steps), name, len(restored), stash.root)  # fmt: skip
            continue
        log.info("step %d/%d: %s", k, len(steps), name)
        before = stash.states() if stash is not None else None
        run_stage(commands[name], args)
        if stash is not None:
            stash.save(key, before)
        log.info("step %d/%d: %s done in %.1fs", k, len(steps), name, time.time() - t0)


def _open_stash(options: argparse.Namespace | None):
    if options is None:
        return None
    from .stash import Stash

    return Stash(options.stash, options.inputs, options.outputs)


def main(argv: list[str] | None = None, commands: dict[str, Command] = COMMANDS, prog: str = "spin-repro") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(prog, commands))
        return 0 if argv else 2
    name, *rest = argv
    if not sys.stderr.isatty():
        # In a log file a progress bar (tqdm: transformers' weight loading, lm-eval) is one line per
        # update; our stages log progress lines with a rate and an ETA instead.
        os.environ.setdefault("TQDM_DISABLE", "1")
    if name == STEPS:
        if not rest or rest[0] in ("-h", "--help"):
            print(
                f"usage: {prog} {STEPS} [--stash DIR --inputs PATH... --outputs PATH... --]"
                f" <command> [options] {STEP_SEPARATOR} <command> [options] ..."
            )
            return 0 if rest else 2
        options, rest = stash_options(prog, rest)
        steps = parse_steps(prog, rest, commands)
        action = lambda: run_steps(steps, commands, split_steps(rest), _open_stash(options))  # noqa: E731
    elif name not in commands:
        print(f"{prog}: error: unknown command {name!r} (one of: {', '.join(commands)}, {STEPS})", file=sys.stderr)
        return 2
    else:
        args = command_parser(prog, name, commands[name]).parse_args(rest)
        action = lambda: run_stage(commands[name], args)  # noqa: E731
    if not startup.enabled():
        return run_command(name, action)
    before_stage, clock = startup.start()  # benchmarks/bench_workflow.py's start-up share
    rc = run_command(name, action)
    log.info("%s %s", name, startup.report_line(before_stage, clock))
    return rc
