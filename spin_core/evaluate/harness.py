"""Open LLM Leaderboard and Big-Bench tasks through lm-eval, one (model, task) per call, as tidy rows.

The harness's own results JSON is kept beside the tidy CSV. Backends: `hf` (CPU or GPU), `vllm`
(GPU), and on the tiny world `tiny-world-oracle` (world/oracle_lm.py), which answers from p_data.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import lm_eval
import pandas as pd
import torch
from lm_eval.tasks import TaskManager

from ..config import LmEvalFamily
from ..errors import BackendUnavailableError, ConfigError
from ..io import write_table, write_text
from ..world import oracle_lm  # importing it registers tiny-world-oracle with lm-eval
from .scores import SCORE_COLUMNS

log = logging.getLogger(__name__)


def tidy_rows(results: dict, model: str, benchmark: str, task: str, metrics: list[str]) -> list[dict]:
    """Pick `metric,<filter>` values (and their stderr) for `task` out of lm-eval's results dict."""
    section = results.get("groups", {}).get(task) or results.get("results", {}).get(task)
    if section is None:
        raise ConfigError(f"evaluation: lm-eval returned no results for task {task!r}")
    rows = []
    for metric in metrics:
        keys = [k for k in section if k.split(",")[0] == metric and not k.endswith("_stderr")]
        if not keys:
            raise ConfigError(f"evaluation: task {task!r} has no metric {metric!r} (has {sorted(section)})")
        # Prefer the unfiltered value, then strict-match (gsm8k), then whatever filter exists.
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
                "harness": f"lm-eval {lm_eval.__version__}",
            }
        )
    return rows


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
) -> pd.DataFrame:
    """Evaluate one model on one lm-eval task; write lm-eval's results JSON; return tidy rows."""
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise BackendUnavailableError(f"evaluation.leaderboard.backend: 'vllm' cannot be imported ({e})") from None
    # Indexing lm-eval's ~15k built-in task configs takes ~10 s; local task dirs are self-contained.
    manager = TaskManager(include_path=include_path, include_defaults=False) if include_path else TaskManager()
    if task not in manager.all_tasks:
        raise ConfigError(f"evaluation: lm-eval task {task!r} is unknown (not in lm-eval or {include_path})")
    if backend == oracle_lm.ORACLE:
        model_args = f"world={model_path}"
    else:
        model_args = f"pretrained={model_path},dtype={dtype}"
    if extra_model_args:
        model_args += "," + extra_model_args
    t0 = time.time()
    log.info("lm-eval: %s on %s (%d-shot, backend %s)", model_name, task, num_fewshot, backend)
    results = lm_eval.simple_evaluate(
        model=backend,
        device="cuda" if torch.cuda.is_available() else "cpu",
        model_args=model_args,
        tasks=[task],
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        limit=limit,
        task_manager=manager,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        log_samples=False,
    )
    if results_json:
        write_text(results_json, json.dumps(results, indent=1, default=str) + "\n")
    rows = tidy_rows(results, model_name, benchmark, task, metrics)
    log.info("lm-eval: %s %s in %.0fs", task, {r["metric"]: round(r["value"], 4) for r in rows}, time.time() - t0)
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


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
    )
    write_table(out_csv, df)
