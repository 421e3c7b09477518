"""The report stage's commands: the tables (paper vs ours, claims, divergence and proxies by
iteration), the figures, and the convergence map gathered from its cells. Each reads the pipeline's
tidy CSVs and writes CSV + Markdown tables and PNG + SVG figures under results/."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from spin_core import names
from spin_core.config import SFT_STARTS, EvaluationConfig, GenerateConfig, SFTConfig, SpinConfig
from spin_core.errors import DataError
from spin_core.io import read_json, read_tables, write_table, write_text

from . import claims, convergence, long_horizon, recipes, stopping, studies

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
    "sft_start": True,
}
# The recipe ablation's outputs (`snakemake recipes`), written by gather_recipes.
RECIPE_TABLES = ("recipe_ablation", "recipe_ablation_summary", "sft_starts", "stopping_rules", "stopping_summary")
RECIPE_FIGURE = "recipe_ablation"
# The stopping rules over the convergence map's cells (`snakemake convergence_map`), written by gather_map.
MAP_STOPPING_TABLES = ("stopping_rules_map", "stopping_summary_map")
FIGURES = {
    "benchmarks_vs_iteration": False,
    "proxies_vs_iteration": False,
    "divergence_vs_iteration": True,
    "spin_vs_sft_continued": True,
    "proxy_tracking": True,
    "theory_overlay": True,
}


def table_names(tiny: bool, trained: bool = True) -> list[str]:
    """The tables of a run; sft_start only where the SFT model was made here (not released models)."""
    return [name for name, tiny_only in TABLES.items() if (tiny or not tiny_only) and (trained or name != "sft_start")]


def figure_names(tiny: bool) -> list[str]:
    return [name for name, tiny_only in FIGURES.items() if tiny or not tiny_only]


def _read(path: Path | None) -> pd.DataFrame | None:
    return pd.read_csv(path) if path and Path(path).exists() else None


def _write_both(df: pd.DataFrame, out_dir: Path, name: str) -> None:
    known = {
        *TABLES,
        *RECIPE_TABLES,
        *MAP_STOPPING_TABLES,
        names.LONG_HORIZON_TABLE,
        *(t for ts in names.STUDY_TABLES.values() for t in ts),
    }
    assert name in known, name
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


MT_BENCH_OFF = (
    "not run: evaluation.mt_bench.enabled is false (FastChat's MT-Bench questions and judge prompts"
    " cannot be fetched without the network, and no judge is reachable)"
)
EVALUATION_OFF = "not run: evaluation.enabled is false"


def benchmarks_not_run(evaluation: EvaluationConfig) -> dict[str, str]:
    """Benchmark -> why the config runs none of it (the claims rows say so)."""
    if not evaluation.enabled:
        return dict.fromkeys((claims.LB, claims.MT, claims.BB), EVALUATION_OFF)
    off = {} if evaluation.mt_bench.enabled else {claims.MT: MT_BENCH_OFF}
    for family, benchmark in names.EVAL_FAMILIES.items():
        if not getattr(evaluation, family).enabled:
            off[benchmark] = f"not run: evaluation.{family}.enabled is false"
    return off


def bigbench_alias(evaluation: EvaluationConfig, paper: dict) -> dict[str, tuple[str, str]]:
    """The paper's Table 6 columns that one of our BIG-bench tasks of another name stands for (its
    paper_name is the column's name): column -> (task, primary metric)."""
    columns = paper["paper"]["mt_bench_bigbench"]["columns"]
    return {column: (task, spec.primary_metric)
            for task, spec in evaluation.bigbench.tasks.items() for column, p in columns.items()
            if spec.paper_name and spec.paper_name == p["name"] and task != column}  # fmt: skip


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
    per_prompt: Path | None = None,
    sft_metrics: Path | None = None,
    recipe_summary: Path | None = None,
    sft: SFTConfig | None = None,
    recipe_starts: list[str] | None = None,
    recipe_variant: str = "official",
) -> None:
    """The report's tables: paper vs ours, the claims, divergence and proxies by iteration, the SFT
    start; the claims take the recipe ablation's summary when it has run."""
    paper_results = claims.load_paper_results(paper)
    exact_df, proxies_df, scores_df, theory_df = _read(exact), _read(proxies), _read(scores), _read(theory)
    per_prompt_df = pd.read_parquet(per_prompt) if per_prompt and Path(per_prompt).exists() else None
    sft = sft or SFTConfig()
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
    verdicts = claims.claims_table(
        scale, models, exact_df, scores_df, theory_df, paper_results, spin.beta, per_prompt=per_prompt_df,
        start=sft.start, recipes=_read(recipe_summary), recipe_starts=tuple(recipe_starts or SFT_STARTS),
        recipe_variant=recipe_variant, not_run=benchmarks_not_run(evaluation),
        sft_start=sft.mode if sft.mode == "pretrained" else sft.start, bb_alias=bigbench_alias(evaluation, paper_results),
    )  # fmt: skip
    _write_both(verdicts, out_dir, "claims")
    if sft_metrics is not None:
        _write_both(sft_start_table([("main run", 0, sft_metrics)]), out_dir, "sft_start")
    if exact_df is not None:
        _write_both(convergence.seed_bands(exact_df), out_dir, "divergence_by_iteration")
    if proxies_df is not None:
        _write_both(convergence.seed_bands(proxies_df), out_dir, "proxies_by_iteration")
    if exact_df is not None and proxies_df is not None:
        _write_both(convergence.proxy_tracking(exact_df, proxies_df), out_dir, "proxy_tracking")
    if theory_df is not None:
        _write_both(theory_df, out_dir, "theory_overlay")


