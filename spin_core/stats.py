"""Statistics shared by the divergence estimates and the claims, the prompt being the independent unit:
normal-approximation CIs of one model's mean, and paired bootstrap CIs of the difference between two
models on the same prompts."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959964  # two-sided 95% normal quantile


def clustered_mean_ci(values, z: float = Z95) -> tuple[float, float, float]:
    """Mean and 95% CI of a (prompts, samples) array, with prompts as the independent units.

    Samples that share a prompt are correlated, so the standard error comes from the per-prompt
    means rather than from all samples as if independent.
    """
    values = np.asarray(values, dtype=float)
    per_prompt = values.mean(axis=1)
    mean = float(per_prompt.mean())
    if len(per_prompt) < 2:
        return mean, -math.inf, math.inf
    se = float(per_prompt.std(ddof=1) / math.sqrt(len(per_prompt)))
    return mean, mean - z * se, mean + z * se


BOOTSTRAP_RESAMPLES = 4000


def paired_bootstrap_ci(
    differences, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of per-prompt paired differences (model A - model B on the same
    prompts), resampling prompts with replacement. Pairing removes what the two models share on a
    prompt (its difficulty), so the CI is that of the difference itself, not of two separate means.
    A fixed seed makes the CI reproducible run to run."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), -math.inf, math.inf
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(lo), float(hi)


def paired_verdict(low: float, high: float) -> str:
    """The sign of a paired difference, decided by its CI: "lower" (CI below 0), "higher" (above 0) or
    "no difference" (the CI holds 0)."""
    if high < 0:
        return "lower"
    if low > 0:
        return "higher"
    return "no difference"
