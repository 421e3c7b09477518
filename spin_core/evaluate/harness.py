"""Open LLM Leaderboard and Big-Bench tasks through lm-eval, one (model, task) per call, as tidy rows.

The harness's own results JSON is kept beside the tidy CSV. Backends: `hf` (CPU or GPU), `vllm`
(GPU), and on the tiny world `tiny-world-oracle` (world/oracle_lm.py), which answers from p_data.
Two lm-eval versions run through the same code (`harness`, lm_eval_versions.py): the suite's, and
the paper's v0.4.0, whose task registry and simple_evaluate predate TaskManager and the seed keywords.
lm-eval is imported here only after the environment is checked to hold the version asked for.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import pandas as pd
import torch

from .. import names
from ..config import LmEvalFamily
from ..errors import BackendUnavailableError, ConfigError
from ..io import write_table, write_text
from .lm_eval_versions import check_harness, lm_eval_shots
from .scores import SCORE_COLUMNS

log = logging.getLogger(__name__)


def tidy_rows(results: dict, model: str, benchmark: str, task: str, metrics: list[str], version: str) -> list[dict]:
    """Pick `metric,<filter>` values (and their stderr) for `task` out of lm-eval's results dict."""
    section = results.get("groups", {}).get(task) or results.get("results", {}).get(task)
    if section is None:
        raise ConfigError(f"evaluation: lm-eval returned no results for task {task!r}")
    rows = []
    for metric in metrics:
        keys = [k for k in section if k.split(",")[0] == metric and not k.endswith("_stderr")]
        if not keys:
            raise ConfigError(f"evaluation: task {task!r} has no metric {metric!r} (has {sorted(section)})")
        # Prefer the unfiltered value, then strict-match (gsm8k), then whatever filter exists (v0.4.0
        # named gsm8k's and BBH's answer filters get-answer).
        key = sorted(keys, key=lambda k: (not k.endswith(",none"), not k.endswith(",strict-match"), k))[0]
        filt = key.split(",", 1)[1] if "," in key else "none"
        stderr = section.get(f"{metric}_stderr,{filt}")
        rows.append(
            {
                "model": model,
                "benchmark": benchmark,
                "task": task,
                "metric": metric,
                "value": float(section[key]),
                "stderr": float(stderr) if isinstance(stderr, int | float) and math.isfinite(stderr) else float("nan"),
                # The paper used lm-eval v0.4.0; scores move between versions (gsm8k most).
                "harness": f"lm-eval {version}",
            }
        )
    return rows


def _import_lm_eval(version: str):
    """lm-eval, imported; v0.4.0 loads HF evaluate's exact_match metric from the hub on import."""
    try:
        import lm_eval
        import lm_eval.tasks

        from ..world import oracle_lm  # noqa: F401  (importing it registers tiny-world-oracle)
    except FileNotFoundError as e:
        if "exact_match" not in str(e):
            raise
        raise BackendUnavailableError(
            f"lm-eval {version} cannot be imported: it loads Hugging Face evaluate's exact_match metric from "
            "the hub when imported (EleutherAI/lm-evaluation-harness#1697; later versions bundle it), and the "
            f"hub is not reachable nor the metric cached ({e})"
        ) from None
    return lm_eval


def _task_registry(lm_eval, include_path: str | None, legacy: bool):
    """(the task names lm-eval knows, the keyword arguments simple_evaluate takes for them)."""
    if legacy:
        # v0.4.0: one module-level registry, filled by initialize_tasks (every built-in task) or
        # include_path (a local folder alone, as include_defaults=False does later).
        if include_path:
            lm_eval.tasks.include_path(include_path)
        else:
            lm_eval.tasks.initialize_tasks()
        return lm_eval.tasks.ALL_TASKS, {}
    # Indexing lm-eval's ~15k built-in task configs takes ~10 s; local task dirs are self-contained.
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=False) if include_path else TaskManager()
    return manager.all_tasks, {"task_manager": manager}


