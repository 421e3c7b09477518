"""Divergence per iteration across chains: seed bands, how well each proxy tracks the exact KL, and
trajectory classification (monotone / plateau / oscillate / diverge). Pure pandas/numpy functions of
the tidy divergence CSVs (model names parsed by spin_core.names); tested on hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spin_core.names import MAIN, SFT, parse_model

# Proxies where lower means closer to p_data (as KL): compared with exact forward KL by sign.
PROXY_METRICS = ["heldout_nll", "heldout_nll_per_token", "rv_accuracy", "rv_margin", "gen_length", "gen_distinct_2"]


def with_chains(df: pd.DataFrame) -> pd.DataFrame:
    """Add method / seed / iteration columns parsed from `model`."""
    parsed = df["model"].map(parse_model)
    out = df.copy()
    out["method"] = [p.method for p in parsed]
    out["seed"] = [p.seed for p in parsed]
    out["iteration"] = [p.iteration for p in parsed]
    return out


def expand_sft(df: pd.DataFrame) -> pd.DataFrame:
    """Every chain starts at iteration -1: a replicate chain at its own SFT model (seed{r}/sft) where it
    has one, any other chain (the control, a chain without its own) at the main run's: copy that row in."""
    sft = df[df["model"] == SFT]
    copies = [df]
    has_start = set(df.loc[df["iteration"] < 0, ["method", "seed"]].itertuples(index=False, name=None))
    for method, seed in df[["method", "seed"]].drop_duplicates().itertuples(index=False):
        if (method, seed) not in has_start:
            copies.append(sft.assign(method=method, seed=seed))
    return pd.concat(copies, ignore_index=True)


def seed_bands(df: pd.DataFrame) -> pd.DataFrame:
    """Per method, metric and iteration: the mean over seeds, min and max (the band), seed count,
    and the main run's prompt-clustered CI."""
    df = expand_sft(with_chains(df))
    rows = []
    for (method, metric, t), part in df.groupby(["method", "metric", "iteration"]):
        main = part[part["seed"] == MAIN]
        rows.append(
            {
                "method": method,
                "metric": metric,
                "iteration": t,
                "mean": part["value"].mean(),
                "band_low": part["value"].min(),
                "band_high": part["value"].max(),
                "n_seeds": part["seed"].nunique(),
                "main": main["value"].iloc[0] if len(main) else np.nan,
                "main_ci_low": main["ci_low"].iloc[0] if len(main) else np.nan,
                "main_ci_high": main["ci_high"].iloc[0] if len(main) else np.nan,
            }
        )
    return pd.DataFrame(rows).sort_values(["method", "metric", "iteration"]).reset_index(drop=True)


def proxy_tracking(exact: pd.DataFrame, proxies: pd.DataFrame, reference: str = "forward_kl") -> pd.DataFrame:
    """Spearman rank correlation, over every model (iterations, seeds, control), between the exact
    divergence and each proxy. rho near +1: the proxy ranks models as the exact KL does. The human
    reference rows (the same for every model) are not proxies and are left out."""
    ref = exact[exact["metric"] == reference].set_index("model")["value"]
    rows = []
    for metric, part in proxies[~proxies["metric"].str.startswith("human_")].groupby("metric"):
        joined = pd.concat([ref.rename("exact"), part.set_index("model")["value"].rename("proxy")], axis=1).dropna()
        rho = joined["exact"].rank().corr(joined["proxy"].rank()) if len(joined) >= 3 else np.nan
        rows.append({"proxy": metric, "exact": reference, "spearman_rho": rho, "n_models": len(joined)})
    return pd.DataFrame(rows).sort_values("proxy").reset_index(drop=True)


def classify_trajectory(values, half_widths, tol: float | None = None) -> str:
    """Label a divergence curve v_0..v_n (lower is better) with the noise level of each point.

    A step counts as a change only if it exceeds the combined half-widths (or `tol`):
      diverge    the last value is significantly above the first;
      oscillate  at least two significant steps change direction (down then up, or up then down);
      monotone   significant decrease overall and no significant rise;
      plateau    significant decrease overall, but the last half of the steps is flat;
      flat       no significant change at all.
    `monotone` is checked after `plateau`, so a curve that stops improving is called a plateau.
    """
    v = np.asarray(values, dtype=float)
    h = np.zeros_like(v) if half_widths is None else np.nan_to_num(np.asarray(half_widths, dtype=float))
    if not np.isfinite(v).all():
        return "diverge"
    noise = lambda i, j: tol if tol is not None else h[i] + h[j]  # noqa: E731
    sign = lambda d, n: 0 if abs(d) <= n else int(np.sign(d))  # noqa: E731
    steps = [sign(v[i + 1] - v[i], noise(i, i + 1)) for i in range(len(v) - 1)]
    return classify_signs(steps, sign(v[-1] - v[0], noise(0, len(v) - 1)))


