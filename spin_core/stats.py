"""Statistics shared by the divergence estimates and the claims: normal-approximation CIs with the
prompt as the independent unit."""

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
