"""The data-size and capacity tables on hand-made per-prompt KLs whose answers are known: an arm that
rises every iteration, a fresh arm from the same SFT models that falls, and a second size."""

import numpy as np
import pandas as pd
import pytest

from analysis.studies import study_summary, study_table
from spin_core import names

PROMPTS = [f"p{i}" for i in range(50)]
ARMS = {  # KL at sft, iter0, iter1 (before the per-prompt effect); the gap of each model
    "n2000_h64": ([4.0, 4.5, 5.0], [4.0, 5.0, 6.0]),
    "fresh2000_h64": ([4.0, 3.8, 3.6], [4.0, 3.0, 2.0]),
    "n8000_h64": ([3.0, 3.2, 3.4], [1.0, 1.5, 2.0]),
}


def frames():
    rng = np.random.default_rng(1)
    effect = rng.normal(0, 2.0, size=len(PROMPTS))  # shared by every model: pairing removes it
    runs, pp = [], []
    for arm, (curve, gaps) in ARMS.items():
        a = names.parse_study_arm(arm)
        keys = {"arm": arm, "n_train": a.n_train, "hidden": a.hidden, "fresh": a.fresh}
        for seed in (0, 1):
            for t, level, gap in zip((-1, 0, 1), curve, gaps):
                model = "sft" if t < 0 else f"iter{t}"
                for metric in ("forward_kl", "reverse_kl"):
                    values = level + effect + rng.normal(0, 0.02, size=len(PROMPTS))
                    pp.append(pd.DataFrame({**keys, "seed": seed, "model": model, "prompt_id": PROMPTS,
                                            "metric": metric, "value": values, "iteration": t}))  # fmt: skip
                    runs.append({**keys, "seed": seed, "model": model, "iteration": t, "metric": metric,
                                 "value": values.mean(), "realised_step": np.nan, "steps": 10.0,
                                 "heldout_nll": 20.0 + level, "gap": gap + seed, "data_gap": 0.1})  # fmt: skip
    return pd.DataFrame(runs), pd.concat(pp, ignore_index=True)


def test_study_table_keeps_the_arms_order_and_averages_per_model_values_over_seeds():
    runs, pp = frames()
    table = study_table(runs, pp)
    assert list(dict.fromkeys(table.arm)) == list(ARMS)
    row = table[(table.arm == "n2000_h64") & (table.metric == "forward_kl") & (table.iteration == 1)].iloc[0]
    assert row.gap == pytest.approx(6.5) and (row.gap_min, row.gap_max) == (6.0, 7.0)  # seeds add 0 and 1
    assert row.n_train == 2000 and row.hidden == 64 and not row.fresh
    assert row.step_from_previous == pytest.approx(0.5, abs=0.02) and row.step_ci_low > 0


def test_fresh_arm_is_compared_with_the_arm_of_its_size_on_paired_prompts():
    runs, pp = frames()
    summary = study_summary(study_table(runs, pp), pp).set_index(["arm", "metric"])
    fresh = summary.loc[("fresh2000_h64", "forward_kl")]
    assert fresh.falls_each_iteration == "reproduced" and fresh.vs_same_sft_verdict == "reproduced"
    head, value = fresh.vs_same_sft.split(" [")[0].split(" = ")
    assert head == "fresh2000_h64 - n2000_h64 at iter1" and float(value) == pytest.approx(-1.4, abs=0.02)  # 3.6 - 5
    reused = summary.loc[("n2000_h64", "forward_kl")]
    assert reused.falls_each_iteration == "not reproduced" and reused.vs_same_sft == ""
    assert reused.sft_kl == pytest.approx(4.0, abs=0.1) and reused.last_kl == pytest.approx(5.0, abs=0.1)
    assert reused.gap_sft == pytest.approx(4.5) and reused.gap_last == pytest.approx(6.5)
    assert summary.loc[("n8000_h64", "forward_kl"), "last_minus_sft"] == pytest.approx(0.4, abs=0.02)