def sft_start_table(runs: list[tuple[str, int, Path]]) -> pd.DataFrame:
    """How each SFT model came to be: its start, the epochs run, the epoch kept and its held-out NLL
    (nats per response token), from each sft metrics.json."""
    rows = []
    for run, seed, path in runs:
        m = read_json(path)["final"]
        rows.append({"run": run, "seed": seed, "start": m.get("start"), "epochs_run": m.get("epochs_run"),
                     "best_epoch": m.get("best_epoch"), "validation_nll": m.get("validation_nll"),
                     "validation_rows": m.get("validation_rows"),
                     "nll_by_epoch": " ".join(f"{c['validation_nll']:.4f}" for c in m.get("validation_curve", []))})  # fmt: skip
    return pd.DataFrame(rows)


def gather_recipes(
    runs: list[Path], per_prompt: list[Path], sft_metrics: list[Path], out_dir: Path, figure: Path
) -> None:
    """The recipe ablation's tables (per iteration, summary, the SFT models of each start and seed) and
    its figure, from every run's rows and per-prompt KLs."""
    from . import figures  # matplotlib: only the figure commands pay for it

    run_rows, pp = read_tables(runs), read_tables(per_prompt)
    table = recipes.ablation_table(run_rows, pp)
    summary = recipes.ablation_summary(table, pp)
    _write_both(table, Path(out_dir), "recipe_ablation")
    _write_both(summary, Path(out_dir), "recipe_ablation_summary")
    starts = [("recipe ablation", int(Path(p).stem.removeprefix("seed")), p) for p in sft_metrics]
    _write_both(sft_start_table(starts), Path(out_dir), "sft_starts")
    chains = run_rows[run_rows["recipe"] != names.CONTROL]  # the control is not SPIN: no rule stops it
    rules = stopping.stopping_table(chains)
    _write_both(rules, Path(out_dir), "stopping_rules")
    _write_both(stopping.stopping_summary(rules), Path(out_dir), "stopping_summary")
    figures.recipe_ablation(table, figure)
    log.info(
        "recipe ablation: %s",
        summary[["start", "recipe", "metric", "curve", "falls_each_iteration"]].to_dict("records"),
    )


def gather_long_horizon(runs: list[Path], out_dir: Path) -> None:
    """The long chains' table, per iteration over seeds (analysis/long_horizon.py)."""
    table = long_horizon.long_horizon_table(read_tables(runs))
    _write_both(table, Path(out_dir), names.LONG_HORIZON_TABLE)
    log.info("long horizon: %s", table[["model", "forward_kl", "gap", "data_gap"]].round(3).to_dict("records"))


