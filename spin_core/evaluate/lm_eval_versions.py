"""Which lm-eval each `evaluation.<family>.harness` runs, and whether this environment has it.

`current` is the suite's lm-eval (the `lm-eval` range of envs/eval-lm.yaml); `v0.4.0` is the paper's
harness as PyPI has it (the paper names commit 46c7966, which is v0.4.0 plus 152 commits; the task
YAMLs of the six leaderboard tasks differ between the two only in metadata: README, "lm-eval
versions"). Nothing here imports lm_eval, so the workflow checks the environment when it starts,
not after days of training, and a job checks again before it imports lm-eval.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..errors import BackendUnavailableError

# harness -> the lm-eval versions it accepts; envs/eval-lm.yaml, envs/eval-lm-v0.4.0.yaml and
# envs/paper-harness.txt pin the same (tests/system/test_envs.py holds them to it).
HARNESSES = {"current": ">=0.4.9,<0.5", "v0.4.0": "==0.4.0"}
# harness -> its per-rule conda environment (rules/evaluate.smk, with --use-conda), and without conda
# the environment its jobs' python comes from: the suite's own, or the virtualenv that
# scripts/setup_paper_harness.sh builds from envs/paper-harness.txt. v0.4.0 needs transformers 4.x
# (it imports transformers.data.metrics, gone in 5.x) and the suite's trainer 5.x, so it cannot be
# installed beside the suite, nor be a pip extra of it (an extra cannot lower a core pin).
HARNESS_ENVS = {"current": "eval-lm.yaml", "v0.4.0": "eval-lm-v0.4.0.yaml"}
HARNESS_VENVS = {"current": None, "v0.4.0": ".venv-paper-harness"}
HARNESS_SETUP = {"current": "bash scripts/setup.sh", "v0.4.0": "bash scripts/setup_paper_harness.sh"}

# Tasks whose exemplars a harness writes into the prompt text itself, so that lm-eval must add none:
# v0.4.0's BBH chain-of-thought prompts hold their 3 exemplars (later versions moved them to a
# fewshot_config, num_fewshot 3), and v0.4.0 given num_fewshot 3 would add 3 test questions on top.
# The config's num_fewshot always counts the exemplars the model sees.
PROMPT_SHOTS = {"v0.4.0": {"bbh_cot_fewshot_": 3}}


def installed_version() -> str | None:
    """The lm-eval this interpreter would import (0.4.0 has no lm_eval.__version__), or None."""
    try:
        return metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        return None


def harness_problem(harness: str, key: str, python: str | None = None) -> str | None:
    """Why the jobs' interpreter (`python`; None: this one) cannot run `harness`, named by config
    `key`; None if it can."""
    wanted = HARNESSES[harness]
    have = installed_version() if python is None else venv_version(python)
    if have is not None and Version(have) in SpecifierSet(wanted):
        return None
    if python is not None and not Path(python).exists():
        found = f"{python} does not exist"
    else:
        found = f"{python or 'this environment'} has {'no lm-eval' if have is None else f'lm-eval {have}'}"
    return (
        f"{key}: {harness!r} runs lm-eval{wanted}, but {found}; run with --use-conda (envs/{HARNESS_ENVS[harness]}) "
        f"or build its environment: {HARNESS_SETUP[harness]}"
    )


def job_python(harness: str, use_conda: bool, root: str | Path = ".") -> str:
    """The interpreter an lm-eval job of `harness` runs: the active (or conda's) environment's python,
    or the python of the harness's virtualenv in the checkout at `root`."""
    venv = HARNESS_VENVS[harness]
    return str(Path(root) / venv / "bin" / "python") if venv and not use_conda else "python"


def venv_version(python: str | Path) -> str | None:
    """The lm-eval version another interpreter would import, or None (no such interpreter or lm-eval)."""
    if not Path(python).exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('lm_eval'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def workflow_problems(families: dict, use_conda: bool, root: str | Path = ".") -> list[str]:
    """At workflow start: each evaluated family (config key -> LmEvalFamily) whose jobs' environment
    lacks its harness. With --use-conda, Snakemake builds the env from its file; nothing to check."""
    if use_conda:
        return []
    problems = []
    for key, family in families.items():
        if not family.tasks:
            continue
        python = job_python(family.harness, use_conda, root)
        problems.append(harness_problem(family.harness, f"{key}.harness", None if python == "python" else python))
    return [p for p in problems if p]


def check_harness(harness: str, key: str) -> str:
    """The installed lm-eval version, if it is the one `harness` runs; else a clear error."""
    problem = harness_problem(harness, key)
    if problem:
        raise BackendUnavailableError(problem)
    return installed_version()


def prompt_shots(harness: str, task: str) -> tuple[str, int] | None:
    """(the task prefix, the exemplars) when `harness`'s prompt text for `task` holds its exemplars."""
    return next(((p, n) for p, n in PROMPT_SHOTS.get(harness, {}).items() if task.startswith(p)), None)


def lm_eval_shots(harness: str, task: str, num_fewshot: int) -> int:
    """The num_fewshot to hand lm-eval for `task`: the config's, less the exemplars the harness's
    prompt text already holds (PROMPT_SHOTS; the config requires the two to agree)."""
    held = prompt_shots(harness, task)
    return num_fewshot - held[1] if held else num_fewshot
