"""A predictive stability criterion for SPIN's iterates: the realised step.

The exact SPIN update is log p_{t+1} = log p_t + (1/beta)(log p_data - log p_t) + c(x), so the
deviation from p_data shrinks by the factor 1 - 1/beta per iteration. A trained iterate takes some
other step s_t; regressing (log p_{t+1} - log p_t) on (log p_data - log p_t) over held-out responses,
with a free intercept per prompt (the normalising constants c(x)), measures it. The deviation factor
is then 1 - s_t: the iterates contract when |1 - s_t| < 1, that is 0 < s_t < 2.
"""

from __future__ import annotations

import numpy as np


def realised_step(logp_next, logp_t, logp_data, prompts) -> float:
    """s_t: the within-prompt least-squares slope of log p_{t+1} - log p_t on log p_data - log p_t.

    Each argument holds one value per held-out response (sequence log-probabilities); `prompts`
    names each response's prompt. Prompts with a single response carry no within-prompt
    information and drop out. NaN when nothing varies."""
    y = np.asarray(logp_next, dtype=float) - np.asarray(logp_t, dtype=float)
    x = np.asarray(logp_data, dtype=float) - np.asarray(logp_t, dtype=float)
    groups = np.unique(np.asarray(prompts), return_inverse=True)[1]
    count = np.bincount(groups)
    x = x - (np.bincount(groups, weights=x) / count)[groups]
    y = y - (np.bincount(groups, weights=y) / count)[groups]
    sxx = float(np.sum(x * x))
    return float(np.sum(x * y) / sxx) if sxx > 0 else float("nan")


def predicted_label(step: float) -> str:
    """What the step predicts for the trajectory: "contracts" when the deviation factor 1 - s has
    magnitude below 1 (0 < s < 2), "does not contract" otherwise, "unknown" without a step."""
    if not np.isfinite(step):
        return "unknown"
    return "contracts" if 0.0 < step < 2.0 else "does not contract"
