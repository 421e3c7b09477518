"""The recipe ablation's tables and the paired verdicts, on hand-made per-prompt KLs whose answers are
known: a recipe that falls every iteration, one that rises once, and the control."""

import numpy as np
import pandas as pd

from analysis.recipes import ablation_summary, ablation_table
from spin_core.names import CONTROL

PROMPTS = [f"p{i}" for i in range(60)]
CURVES = {  # KL at sft, iter0, iter1, iter2 (before the per-prompt effect)
    "official": [4.0, 3.0, 2.0, 1.0],
    "bumpy": [4.0, 3.0, 3.5, 2.0],
    CONTROL: [4.0, 3.5, 3.0, 2.5],
}


def frames():
    rng = np.random.default_rng(0)
    effect = rng.normal(0, 3.0, size=len(PROMPTS))  # shared by every model: pairing removes it
    pp, runs = [], []
    for recipe, curve in CURVES.items():
        for seed in (0, 1, 2):
            for t, level in zip((-1, 0, 1, 2), curve):
                model = "sft" if t < 0 else f"iter{t}"
                for metric in ("forward_kl", "reverse_kl"):
                    values = level + effect + rng.normal(0, 0.05, size=len(PROMPTS))
                    pp.append(pd.DataFrame({"start": "weak", "recipe": recipe, "seed": seed, "model": model,
                                            "prompt_id": PROMPTS, "metric": metric, "value": values, "iteration": t}))  # fmt: skip
                    runs.append({"start": "weak", "recipe": recipe, "seed": seed, "model": model, "iteration": t,
                                 "metric": metric, "value": values.mean(), "realised_step": np.nan if t < 0 else 0.5,
                                 "steps": np.nan if t < 0 else 10.0})  # fmt: skip
    return pd.DataFrame(runs), pd.concat(pp, ignore_index=True)


def test_ablation_verdicts_are_decided_on_paired_steps():
    runs, pp = frames()
    table = ablation_table(runs, pp)
    assert set(table.n_seeds) == {3}
    # The prompt effect (sd 3) makes each mean's CI wide, the paired step's narrow.
    row = table[(table.recipe == "official") & (table.metric == "forward_kl") & (table.iteration == 0)].iloc[0]
    assert row.ci_high - row.ci_low > 0.5
    assert row.step_ci_high < 0 and abs(row.step_from_previous + 1.0) < 0.05
    summary = ablation_summary(table, pp).set_index(["recipe", "metric"])
    assert summary.loc[("official", "forward_kl"), "falls_each_iteration"] == "reproduced"
    assert summary.loc[("bumpy", "forward_kl"), "falls_each_iteration"] == "not reproduced"  # iter0 -> iter1 rises
    assert summary.loc[(CONTROL, "forward_kl"), "falls_each_iteration"] == "reproduced"
    assert summary.loc[("official", "forward_kl"), "vs_control_verdict"] == "reproduced"  # 1.0 < 2.5
    assert summary.loc[("bumpy", "reverse_kl"), "vs_control_verdict"] == "reproduced"  # 2.0 < 2.5
    assert summary.loc[(CONTROL, "forward_kl"), "vs_control"] == ""
    assert abs(summary.loc[("official", "forward_kl"), "last_minus_sft"] + 3.0) < 0.05
