"""The report stage's commands: the tables (paper vs ours, claims, divergence and proxies by
iteration), the figures, and the convergence map gathered from its cells. Each reads the pipeline's
tidy CSVs and writes CSV + Markdown tables and PNG + SVG figures under results/."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from spin_core import names
from spin_core.config import EvaluationConfig, GenerateConfig, SpinConfig
from spin_core.io import write_table, write_text

from . import claims, convergence

log = logging.getLogger(__name__)

# Every table and figure the report stage writes: name -> whether only the tiny world has it
# (rules/report.smk declares exactly these as outputs).
TABLES = {
    "recipe": False,
    "benchmarks_paper_vs_ours": False,
    "benchmarks_long": False,
    "claims": False,
    "proxies_by_iteration": False,
    "divergence_by_iteration": True,
    "proxy_tracking": True,
    "theory_overlay": True,
}
FIGURES = {
    "benchmarks_vs_iteration": False,
    "proxies_vs_iteration": False,
    "divergence_vs_iteration": True,
    "spin_vs_sft_continued": True,
    "proxy_tracking": True,
    "theory_overlay": True,
}


def table_names(tiny: bool) -> list[str]:
    return [name for name, tiny_only in TABLES.items() if tiny or not tiny_only]


def figure_names(tiny: bool) -> list[str]:
    return [name for name, tiny_only in FIGURES.items() if tiny or not tiny_only]


def _read(path: Path | None) -> pd.DataFrame | None:
    return pd.read_csv(path) if path and Path(path).exists() else None


def _write_both(df: pd.DataFrame, out_dir: Path, name: str) -> None:
    assert name in TABLES, name
    write_table(out_dir / f"{name}.csv", df)
    write_text(out_dir / f"{name}.md", claims.to_markdown(df))
    log.info("wrote %s/%s.{csv,md} (%d rows)", out_dir, name, len(df))


RECIPE_KEYS = (
    "learning_rate",
    "beta",
    "num_train_epochs",
    "max_length",
    "max_prompt_length",
    "mix_previous_iteration",
    "loss",
)
DECODING_KEYS = ("backend", "decoding", "prompt_template", "temperature", "top_p", "max_new_tokens")


def recipe_table(recipe: str, spin: SpinConfig, generate: GenerateConfig, iterations: list[int]) -> pd.DataFrame:
    """What ran: the recipe's name and, per iteration, its training settings (spin.per_iteration
    applied) and the decoding that sampled its pairs."""
    rows = []
    for t in iterations:
        s = spin.for_iteration(t)
        rows.append({"recipe": recipe, "iteration": t, **{k: getattr(s, k) for k in RECIPE_KEYS},
                     **{f"generate.{k}": getattr(generate, k) for k in DECODING_KEYS}})  # fmt: skip
    return pd.DataFrame(rows)


def write_tables(
    spin: SpinConfig,
    evaluation: EvaluationConfig,
    generate: GenerateConfig,
    recipe: str,
    scale: str,
    iterations: list[int],
    paper: Path,
    out_dir: Path,
    exact: Path | None = None,
    proxies: Path | None = None,
    scores: Path | None = None,
    theory: Path | None = None,
) -> None:
    """The report's tables: paper vs ours, the claims, divergence and proxies by iteration."""
    paper_results = claims.load_paper_results(paper)
    exact_df, proxies_df, scores_df, theory_df = _read(exact), _read(proxies), _read(scores), _read(theory)
    primary = {
        (names.EVAL_FAMILIES[family], task): spec.primary_metric
        for family in names.EVAL_FAMILIES
        for task, spec in getattr(evaluation, family).tasks.items()
    }
    long = claims.benchmark_long(scores_df, paper_results, scale, primary)
    _write_both(claims.wide_table(long), out_dir, "benchmarks_paper_vs_ours")
    _write_both(long, out_dir, "benchmarks_long")
    _write_both(recipe_table(recipe, spin, generate, iterations), out_dir, "recipe")
    models = names.main_models(iterations)
    verdicts = claims.claims_table(scale, models, exact_df, scores_df, theory_df, paper_results, spin.beta)
    _write_both(verdicts, out_dir, "claims")
    if exact_df is not None:
        _write_both(convergence.seed_bands(exact_df), out_dir, "divergence_by_iteration")
    if proxies_df is not None:
        _write_both(convergence.seed_bands(proxies_df), out_dir, "proxies_by_iteration")
    if exact_df is not None and proxies_df is not None:
        _write_both(convergence.proxy_tracking(exact_df, proxies_df), out_dir, "proxy_tracking")
    if theory_df is not None:
        _write_both(theory_df, out_dir, "theory_overlay")


def write_figures(
    tables: Path, out_dir: Path, exact: Path | None = None, proxies: Path | None = None, theory: Path | None = None
) -> None:
    """The report's figures (PNG + SVG)."""
    from . import figures  # matplotlib: only the figure commands pay for it

    exact_df, proxies_df, theory_df = _read(exact), _read(proxies), _read(theory)
    long = pd.read_csv(Path(tables) / "benchmarks_long.csv")
    figures.benchmarks_vs_iteration(long, out_dir / "benchmarks_vs_iteration.png")
    if theory_df is not None:
        figures.theory_overlay(theory_df, out_dir / "theory_overlay.png")
    if exact_df is not None:
        figures.divergence_vs_iteration(exact_df, out_dir / "divergence_vs_iteration.png")
        figures.spin_vs_control(exact_df, out_dir / "spin_vs_sft_continued.png")
    if proxies_df is not None:
        figures.proxies_vs_iteration(proxies_df, out_dir / "proxies_vs_iteration.png")
    if exact_df is not None and proxies_df is not None:
        tracking = convergence.proxy_tracking(exact_df, proxies_df)
        figures.proxy_tracking(exact_df, proxies_df, tracking, out_dir / "proxy_tracking.png")


def gather_map(inputs: list[Path], out: Path, heatmap: Path, curves: Path) -> None:
    """Gather the convergence-map cells, label each trajectory, write the map table and its figures."""
    from . import figures  # matplotlib: only the figure commands pay for it

    cells = pd.concat([pd.read_csv(p) for p in inputs], ignore_index=True)
    labelled = []
    for _, part in cells.groupby("cell", sort=False):
        fkl = part[part.metric == "forward_kl"].sort_values("iteration")
        half = ((fkl.ci_high - fkl.ci_low) / 2).to_numpy()
        label = convergence.classify_trajectory(fkl["value"].to_numpy(), half)
        lr, ep = part.learning_rate.iloc[0], part.epochs.iloc[0]
        labelled.append(
            part.assign(
                label=label,
                final_change=fkl["value"].iloc[-1] - fkl["value"].iloc[0],
                budget=f"lr {lr:g} x {ep:g} ep",
                budget_value=lr * ep,
            )
        )
    cells = pd.concat(labelled, ignore_index=True)
    cells = convergence.with_step_prediction(cells)
    write_table(out, cells)
    summary = cells.drop_duplicates("cell")[
        ["cell", "beta", "learning_rate", "epochs", "label", "final_change", "median_step", "predicted_cell", "agrees"]
    ]
    known = summary[summary.predicted_cell != "unknown"]
    note = f"\nThe realised step predicts the label in {int(known.agrees.sum())} of {len(known)} cells.\n"
    write_text(Path(out).with_suffix(".md"), claims.to_markdown(summary) + note)
    figures.convergence_map(cells, heatmap, curves)
    log.info("convergence map: %s", summary.to_dict("records"))
