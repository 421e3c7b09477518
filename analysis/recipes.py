"""The recipe ablation's tables: exact KL per start, recipe and iteration (seed mean, seed band, bootstrap
CI over prompts, the paired step from the previous iteration, the realised step), and per start, recipe
and metric a summary: does the KL fall at each iteration, how far it moved from the SFT model, and how
it compares with the SFT-continued control, each decided on paired per-prompt differences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spin_core.names import CONTROL
from spin_core.stats import paired_bootstrap_ci, paired_verdict

from . import paired
from .convergence import classify_trajectory

METRICS = ("forward_kl", "reverse_kl")


RUN_KEYS = ("start", "recipe")  # what names one curve of the ablation (the seeds are its band)


def _select(df: pd.DataFrame, keys, values) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for k, v in zip(keys, values):
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def ablation_table(runs: pd.DataFrame, per_prompt: pd.DataFrame, keys=RUN_KEYS) -> pd.DataFrame:
    """One row per curve (`keys`: start and recipe; an arm in the data-size and capacity studies),
    metric and iteration."""
    keys = list(keys)
    rows = []
    for values, part in runs.groupby(keys + ["metric"], sort=False):
        pp = _select(per_prompt, keys + ["metric"], values)
        curve = paired.by_prompt(pp, "iteration")
        step_by_target = {s["to"]: s for s in paired.steps(curve)}
        for t, at in part.groupby("iteration"):
            mean, lo, hi = paired_bootstrap_ci(curve[t]) if t in curve else (np.nan, np.nan, np.nan)
            step = step_by_target.get(t, {})
            rows.append(
                {
                    **dict(zip(keys + ["metric"], values)),
                    "iteration": int(t),
                    "mean": at["value"].mean(),
                    "band_low": at["value"].min(),
                    "band_high": at["value"].max(),
                    "n_seeds": at["seed"].nunique(),
                    "ci_low": lo,
                    "ci_high": hi,
                    "step_from_previous": step.get("diff", np.nan),
                    "step_ci_low": step.get("diff_ci_low", np.nan),
                    "step_ci_high": step.get("diff_ci_high", np.nan),
                    "realised_step": at["realised_step"].mean() if "realised_step" in at else np.nan,
                    "training_steps": at["steps"].mean() if "steps" in at else np.nan,
                }
            )
    return pd.DataFrame(rows).sort_values(keys + ["metric", "iteration"]).reset_index(drop=True)


def _table_steps(part: pd.DataFrame) -> list[dict]:
    """The paired steps ablation_table computed (one curve's rows, in iteration order), as paired.steps
    gives them."""
    rows = zip(part["iteration"], part.iloc[1:].itertuples(index=False))
    return [{"from": a, "to": r.iteration, "diff": r.step_from_previous, "diff_ci_low": r.step_ci_low,
             "diff_ci_high": r.step_ci_high, "sign": paired_verdict(r.step_ci_low, r.step_ci_high)} for a, r in rows]  # fmt: skip


def ablation_summary(table: pd.DataFrame, per_prompt: pd.DataFrame, keys=RUN_KEYS) -> pd.DataFrame:
    """Per curve (`keys`) and metric: the curve of seed means, its trajectory label, whether it falls at
    each iteration (paired steps), last minus SFT (paired), and (the ablation) SPIN minus the control
    at the last iteration (paired; seed-averaged per prompt)."""
    keys = list(keys)
    rows = []
    for values, part in table.groupby(keys + ["metric"], sort=False):
        part = part.sort_values("iteration")
        curve = paired.by_prompt(_select(per_prompt, keys + ["metric"], values), "iteration")
        step_rows = _table_steps(part)
        first, last = curve.columns.min(), curve.columns.max()
        overall = paired.difference(curve[last], curve[first])
        half = ((part.ci_high - part.ci_low) / 2).to_numpy()
        row = {
            **dict(zip(keys + ["metric"], values)),
            "n_seeds": int(part.n_seeds.max()),
            "curve": " -> ".join(f"{v:.3g}" for v in part["mean"]),
            "trajectory": classify_trajectory(part["mean"].to_numpy(), half),
            "falls_each_iteration": paired.falls_at_each_step(step_rows),
            "steps": paired.describe_steps(step_rows, paired.iteration_label),
            "last_minus_sft": overall["diff"],
            "last_minus_sft_ci": f"[{overall['diff_ci_low']:+.3g}, {overall['diff_ci_high']:+.3g}]",
            "median_realised_step": part["realised_step"].median(),
        }
        rows.append(row)
        if "recipe" not in keys:
            continue
        row.update(vs_control="", vs_control_verdict="")
        start, recipe, metric = values
        pp = per_prompt[(per_prompt.start == start) & (per_prompt.metric == metric)]
        control = pp[pp.recipe == CONTROL]
        if recipe != CONTROL and len(control):
            ctrl = paired.by_prompt(control, "iteration")
            if last in ctrl:
                d = paired.difference(curve[last], ctrl[last])
                row["vs_control"] = (f"SPIN - {CONTROL} at {paired.iteration_label(last)} = {d['diff']:+.3g} "
                                     f"[{d['diff_ci_low']:+.3g}, {d['diff_ci_high']:+.3g}] nats")  # fmt: skip
                row["vs_control_verdict"] = paired.lower_than(d)
    return pd.DataFrame(rows)
