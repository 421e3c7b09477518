"""The data-size and capacity tables (issue #24, items 1 and 2): per arm and iteration, the exact KL
(seed mean, seed band, bootstrap CI over prompts, the paired step), the held-out NLL a paper-scale user
sees and the memorisation gap; per arm a summary: the SFT model's KL (the floor the iterates are read
against), the last iterate's, the paired change, and for the fresh arm the paired difference from the
arm of its size, which starts from the same SFT models and differs only in the prompts SPIN sees."""

from __future__ import annotations

import pandas as pd

from spin_core import names

from . import paired, recipes

ARM_COLUMNS = ["arm", "n_train", "hidden", "fresh"]
PER_MODEL = ("heldout_nll", "gap", "data_gap")  # one value per model and seed, beside the KL rows


def study_table(runs: pd.DataFrame, per_prompt: pd.DataFrame) -> pd.DataFrame:
    """One row per arm, metric and iteration: recipes.ablation_table's columns with the arm's size and
    width, and the seed mean (min, max) of each model's held-out NLL and memorisation gap."""
    table = recipes.ablation_table(runs, per_prompt, keys=("arm",))
    arms = runs.drop_duplicates("arm")[ARM_COLUMNS]
    per_model = runs.drop_duplicates(["arm", "seed", "iteration"])
    stats = per_model.groupby(["arm", "iteration"])[list(PER_MODEL)].agg(["mean", "min", "max"])
    stats.columns = [c if s == "mean" else f"{c}_{s}" for c, s in stats.columns]
    table = table.merge(arms, on="arm").merge(stats.reset_index(), on=["arm", "iteration"], how="left")
    order = {a: i for i, a in enumerate(runs.drop_duplicates("arm")["arm"])}
    table = table.sort_values(["arm", "metric", "iteration"], key=lambda c: c.map(order) if c.name == "arm" else c)
    return table[ARM_COLUMNS + [c for c in table.columns if c not in ARM_COLUMNS]].reset_index(drop=True)


def study_summary(table: pd.DataFrame, per_prompt: pd.DataFrame) -> pd.DataFrame:
    """Per arm and metric: the trajectory and its paired steps (recipes.ablation_summary), the SFT
    model's and the last iterate's seed-mean KL, the gap at both ends, and for a fresh arm the paired
    difference from the arm of its size at the last iteration."""
    summary = recipes.ablation_summary(table, per_prompt, keys=("arm",))
    ends = table.groupby(["arm", "metric"]).agg(
        sft_kl=("mean", "first"), last_kl=("mean", "last"), gap_sft=("gap", "first"), gap_last=("gap", "last"),
        heldout_nll_sft=("heldout_nll", "first"), heldout_nll_last=("heldout_nll", "last"),
    )  # fmt: skip
    summary = summary.merge(ends.reset_index(), on=["arm", "metric"])
    summary["vs_same_sft"], summary["vs_same_sft_verdict"] = "", ""
    for i, row in summary.iterrows():
        arm = names.parse_study_arm(row["arm"])
        if not arm.fresh or arm.sft_arm not in set(summary["arm"]):
            continue
        pp = per_prompt[per_prompt.metric == row["metric"]]
        mine = paired.by_prompt(pp[pp.arm == row["arm"]], "iteration")
        theirs = paired.by_prompt(pp[pp.arm == arm.sft_arm], "iteration")
        last = mine.columns.max()
        if last not in theirs:
            continue
        d = paired.difference(mine[last], theirs[last])
        summary.loc[i, "vs_same_sft"] = (f"{row['arm']} - {arm.sft_arm} at {paired.iteration_label(last)} = "
                                         f"{d['diff']:+.3g} [{d['diff_ci_low']:+.3g}, {d['diff_ci_high']:+.3g}] nats")  # fmt: skip
        summary.loc[i, "vs_same_sft_verdict"] = paired.lower_than(d)
    order = {a: i for i, a in enumerate(table.drop_duplicates("arm")["arm"])}
    return summary.sort_values(["arm", "metric"], key=lambda c: c.map(order) if c.name == "arm" else c).reset_index(
        drop=True
    )
