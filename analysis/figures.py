"""Report figures (matplotlib, Agg): each function takes tidy frames and writes PNG + SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spin_core.io import atomic_path  # noqa: E402
from spin_core.names import CONTROL, MT_BENCH, SPIN  # noqa: E402

from .convergence import seed_bands, with_chains  # noqa: E402

ITER_LABEL = "model (SFT, then SPIN iterations)"
plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 110})


def save(fig, png: str | Path) -> None:
    """PNG at the given path and an SVG beside it, each written atomically."""
    png = Path(png)
    fig.tight_layout()
    for path, fmt in ((png, "png"), (png.with_suffix(".svg"), "svg")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
    plt.close(fig)


def _band(ax, b, label, color, marker="o"):
    b = b.sort_values("iteration")
    iteration_ticks(ax, b.iteration)
    ax.plot(b.iteration, b["mean"], marker=marker, color=color, label=f"{label} (mean of {int(b.n_seeds.max())} seeds)")
    if b.n_seeds.max() > 1:
        ax.fill_between(b.iteration, b.band_low, b.band_high, color=color, alpha=0.2, label=f"{label}: seed min-max")
    ax.errorbar(
        b.iteration,
        b["main"],
        yerr=[b["main"] - b.main_ci_low, b.main_ci_high - b["main"]],
        fmt="none",
        ecolor=color,
        capsize=3,
        alpha=0.8,
    )


def _from(start: str) -> str:
    return f", from the {start} SFT model" if start else ""


def divergence_vs_iteration(exact: pd.DataFrame, png, start: str = "") -> None:
    bands = seed_bands(exact)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, title in zip(axes, ("forward_kl", "reverse_kl"), ("KL(p_data || p_t)", "KL(p_t || p_data)")):
        _band(ax, bands[(bands.method == SPIN) & (bands.metric == metric)], "SPIN", "C0")
        ax.set(title=f"Exact {title}", xlabel=ITER_LABEL, ylabel="nats per response")
        ax.legend(fontsize=8)
    fig.suptitle(f"Tiny world: exact divergence to p_data{_from(start)} (error bars: main run's 95% CI over prompts)")
    save(fig, png)


def spin_vs_control(exact: pd.DataFrame, png, start: str = "") -> None:
    bands = seed_bands(exact)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("forward_kl", "reverse_kl")):
        _band(ax, bands[(bands.method == SPIN) & (bands.metric == metric)], "SPIN", "C0")
        ctrl = bands[(bands.method == CONTROL) & (bands.metric == metric)]
        if len(ctrl):
            _band(ax, ctrl, f"{CONTROL} (SFT, same steps)", "C3", marker="s")
        ax.set(title=metric.replace("_", " "), xlabel=ITER_LABEL, ylabel="nats per response")
        ax.legend(fontsize=8)
    fig.suptitle(f"SPIN vs the compute-matched control ({CONTROL}){_from(start)}")
    save(fig, png)


PROXY_PANELS = [
    ("heldout_nll_per_token", "held-out NLL of human responses", "nats / token"),
    ("rv_accuracy", "real-vs-generated accuracy (chance 0.5)", "P[r(y) > r(y')]"),
    ("rv_margin", "real-vs-generated reward margin (0 at the fixed point)", "beta x log-ratio"),
    ("gen_length", "length of generations (dashed: human)", "tokens"),
    ("gen_distinct_2", "distinct-2 of generations (dashed: human)", "unique bigrams / bigrams"),
]


def proxies_vs_iteration(proxies: pd.DataFrame, png) -> None:
    bands = seed_bands(proxies)
    fig, axes = plt.subplots(1, len(PROXY_PANELS), figsize=(4 * len(PROXY_PANELS), 3.8))
    for ax, (metric, title, unit) in zip(axes, PROXY_PANELS):
        for method, color, marker in ((SPIN, "C0", "o"), (CONTROL, "C3", "s")):
            b = bands[(bands.method == method) & (bands.metric == metric)]
            if len(b):
                _band(ax, b, method, color, marker)
        human = {"gen_length": "human_length", "gen_distinct_2": "human_distinct_2"}.get(metric)
        if human:
            ref = proxies[proxies.metric == human]["value"]
            if len(ref):
                ax.axhline(ref.mean(), color="k", ls="--", lw=1, label="human")
        if metric == "rv_accuracy":
            ax.axhline(0.5, color="k", ls=":", lw=1)
        ax.set(title=title, xlabel=ITER_LABEL, ylabel=unit)
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("Paper-scale divergence proxies, computed on the same models")
    save(fig, png)


def proxy_tracking(exact: pd.DataFrame, proxies: pd.DataFrame, tracking: pd.DataFrame, png) -> None:
    metrics = [m for m, _, _ in PROXY_PANELS]
    fkl = exact[exact.metric == "forward_kl"].set_index("model")["value"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    rho = tracking.set_index("proxy")["spearman_rho"]
    for ax, metric in zip(axes, metrics):
        part = with_chains(proxies[proxies.metric == metric])
        for method, color in ((SPIN, "C0"), (CONTROL, "C3")):
            p = part[part.method == method]
            ax.scatter(fkl.reindex(p.model), p["value"], color=color, label=method, s=18)
        ax.set(
            xlabel="exact forward KL (nats)",
            ylabel=metric,
            title=f"{metric}: Spearman rho = {rho.get(metric, np.nan):.2f}",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("Does each proxy track the exact KL? (one point per model: iterations, seeds, control)")
    save(fig, png)


def benchmarks_vs_iteration(long: pd.DataFrame, png) -> None:
    """Small multiples, one panel per benchmark task: the paper's values and ours per iteration, ours
    with lm-eval's stderr as error bars; MT-Bench on its own 1-10 axis; iterations as categories."""
    iters = long[long.model.map(_is_iterate)]
    paper = iters[iters.source == "paper"]
    ours = iters[iters.source.str.startswith("ours")]
    panels = list(dict.fromkeys(zip(paper.benchmark, paper.task))) + list(dict.fromkeys(zip(ours.benchmark, ours.task)))
    panels = list(dict.fromkeys(panels))
    n_cols = min(4, max(1, len(panels)))
    n_rows = -(-len(panels) // n_cols) if panels else 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.4 * n_cols, 2.8 * n_rows), squeeze=False)
    models = sorted(set(iters.model), key=lambda m: -1 if m == "sft" else int(m[4:]))
    position = {m: i for i, m in enumerate(models)}
    for ax, (benchmark, task) in zip(axes.flat, panels):
        for frame, style in ((paper, dict(color="0.4", marker="s", ls="--")), (ours, dict(color="C0", marker="o"))):
            part = frame[(frame.benchmark == benchmark) & (frame.task == task)]
            if part.empty:
                continue
            part = part.assign(x=part.model.map(position)).sort_values("x")
            ax.errorbar(part.x, part.value, yerr=part.stderr.fillna(0.0), capsize=3, label=part.source.iloc[0], **style)
        ax.set_xticks(range(len(models)), models)
        unit = "MT-Bench score (1-10)" if benchmark == MT_BENCH else "score (%)"
        ax.set(title=f"{benchmark}: {task}" if len(task) < 28 else f"{benchmark}:\n{task}", ylabel=unit)
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Benchmarks per iteration: the paper (v3 Tables 4, 6) and ours (error bars: stderr)")
    save(fig, png)


def _is_iterate(model: str) -> bool:
    return model == "sft" or (model.startswith("iter") and model[4:].isdigit())


def iteration_ticks(ax, iterations) -> None:
    """Categorical ticks for the iteration axis: the SFT model (plotted at -1), then iter0, iter1, ..."""
    xs = sorted({int(x) for x in iterations})
    ax.set_xticks(xs, ["sft" if x == -1 else f"iter{x}" for x in xs])


def theory_overlay(theory: pd.DataFrame, png) -> None:
    betas = sorted(theory.beta.unique())
    fig, axes = plt.subplots(1, len(betas), figsize=(4 * len(betas), 3.8), sharey=False)
    for ax, beta in zip(np.atleast_1d(axes), betas):
        part = theory[theory.beta == beta]
        for method, style in (
            ("map", dict(color="k", marker="o", lw=2)),
            ("minimise", dict(color="C1", ls="--", marker="x")),
        ):
            p = part[part.method == method].sort_values("iteration")
            ax.plot(
                p.iteration,
                p.forward_kl.clip(lower=1e-12),
                label=f"{method} (closed form)" if method == "map" else "numerical minimiser",
                **style,
            )
        for (lr, steps), p in part[part.method == "budget"].groupby(["lr", "steps"]):
            p = p.sort_values("iteration")
            ax.plot(
                p.iteration,
                p.forward_kl.clip(lower=1e-12),
                marker=".",
                label=f"gradient budget lr={lr:g} x {steps} steps",
            )
        ax.set_yscale("log")
        ax.set(
            title=f"beta = {beta:g} (factor 1 - 1/beta = {1 - 1 / beta:.3g})",
            xlabel="iteration t (0 = start)",
            ylabel="KL(p_data || p_t), nats",
        )
        ax.legend(fontsize=7)
    fig.suptitle("Theory overlay: tabular SPIN on an enumerable world (exact expectations)")
    save(fig, png)


def convergence_map(cells: pd.DataFrame, heat_png, curves_png) -> None:
    """Heatmap of the label per (beta, budget) cell, and every cell's forward-KL curve."""
    labels = ["monotone", "plateau", "flat", "oscillate", "diverge"]
    # The label decided on paired per-prompt steps where the cells have it (the unpaired one otherwise).
    label = "label_paired" if "label_paired" in cells else "label"
    summary = cells.drop_duplicates("cell")[["cell", "beta", "budget", "budget_value", label, "final_change"]]
    summary = summary.rename(columns={label: "label"})
    betas = sorted(summary.beta.unique())
    budgets = list(dict.fromkeys(summary.sort_values("budget_value").budget))
    grid = np.full((len(betas), len(budgets)), np.nan)
    fig, ax = plt.subplots(figsize=(1.9 * len(budgets) + 2, 0.9 * len(betas) + 2))
    for r in summary.itertuples(index=False):
        i, j = betas.index(r.beta), budgets.index(r.budget)
        grid[i, j] = r.final_change
        ax.text(j, i, f"{r.label}\n{r.final_change:+.2f}", ha="center", va="center", fontsize=8)
    lim = np.nanmax(np.abs(grid)) or 1.0
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(budgets)), budgets, rotation=20, fontsize=8)
    ax.set_yticks(range(len(betas)), [f"beta={b:g}" for b in betas])
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="forward KL, last iteration - SFT model (nats)")
    kind = "steps decided on paired CIs" if label == "label_paired" else "steps beyond the CI half-widths"
    ax.set_title(f"Convergence map (labels: {', '.join(labels)}; {kind})", fontsize=9)
    save(fig, heat_png)

    fig, axes = plt.subplots(1, len(betas), figsize=(4 * len(betas), 3.8), sharey=True)
    for ax, beta in zip(np.atleast_1d(axes), betas):
        for _, p in cells[(cells.beta == beta) & (cells.metric == "forward_kl")].groupby("cell"):
            p = p.sort_values("iteration")
            ax.errorbar(
                p.iteration,
                p["value"],
                yerr=[p["value"] - p.ci_low, p.ci_high - p["value"]],
                marker="o",
                capsize=2,
                label=f"{p.budget.iloc[0]}: {p[label].iloc[0]}",
            )
        ax.set(title=f"beta = {beta:g}", xlabel=ITER_LABEL, ylabel="exact forward KL (nats)")
        iteration_ticks(ax, cells.iteration)
        ax.legend(fontsize=7)
    fig.suptitle("Convergence map: forward KL per iteration for every cell")
    save(fig, curves_png)


