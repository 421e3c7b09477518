"""Open LLM Leaderboard and Big-Bench tasks through lm-eval, one (model, task) per call, as tidy rows.

The harness's own results JSON is kept beside the tidy CSV. Backends: `hf` (CPU or GPU) and `vllm`
(GPU). For the tiny world there is also `tiny-world-oracle`, an lm-eval model that answers from the
exact p_data; the tests use it to check that the tiny tasks tell a better model from a worse one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path

import pandas as pd

from .errors import BackendUnavailableError, ConfigError
from .io import write_text

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["model", "benchmark", "task", "metric", "value", "stderr"]


def _register_oracle():
    """Register the `tiny-world-oracle` lm-eval model (idempotent)."""
    import lm_eval.models  # noqa: F401  (registers hf, vllm, ...; the registry is lazy)
    import numpy as np
    from lm_eval.api.model import LM
    from lm_eval.api.registry import MODEL_REGISTRY, register_model

    from .world import TinyWorld

    if "tiny-world-oracle" in MODEL_REGISTRY:
        return

    @register_model("tiny-world-oracle")
    class TinyWorldOracle(LM):
        """Scores continuations with the exact log p_data and generates p_data's greedy path."""

        def __init__(self, world: str, **kwargs):
            super().__init__()
            self.world = TinyWorld.load(world)

        @classmethod
        def create_from_arg_string(cls, arg_string, additional_config=None):
            args = dict(kv.split("=", 1) for kv in arg_string.split(",") if kv)
            return cls(**args)

        def _split(self, context: str):
            # "<|user|> PROMPT </s> <|assistant|> [RESPONSE PREFIX]"
            m = re.match(r"\s*<\|user\|>(.*?)</s>\s*<\|assistant\|>(.*)$", context, re.S)
            if not m:
                raise ValueError(f"oracle: not a tiny-world chat context: {context!r}")
            return self.world.from_text(m.group(1)), self.world.from_text(m.group(2))

        def loglikelihood(self, requests):
            out = []
            for req in requests:
                context, continuation = req.args
                prompt, prefix = self._split(context)
                words = continuation.split()
                complete = bool(words) and words[-1] == "</s>"
                cont = self.world.from_text(" ".join(words[:-1] if complete else words))
                full = np.concatenate([prefix, cont])
                lp_full = self.world.log_prob([prompt], [full], [complete])[0]
                lp_prefix = self.world.log_prob([prompt], [prefix], [False])[0]
                out.append((float(lp_full - lp_prefix), False))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError("the oracle scores continuations only")

        def generate_until(self, requests):
            out = []
            for req in requests:
                context, gen_kwargs = req.args
                prompt, _ = self._split(context)
                words, _ = self.world.greedy_response(prompt, int(gen_kwargs.get("max_gen_toks", 3)))
                out.append(self.world.to_text(words))
            return out


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
    import lm_eval
    from lm_eval.tasks import TaskManager

    _register_oracle()
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise BackendUnavailableError(f"evaluation.leaderboard.backend: 'vllm' cannot be imported ({e})") from None
    # Indexing lm-eval's ~15k built-in task configs takes ~10 s; local task dirs are self-contained.
    manager = TaskManager(include_path=include_path, include_defaults=False) if include_path else TaskManager()
    if task not in manager.all_tasks:
        raise ConfigError(f"evaluation: lm-eval task {task!r} is unknown (not in lm-eval or {include_path})")
    if backend == "tiny-world-oracle":
        model_args = f"world={model_path}"
    else:
        model_args = f"pretrained={model_path},dtype={dtype}"
    if extra_model_args:
        model_args += "," + extra_model_args
    t0 = time.time()
    log.info("lm-eval: %s on %s (%d-shot, backend %s)", model_name, task, num_fewshot, backend)
    import torch

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
