"""The stopping rules named in advance (analysis/stopping.py), on chains whose answers are known."""

import math

import pandas as pd
import pytest

from analysis.stopping import RULES, kept_model, stopping_summary, stopping_table

NAN = math.nan


@pytest.mark.parametrize(
    "rule, nll, margin, kept",
    [
        ("nll_first_rise", [5.0, 4.0, 3.5, 3.8, 3.0], [NAN, 1, 1, 1, 1], 2),  # rises at iter2: keep iter1
        ("nll_first_rise", [5.0, 5.5, 4.0], [NAN, 1, 1], 0),  # iteration 0 already rises: keep SFT
        ("nll_first_rise", [5.0, 4.0, 3.0], [NAN, 1, 1], 2),  # never rises: keep the last
        ("nll_lowest", [5.0, 4.0, 3.5, 3.8, 3.0], [NAN, 1, 1, 1, 1], 4),
        ("nll_lowest", [5.0, 4.0, 4.0], [NAN, 1, 1], 1),  # ties: the earlier model
        ("margin_positive", [5.0, 4.0, 3.5, 3.8], [NAN, 0.2, -0.1, 0.5], 1),  # iter1's step is not positive
        ("margin_positive", [5.0, 4.0], [NAN, 0.0], 0),  # zero is not positive
        ("margin_positive", [5.0, 4.0, 3.0], [NAN, 0.1, 0.1], 2),
        ("all_iterations", [5.0, 4.0, 3.0], [NAN, -1, -1], 2),
        ("sft_only", [5.0, 4.0, 3.0], [NAN, 1, 1], 0),
    ],
)
def test_each_rule_keeps_the_model_its_definition_names(rule, nll, margin, kept):
    assert kept_model(rule, nll, margin) == kept


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown stopping rule 'nll_first'"):
        kept_model("nll_first", [1.0, 2.0], [NAN, 1.0])


def _chain(start, seed, kl, nll, margin):
    models = ["sft"] + [f"iter{t}" for t in range(len(kl) - 1)]
    return pd.DataFrame(
        {
            "start": start,
            "recipe": "official",
            "seed": seed,
            "model": models,
            "iteration": range(-1, len(kl) - 1),
            "metric": "forward_kl",
            "value": kl,
            "heldout_nll": nll,
            "heldout_margin": margin,
        }  # fmt: skip
    )


def test_table_scores_each_rule_against_the_exact_kl_and_summary_counts_hits():
    a = _chain("saturated", 0, kl=[7.0, 7.5, 8.0], nll=[20.0, 20.5, 21.0], margin=[NAN, -0.1, -0.2])  # best: sft
    b = _chain("weak", 0, kl=[9.0, 8.0, 8.5], nll=[22.0, 21.0, 21.2], margin=[NAN, 0.3, 0.1])  # best: iter0
    runs = pd.concat([a, b, a.assign(metric="reverse_kl")], ignore_index=True)  # other metrics are not read
    table = stopping_table(runs)
    assert len(table) == 2 * len(RULES)
    row = table.set_index(["start", "rule"])
    assert row.loc[("saturated", "nll_first_rise"), "kept"] == "sft" and row.loc[("saturated", "nll_first_rise"), "hit"]
    assert row.loc[("weak", "nll_first_rise"), "kept"] == "iter0" and row.loc[("weak", "nll_first_rise"), "hit"]
    assert row.loc[("saturated", "all_iterations"), "nats_lost"] == pytest.approx(1.0)
    assert row.loc[("weak", "margin_positive"), "kept"] == "iter1"  # both margins positive: loses 0.5
    assert row.loc[("weak", "margin_positive"), "nats_lost"] == pytest.approx(0.5)
    summary = stopping_summary(table).set_index(["start", "rule"])
    assert summary.loc[("all", "nll_first_rise"), ["chains", "hits"]].tolist() == [2, 2]
    assert summary.loc[("all", "all_iterations"), "mean_nats_lost"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary.loc[("all", "sft_only"), "max_nats_lost"] == pytest.approx(1.0)
    assert list(stopping_summary(table)["rule"][:5]) == list(RULES)


def test_a_chain_without_heldout_nll_is_an_error():
    c = _chain("weak", 1, kl=[9.0, 8.0], nll=[22.0, NAN], margin=[NAN, 0.3])
    with pytest.raises(ValueError, match="a model has no held-out NLL"):
        stopping_table(c)


def test_long_horizon_table_averages_seeds_per_iteration():
    from analysis.long_horizon import long_horizon_table

    rows = []
    for seed, shift in ((0, 0.0), (1, 1.0)):
        for model, it, kl, gap in (("sft", -1, 7.0, 0.1), ("iter0", 0, 8.0, 2.0)):
            for metric, value in (("forward_kl", kl + shift), ("reverse_kl", 2 * kl)):
                rows.append({"seed": seed, "model": model, "iteration": it, "metric": metric, "value": value,
                             "heldout_nll": 20.0 + shift, "gap": gap + shift, "data_gap": 0.05})  # fmt: skip
    table = long_horizon_table(pd.DataFrame(rows))
    assert list(table.model) == ["sft", "iter0"] and list(table.seeds) == [2, 2]
    it0 = table.set_index("model").loc["iter0"]
    assert it0.forward_kl == pytest.approx(8.5) and (it0.forward_kl_min, it0.forward_kl_max) == (8.0, 9.0)
    assert it0.gap == pytest.approx(2.5) and it0.reverse_kl == pytest.approx(16.0)