SEED_KEYWORDS = ("random_seed", "numpy_random_seed", "torch_random_seed", "fewshot_random_seed")


def _model_args(backend: str, model_path: str, dtype: str, extra: str) -> str:
    from ..world import oracle_lm

    args = f"world={model_path}" if backend == oracle_lm.ORACLE else f"pretrained={model_path},dtype={dtype}"
    return f"{args},{extra}" if extra else args


def run_lm_eval(
    model_path: str,
    model_name: str,
    benchmark: str,
    task: str,
    metrics: list[str],
    num_fewshot: int,
    backend: str = "hf",
    dtype: str = "float32",
    batch_size: int | str = 16,
    limit: int | None = None,
    include_path: str | None = None,
    results_json: str | Path | None = None,
    seed: int = 1234,
    extra_model_args: str = "",
    harness: str = "current",
    key: str = "evaluation",
) -> pd.DataFrame:
    """Evaluate one model on one lm-eval task; write lm-eval's results JSON; return tidy rows.
    `key` names the config section in errors (evaluation.leaderboard, evaluation.bigbench)."""
    version = check_harness(harness, f"{key}.harness")
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise BackendUnavailableError(f"{key}.backend: 'vllm' cannot be imported ({e})") from None
    lm_eval = _import_lm_eval(version)
    legacy = harness == "v0.4.0"
    known, task_kwargs = _task_registry(lm_eval, include_path, legacy)
    if task not in known:
        raise ConfigError(f"evaluation: lm-eval task {task!r} is unknown (not in lm-eval {version} or {include_path})")
    shots = lm_eval_shots(harness, task, num_fewshot)
    if shots != num_fewshot:
        log.info("lm-eval %s: %s's prompt text holds its %d exemplars; lm-eval adds none", version, task, num_fewshot)
    # v0.4.0 seeds python 0, numpy and torch 1234 itself and takes no seed keywords.
    seeds = {} if legacy else dict.fromkeys(SEED_KEYWORDS, seed)
    t0 = time.time()
    log.info("lm-eval %s: %s on %s (%d-shot, backend %s)", version, model_name, task, num_fewshot, backend)
    results = lm_eval.simple_evaluate(
        model=backend,
        device="cuda" if torch.cuda.is_available() else "cpu",
        model_args=_model_args(backend, model_path, dtype, extra_model_args),
        tasks=[task],
        num_fewshot=shots,
        batch_size=batch_size,
        limit=limit,
        log_samples=False,
        **task_kwargs,
        **seeds,
    )
    if results_json:
        write_text(results_json, json.dumps(results, indent=1, default=str) + "\n")
    rows = tidy_rows(results, model_name, benchmark, task, metrics, version)
    log.info("lm-eval: %s %s in %.0fs", task, {r["metric"]: round(r["value"], 4) for r in rows}, time.time() - t0)
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


FAMILY_KEYS = {benchmark: key for key, benchmark in names.EVAL_FAMILIES.items()}  # config section per benchmark


def evaluate_task(
    family: LmEvalFamily,
    model: Path,
    name: str,
    benchmark: str,
    task: str,
    out_json: Path,
    out_csv: Path,
    include_path: Path | None = None,
) -> None:
    """Evaluate one model on one lm-eval task of a family: lm-eval's results JSON and tidy rows."""
    spec = family.tasks.get(task)
    if spec is None:
        raise ConfigError(f"evaluation: task {task!r} is not configured for {benchmark} (has {sorted(family.tasks)})")
    df = run_lm_eval(
        str(model),
        name,
        benchmark,
        task,
        list(spec.metrics),
        spec.num_fewshot,
        backend=family.backend,
        dtype=family.dtype,
        batch_size=family.batch_size,
        limit=family.limit,
        include_path=str(include_path or family.include_path or "") or None,
        results_json=out_json,
        extra_model_args=family.model_args,
        harness=family.harness,
        key=f"evaluation.{FAMILY_KEYS.get(benchmark, benchmark)}",
    )
    write_table(out_csv, df)
