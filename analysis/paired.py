"""Paired comparisons of models on the same held-out prompts: per-prompt KLs (tidy rows `prompt_id,
metric, value` plus keys) reshaped to one column per model, and the step-by-step and model-vs-model
differences with paired bootstrap CIs (spin_core.stats). The verdicts of the claims and of the recipe
ablation are decided here, on differences, not on two separately estimated means."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spin_core.stats import paired_bootstrap_ci, paired_verdict

# How a curve of per-iteration KLs is judged from its paired steps.
FALLS, RISES = "lower", "higher"


def by_prompt(per_prompt: pd.DataFrame, column: str) -> pd.DataFrame:
    """prompts x `column` values (e.g. iteration), each cell the mean over the rows it gathers (the
    seeds, when they are not part of `column`): the seed-averaged per-prompt value."""
    return per_prompt.pivot_table(index="prompt_id", columns=column, values="value", aggfunc="mean")


def difference(a: pd.Series, b: pd.Series, seed: int = 0) -> dict:
    """a - b on the prompts both have: mean, paired bootstrap CI and its sign ("lower" when a is below b)."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    if joined.empty:
        return {"diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "sign": "unknown", "n_prompts": 0}
    mean, lo, hi = paired_bootstrap_ci(joined["a"] - joined["b"], seed=seed)
    return {"diff": mean, "diff_ci_low": lo, "diff_ci_high": hi, "sign": paired_verdict(lo, hi),
            "n_prompts": len(joined)}  # fmt: skip


def steps(curve: pd.DataFrame) -> list[dict]:
    """Each iteration minus the one before (columns of `curve` in iteration order, prompts as rows)."""
    cols = sorted(curve.columns)
    return [{"from": a, "to": b, **difference(curve[b], curve[a])} for a, b in zip(cols, cols[1:])]


def falls_at_each_step(step_rows: list[dict]) -> str:
    """ "reproduced": every step lowers the KL (paired CI below 0); "not reproduced": some step raises it
    (CI above 0); "inconclusive": no step rises, but some do not fall beyond noise."""
    signs = [s["sign"] for s in step_rows]
    if signs and all(s == FALLS for s in signs):
        return "reproduced"
    if RISES in signs:
        return "not reproduced"
    return "inconclusive"


def lower_than(diff: dict) -> str:
    """Verdict of "A's KL is at most B's" from the paired difference A - B."""
    return {FALLS: "reproduced", RISES: "not reproduced"}.get(diff["sign"], "inconclusive")


def describe_steps(step_rows: list[dict], label) -> str:
    return "; ".join(
        f"{label(s['from'])}->{label(s['to'])} {s['diff']:+.3g} [{s['diff_ci_low']:+.3g}, {s['diff_ci_high']:+.3g}]"
        for s in step_rows
    )


def iteration_label(t) -> str:
    return "sft" if int(t) < 0 else f"iter{int(t)}"
