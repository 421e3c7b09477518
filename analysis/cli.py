"""Report stage: `python -m analysis.cli tables|figures|map ...` (rules/report.smk calls these)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

from spin_core.cli import run_command
from spin_core.io import write_table, write_text

from . import claims, convergence

log = logging.getLogger("analysis")


def _read(path: str | None) -> pd.DataFrame | None:
    return pd.read_csv(path) if path and Path(path).exists() else None


def _write_both(df: pd.DataFrame, out_dir: Path, name: str) -> None:
    write_table(out_dir / f"{name}.csv", df)
    write_text(out_dir / f"{name}.md", claims.to_markdown(df))
    log.info("wrote %s/%s.{csv,md} (%d rows)", out_dir, name, len(df))


def cmd_tables(a) -> None:
    p = json.loads(a.params)
    out = Path(a.out_dir)
    paper = claims.load_paper_results(a.paper)
    exact, proxies, scores, theory = _read(a.exact), _read(a.proxies), _read(a.scores), _read(a.theory)
    _write_both(claims.benchmark_table(scores, paper, p["scale"]), out, "benchmarks_paper_vs_ours")
    models = ["sft"] + [f"iter{t}" for t in p["iterations"]]
    beta = float(p["spin"]["beta"])
    _write_both(claims.claims_table(p["scale"], models, exact, scores, theory, paper, beta), out, "claims")
    if exact is not None:
        _write_both(convergence.seed_bands(exact), out, "divergence_by_iteration")
    if proxies is not None:
        _write_both(convergence.seed_bands(proxies), out, "proxies_by_iteration")
    if exact is not None and proxies is not None:
        _write_both(convergence.proxy_tracking(exact, proxies), out, "proxy_tracking")
    if theory is not None:
        _write_both(theory, out, "theory_overlay")


def cmd_figures(a) -> None:
    from . import figures

    out = Path(a.out_dir)
    exact, proxies, theory = _read(a.exact), _read(a.proxies), _read(a.theory)
    table = pd.read_csv(Path(a.tables) / "benchmarks_paper_vs_ours.csv")
    figures.benchmarks_vs_iteration(table, out / "benchmarks_vs_iteration.png")
    if theory is not None:
        figures.theory_overlay(theory, out / "theory_overlay.png")
    if exact is not None:
        figures.divergence_vs_iteration(exact, out / "divergence_vs_iteration.png")
        figures.spin_vs_control(exact, out / "spin_vs_sft_continued.png")
    if proxies is not None:
        figures.proxies_vs_iteration(proxies, out / "proxies_vs_iteration.png")
    if exact is not None and proxies is not None:
        figures.proxy_tracking(exact, proxies, convergence.proxy_tracking(exact, proxies), out / "proxy_tracking.png")


def cmd_map(a) -> None:
    """Gather the cells, label each trajectory, write the map table and its two figures."""
    from . import figures

    cells = pd.concat([pd.read_csv(p) for p in a.inputs], ignore_index=True)
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
    write_table(a.out, cells)
    summary = cells.drop_duplicates("cell")[["cell", "beta", "learning_rate", "epochs", "label", "final_change"]]
    write_text(Path(a.out).with_suffix(".md"), claims.to_markdown(summary))
    figures.convergence_map(cells, a.heatmap, a.curves)
    log.info("convergence map: %s", summary.to_dict("records"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="analysis", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("tables")
    s.add_argument("--params", required=True, help="JSON: scale, iterations, spin")
    s.add_argument("--paper", required=True)
    s.add_argument("--exact")
    s.add_argument("--proxies")
    s.add_argument("--scores")
    s.add_argument("--theory")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(fn=cmd_tables)
    s = sub.add_parser("figures")
    s.add_argument("--tables", required=True)
    s.add_argument("--exact")
    s.add_argument("--proxies")
    s.add_argument("--theory")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(fn=cmd_figures)
    s = sub.add_parser("map")
    s.add_argument("--inputs", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--heatmap", required=True)
    s.add_argument("--curves", required=True)
    s.set_defaults(fn=cmd_map)
    return ap


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
