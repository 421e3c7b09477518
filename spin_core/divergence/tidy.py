"""The tidy divergence rows every per-model job writes (exact KL, proxies):
`model, iteration, metric, value, ci_low, ci_high, n`, one row per metric."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import names
from ..stats import clustered_mean_ci

log = logging.getLogger(__name__)

DIVERGENCE_COLUMNS = ["model", "iteration", "metric", "value", "ci_low", "ci_high", "n"]


def tidy_row(model: str, metric: str, values) -> dict:
    """One row: values shaped (prompts, samples) get their mean and a prompt-clustered 95% CI; a
    scalar (a corpus statistic) is its own value, without a CI."""
    values = np.asarray(values, dtype=float)
    iteration = names.parse_model(model).iteration
    if values.ndim == 0:
        row = dict(value=float(values), ci_low=np.nan, ci_high=np.nan, n=1)
    else:
        mean, lo, hi = clustered_mean_ci(values)
        row = dict(value=mean, ci_low=lo, ci_high=hi, n=int(values.size))
    log.info("%s %s = %.4f [%.4f, %.4f]", model, metric, row["value"], row["ci_low"], row["ci_high"])
    return dict(model=model, iteration=iteration, metric=metric, **row)


def per_prompt_frame(name: str, prompt_ids: list[str], values: dict[str, np.ndarray]) -> pd.DataFrame:
    """One model's per-prompt means of each metric's (prompts, samples) array: the unit every paired
    comparison (analysis/paired.py) and bootstrap resamples."""
    return pd.concat([pd.DataFrame({"model": name, "prompt_id": prompt_ids, "metric": metric, "value": v.mean(axis=1)})
                      for metric, v in values.items()], ignore_index=True)  # fmt: skip