def gather_study(
    study: str, runs: list[Path], per_prompt: list[Path], sft_metrics: list[Path], sft_arms: list[str],
    out_dir: Path, figure: Path,
) -> None:  # fmt: skip
    """A data-size or capacity study's tables (per iteration, summary, its SFT models: sft_arms[i] is
    the arm of sft_metrics[i]) and its figure, from every arm's rows and per-prompt KLs."""
    from . import figures  # matplotlib: only the figure commands pay for it

    if study not in names.STUDY_TABLES:
        raise DataError(f"--study {study!r}: one of {', '.join(names.STUDY_TABLES)}")
    if len(sft_arms) != len(sft_metrics):
        raise DataError(f"{len(sft_arms)} --sft-arms for {len(sft_metrics)} --sft-metrics: one arm per SFT model")
    table_name, summary_name, sft_name = names.STUDY_TABLES[study]
    run_rows, pp = read_tables(runs), read_tables(per_prompt)
    table = studies.study_table(run_rows, pp)
    summary = studies.study_summary(table, pp)
    _write_both(table, Path(out_dir), table_name)
    _write_both(summary, Path(out_dir), summary_name)
    sft_runs = [(arm, int(Path(p).stem.removeprefix("seed")), p) for arm, p in zip(sft_arms, sft_metrics)]
    _write_both(sft_start_table(sft_runs), Path(out_dir), sft_name)
    title = {"data_size": "Data size", "capacity": "Capacity"}[study]
    figures.study(table, figure, f"{title}: the {run_rows['arm'].nunique()} arms of the study")
    log.info("%s: %s", study, summary[["arm", "metric", "curve", "last_minus_sft_ci"]].to_dict("records"))


def write_figures(
    tables: Path,
    out_dir: Path,
    exact: Path | None = None,
    proxies: Path | None = None,
    theory: Path | None = None,
    start: str = "",
) -> None:
    """The report's figures (PNG + SVG); `start` names the SFT start in the divergence figures' titles."""
    from . import figures  # matplotlib: only the figure commands pay for it

    exact_df, proxies_df, theory_df = _read(exact), _read(proxies), _read(theory)
    long = pd.read_csv(Path(tables) / "benchmarks_long.csv")
    figures.benchmarks_vs_iteration(long, out_dir / "benchmarks_vs_iteration.png")
    if theory_df is not None:
        figures.theory_overlay(theory_df, out_dir / "theory_overlay.png")
    if exact_df is not None:
        figures.divergence_vs_iteration(exact_df, out_dir / "divergence_vs_iteration.png", start)
        figures.spin_vs_control(exact_df, out_dir / "spin_vs_sft_continued.png", start)
    if proxies_df is not None:
        figures.proxies_vs_iteration(proxies_df, out_dir / "proxies_vs_iteration.png")
    if exact_df is not None and proxies_df is not None:
        tracking = convergence.proxy_tracking(exact_df, proxies_df)
        figures.proxy_tracking(exact_df, proxies_df, tracking, out_dir / "proxy_tracking.png")


def gather_map(inputs: list[Path], out: Path, heatmap: Path, curves: Path, stopping_dir: Path | None = None) -> None:
    """Gather the convergence-map cells, label each trajectory, write the map table and its figures;
    with stopping_dir, the stopping rules scored on every cell's chain (MAP_STOPPING_TABLES)."""
    from . import figures  # matplotlib: only the figure commands pay for it

    cells = pd.concat([pd.read_csv(p) for p in inputs], ignore_index=True)
    if stopping_dir is not None:
        if "heldout_nll" not in cells:
            raise DataError(
                f"{inputs[0]}: map cells without held-out NLL (made before the stopping rules read them);"
                " rerun them: snakemake convergence_map --forcerun convergence_map_cell"
            )
        rules = stopping.stopping_table(cells, chain_keys=["cell"])
        _write_both(rules, Path(stopping_dir), MAP_STOPPING_TABLES[0])
        _write_both(stopping.stopping_summary(rules), Path(stopping_dir), MAP_STOPPING_TABLES[1])
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
    columns = ["cell", "beta", "learning_rate", "epochs", "label", "label_paired", "final_change", "median_step",
               "predicted_cell", "agrees", "agrees_paired", "margin_factor", "predicted_margin", "agrees_margin",
               "agrees_margin_paired"]  # fmt: skip
    summary = cells.drop_duplicates("cell")[[c for c in columns if c in cells]]
    known = summary[summary.predicted_cell != "unknown"]
    note = f"\nThe realised step predicts the label in {int(known.agrees.sum())} of {len(known)} cells"
    if "agrees_paired" in summary:
        note += f" (the label decided on paired steps: {int(known.agrees_paired.sum())} of {len(known)})"
    note += ".\n"
    if "predicted_margin" in summary:
        known = summary[summary.predicted_margin != "unknown"]
        note += (f"The margin ratio (no p_data needed) predicts the label in {int(known.agrees_margin.sum())} of "
                 f"{len(known)} cells")  # fmt: skip
        if "agrees_margin_paired" in summary:
            note += f" (paired label: {int(known.agrees_margin_paired.sum())} of {len(known)})"
        note += ".\n"
    write_text(Path(out).with_suffix(".md"), claims.to_markdown(summary) + note)
    figures.convergence_map(cells, heatmap, curves)
    log.info("convergence map: %s", summary.to_dict("records"))
