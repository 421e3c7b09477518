"""The tidy divergence rows every per-model job writes (exact KL, proxies):
`model, iteration, metric, value, ci_low, ci_high, n`, one row per metric."""

from __future__ import annotations

import logging

import numpy as np

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