def recipe_ablation(table: pd.DataFrame, png) -> None:
    """Exact KL per iteration for every recipe (lines, seed min-max bands), one panel per metric and SFT
    start; the axes of a metric share one scale so the starts compare at a glance."""
    starts = sorted(table.start.unique(), key=lambda s: (s != "saturated", s))
    metrics = [m for m in ("forward_kl", "reverse_kl") if m in set(table.metric)]
    recipes = list(dict.fromkeys(table.recipe))
    fig, axes = plt.subplots(len(metrics), len(starts), figsize=(5 * len(starts), 3.8 * len(metrics)), squeeze=False,
                             sharey="row")  # fmt: skip
    for i, metric in enumerate(metrics):
        for j, start in enumerate(starts):
            ax = axes[i][j]
            for k, recipe in enumerate(recipes):
                p = table[(table.start == start) & (table.metric == metric) & (table.recipe == recipe)]
                if p.empty:
                    continue
                p = p.sort_values("iteration")
                style = dict(color="k", ls="--", marker="s") if recipe == CONTROL else dict(color=f"C{k}", marker="o")
                ax.plot(p.iteration, p["mean"], label=f"{recipe} ({int(p.n_seeds.max())} seeds)", **style)
                if p.n_seeds.max() > 1:
                    ax.fill_between(p.iteration, p.band_low, p.band_high, color=style["color"], alpha=0.12)
            iteration_ticks(ax, table.iteration)
            ax.set(
                title=f"{start} SFT start: {metric.replace('_', ' ')}", xlabel=ITER_LABEL, ylabel="nats per response"
            )
            ax.legend(fontsize=7)
    fig.suptitle("Recipe ablation: exact KL to p_data per iteration (lines: seed mean; bands: seed min-max)")
    save(fig, png)