def classify_signs(steps: list[int], total: int) -> str:
    """The trajectory label from the sign of each step and of last - first (+1 up, -1 down, 0 within
    noise), however each was decided (combined CI half-widths, or a paired CI)."""
    if total > 0:
        return "diverge"
    signs = [s for s in steps if s]
    if any(a != b for a, b in zip(signs, signs[1:])) and len(signs) >= 2 and 1 in signs:
        return "oscillate"
    if total < 0:
        tail = steps[len(steps) // 2 :]
        return "plateau" if all(s == 0 for s in tail) else "monotone"
    return "flat"


def paired_sign(low: float, high: float) -> int:
    """+1 / -1 when a paired difference's CI lies above / below 0, else 0."""
    return 1 if low > 0 else (-1 if high < 0 else 0)


def paired_label(cell: pd.DataFrame) -> str:
    """classify_signs on a map cell's forward-KL rows, each step and the total decided by their paired
    bootstrap CIs (columns paired_step_ci_*, change_ci_* of divergence/convergence_map.py)."""
    f = cell[cell.metric == "forward_kl"].sort_values("iteration")
    rest = f[f.iteration >= 0]
    steps = [paired_sign(lo, hi) for lo, hi in zip(rest.paired_step_ci_low, rest.paired_step_ci_high)]
    last = f.iloc[-1]
    return classify_signs(steps, paired_sign(last.change_ci_low, last.change_ci_high))


# Trajectory labels in which the divergence falls: what a contracting step (0 < s < 2) predicts.
FALLING = ("monotone", "plateau")


def with_step_prediction(cells: pd.DataFrame) -> pd.DataFrame:
    """Per map cell, the median realised step over its iterations, the label it predicts
    ("contracts" when 0 < s < 2) and whether that agrees with the observed trajectory label
    (contracts <=> the divergence falls: monotone or plateau); the same for the label decided on paired
    steps and for the margin criterion, where the cells have their columns."""
    from spin_core.divergence.stability import predicted_label

    if "realised_step" not in cells:
        cells = cells.assign(realised_step=np.nan)
    median = cells.groupby("cell")["realised_step"].median()
    cells = cells.assign(median_step=cells["cell"].map(median))
    cells["predicted_cell"] = cells["median_step"].map(predicted_label)
    cells["agrees"] = _agrees(cells["predicted_cell"], cells["label"])
    if "paired_step_ci_low" in cells:  # the observed label again, each step decided on paired differences
        labels = cells.groupby("cell").apply(paired_label, include_groups=False)
        cells["label_paired"] = cells["cell"].map(labels)
        cells["agrees_paired"] = _agrees(cells["predicted_cell"], cells["label_paired"])
    if "margin" in cells:  # the criterion without p_data: does the held-out margin shrink?
        factor = cells.groupby("cell").apply(lambda c: margin_factor(c.drop_duplicates("model")), include_groups=False)
        cells["margin_factor"] = cells["cell"].map(factor)
        cells["predicted_margin"] = cells["margin_factor"].map(
            lambda f: "unknown" if not np.isfinite(f) else ("contracts" if f < 1 else "does not contract")
        )
        cells["agrees_margin"] = _agrees(cells["predicted_margin"], cells["label"])
        if "label_paired" in cells:
            cells["agrees_margin_paired"] = _agrees(cells["predicted_margin"], cells["label_paired"])
    return cells


def _agrees(predicted: pd.Series, label: pd.Series) -> pd.Series:
    """A prediction agrees where "contracts" meets a falling label, or another prediction a label that
    does not fall; "unknown" never agrees."""
    return ((predicted == "contracts") == label.isin(FALLING)) & (predicted != "unknown")


def margin_factor(cell: pd.DataFrame) -> float:
    """|1 - s| estimated without p_data: the median over iterations of sqrt(M_{t+1} / M_t), M the held-out
    real-vs-generated margin. For an update along log p_data - log p_t with a constant step s, the
    deviation scales by 1 - s and, near p_data, the Jeffreys divergence by (1 - s)^2, so consecutive
    margins M_t = s J_t shrink by (1 - s)^2. NaN when fewer than two positive margins."""
    m = cell.sort_values("iteration")["margin"].to_numpy(dtype=float)
    m = m[np.isfinite(m)]
    ratios = [b / a for a, b in zip(m, m[1:]) if a > 0 and b >= 0]
    return float(np.median(np.sqrt(ratios))) if ratios else float("nan")
