"""The long-horizon table (issue #24, item 3): per iteration of the long chains, over seeds, the exact
KL to p_data, the held-out NLL a paper-scale user sees, and the memorisation gap, the mass on the
training responses against fresh p_data responses for the same prompts (divergence/memorisation.py)."""

from __future__ import annotations

import pandas as pd


def long_horizon_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model (sft, iter0, ...): seeds, the seed mean (and min, max) of forward and reverse
    KL, held-out NLL, the gap and p_data's own gap (the sampling-noise reference)."""
    wide = runs.pivot_table(index=["seed", "model", "iteration"], columns="metric", values="value").reset_index()
    extra = runs.drop_duplicates(["seed", "model"])[["seed", "model", "heldout_nll", "gap", "data_gap"]]
    wide = wide.merge(extra, on=["seed", "model"])
    rows = []
    for (model, iteration), part in wide.groupby(["model", "iteration"], sort=False):
        row = {"model": model, "iteration": int(iteration), "seeds": len(part)}
        for col in ("forward_kl", "reverse_kl", "heldout_nll", "gap", "data_gap"):
            row[col] = float(part[col].mean())
            row[f"{col}_min"], row[f"{col}_max"] = float(part[col].min()), float(part[col].max())
        rows.append(row)
    return pd.DataFrame(rows).sort_values("iteration").reset_index(drop=True)