def study(table: pd.DataFrame, png, title: str) -> None:
    """The data-size or capacity study: per arm, by iteration, the exact forward KL, its change from the
    arm's own SFT model (the arms start at very different levels) and the memorisation gap (lines: seed
    mean; bands: seed min-max; bars: 95% CI over prompts of the seed-averaged per-prompt KL), one panel
    per quantity, each with its own scale."""
    arms = list(dict.fromkeys(table.arm))
    panels = [("mean", "exact KL(p_data || p_t)"), ("change", "KL(p_data || p_t) minus the arm's SFT model"),
              ("gap", "memorisation gap: log p(y_train) - log p(y_new)")]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (column, name) in zip(axes[0], panels):
        for k, arm in enumerate(arms):
            p = table[(table.arm == arm) & (table.metric == "forward_kl")].sort_values("iteration")
            if p.empty:
                continue
            fresh = arm.startswith("fresh")
            style = dict(color=f"C{k}", marker="s" if fresh else "o", ls="--" if fresh else "-")
            base = p["mean"].iloc[0] if column == "change" else 0.0
            y, low, high = {
                "mean": (p["mean"], p.band_low, p.band_high),
                "change": (p["mean"] - base, p.band_low - base, p.band_high - base),
                "gap": (p["gap"], p["gap_min"], p["gap_max"]),
            }[column]
            ax.plot(p.iteration, y, label=f"{arm} ({int(p.n_seeds.max())} seeds)", **style)
            if p.n_seeds.max() > 1:
                ax.fill_between(p.iteration, low, high, color=style["color"], alpha=0.12)
            if column == "mean":
                ax.errorbar(p.iteration, p["mean"], yerr=[p["mean"] - p.ci_low, p.ci_high - p["mean"]], fmt="none",
                            ecolor=style["color"], capsize=3, alpha=0.7)  # fmt: skip
        if column == "change":
            ax.axhline(0, color="k", lw=0.8)
        iteration_ticks(ax, table.iteration)
        ax.set(title=name, xlabel=ITER_LABEL, ylabel="nats per response")
        ax.legend(fontsize=7)
    fig.suptitle(f"{title} (arm n<rows>_h<width>; fresh: new p_data rows every iteration)")
    save(fig, png)
