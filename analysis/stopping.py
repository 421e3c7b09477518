"""When to stop iterating, decided only from what a paper-scale user has, scored against the exact KL.

The rules were named and written down on 2026-12-02, before any chain of the ablation had its held-out
NLL or margin computed (issue #24, item 5), and are not tuned to the results. Each reads, per chain, the
models in order (sft, iter0, iter1, ...) with two numbers each: the held-out NLL of the test split's
human responses, and the held-out real-vs-generated margin of the step that made the model (none for
the SFT model). Each keeps one model:
- `nll_first_rise`: iterate while the held-out NLL falls; keep the model before the first iteration
  whose NLL is above its predecessor's (the SFT model if iteration 0's is);
- `nll_lowest`: run every iteration, keep the model with the lowest held-out NLL;
- `margin_positive`: iterate while the held-out margin is positive; keep the model before the first
  iteration whose margin is not;
- `all_iterations` (the paper's practice: keep the last) and `sft_only` (never iterate), for reference.
A rule hits when it keeps the model nearest p_data in the exact forward KL; it loses the nats by which
its model's forward KL exceeds that nearest model's.
"""

from __future__ import annotations

import math

import pandas as pd

RULES = ("nll_first_rise", "nll_lowest", "margin_positive", "all_iterations", "sft_only")
CHAIN_KEYS = ["start", "recipe", "seed"]
STOPPING_METRIC = "forward_kl"


def kept_model(rule: str, nll: list[float], margin: list[float]) -> int:
    """The index (0 = the SFT model) of the model `rule` keeps, from the per-model held-out NLL and
    margin (margin[0], the SFT model's, is not read)."""
    if rule == "sft_only":
        return 0
    if rule == "all_iterations":
        return len(nll) - 1
    if rule == "nll_lowest":
        return min(range(len(nll)), key=lambda i: (nll[i], i))
    for i in range(1, len(nll)):
        stop = nll[i] > nll[i - 1] if rule == "nll_first_rise" else not margin[i] > 0
        if stop:
            return i - 1
    if rule in ("nll_first_rise", "margin_positive"):
        return len(nll) - 1
    raise ValueError(f"unknown stopping rule {rule!r} (known: {', '.join(RULES)})")


def stopping_table(runs: pd.DataFrame, chain_keys=CHAIN_KEYS) -> pd.DataFrame:
    """One row per chain (`chain_keys`: the ablation's start, recipe and seed; a map cell) and rule: the
    model kept, the one nearest p_data, and the nats lost."""
    kl = runs[runs["metric"] == STOPPING_METRIC]
    chain_keys = list(chain_keys)
    rows = []
    for keys, chain in kl.groupby(chain_keys, sort=True):
        chain = chain.sort_values("iteration")
        models, values = list(chain["model"]), list(chain["value"])
        nll, margin = list(chain["heldout_nll"]), list(chain["heldout_margin"])
        if any(math.isnan(v) for v in nll):
            raise ValueError(f"chain {dict(zip(chain_keys, keys))}: a model has no held-out NLL")
        best = min(range(len(values)), key=lambda i: (values[i], i))
        for rule in RULES:
            i = kept_model(rule, nll, margin)
            rows.append({**dict(zip(chain_keys, keys)), "rule": rule, "kept": models[i], "nearest": models[best],
                         "hit": i == best, "kept_kl": values[i], "nearest_kl": values[best],
                         "nats_lost": values[i] - values[best]})  # fmt: skip
    return pd.DataFrame(rows)


def stopping_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule, over all chains and per SFT start (where the table has starts): how often it keeps the
    nearest model, and the nats it loses (mean over chains, and the worst chain)."""
    parts = [table.assign(start="all")] + ([table] if "start" in table else [])
    rows = []
    for (start, rule), part in pd.concat(parts).groupby(["start", "rule"], sort=False):
        rows.append({"start": start, "rule": rule, "chains": len(part), "hits": int(part["hit"].sum()),
                     "hit_rate": float(part["hit"].mean()), "mean_nats_lost": float(part["nats_lost"].mean()),
                     "max_nats_lost": float(part["nats_lost"].max())})  # fmt: skip
    order = {r: i for i, r in enumerate(RULES)}
    out = pd.DataFrame(rows)
    return out.sort_values(["start", "rule"], key=lambda c: c.map(order) if c.name == "rule" else c).reset_index(
        drop=True
    )
