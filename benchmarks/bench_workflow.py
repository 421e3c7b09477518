"""Wall time of each stage of the tiny-world workflow, and the total, from one run.

Runs `snakemake --cores all` in a scratch directory (or reads an existing run with --from DIR) and
sums Snakemake's own per-job benchmark files (results/benchmarks/**/*.tsv) by stage. Stages run in
parallel on 2 cores, so the per-stage sums add up to more than the wall-clock total. Jobs without a
benchmark file (world, data, tables, figures: a second or two each) are counted from Snakemake's
run log.

    python benchmarks/bench_workflow.py [--configfile config/config.yaml] [--from DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage_of(name: str) -> str:
    for stage in (
        "sft_continued",
        "eval_leaderboard",
        "eval_bigbench",
        "mt_bench_answer",
        "mt_bench_judge",
        "divergence",
        "generate",
        "reference",
        "train",
        "sft",
    ):
        if name.startswith(stage):
            return stage
    return re.sub(r"_.*", "", name)


def summarise(workdir: Path) -> dict[str, tuple[int, float]]:
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    root = workdir / "results" / "benchmarks"
    for f in sorted(root.rglob("*.tsv")):
        seconds = float(f.read_text().splitlines()[1].split("\t")[0])
        # Per-model stages keep their files in a folder of the stage's name.
        parts = f.relative_to(root).parts
        entry = totals[parts[0] if len(parts) > 1 else stage_of(f.stem)]
        entry[0] += 1
        entry[1] += seconds
    return {k: (v[0], v[1]) for k, v in totals.items()}


def total_jobs(workdir: Path) -> int | None:
    """The job count of the newest Snakemake run in workdir ("N of M steps" in its log)."""
    for log in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True):
        steps = re.findall(r"\d+ of (\d+) steps", log.read_text())
        if steps:
            return int(steps[-1])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--from", dest="existing", help="summarise an existing run directory instead of running")
    a = ap.parse_args()
    wall = None
    if a.existing:
        workdir = Path(a.existing)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench_workflow_"))
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            a.configfile,
            "--cores",
            "all",
            "--quiet",  # progress lines only ("N of M steps done"); the run log keeps them
            "rules",
            "host",
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        wall = time.perf_counter() - t0
    stages = summarise(workdir)
    print(f"{'stage':18s} {'jobs':>5s} {'job seconds':>12s}")
    for stage, (n, s) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
        print(f"{stage:18s} {n:5d} {s:12.1f}")
    n_benchmarked = sum(n for n, _ in stages.values())
    print(f"{'sum of jobs':18s} {n_benchmarked:5d} {sum(s for _, s in stages.values()):12.1f}")
    total = total_jobs(workdir)
    if total is not None:
        print(f"jobs in the run: {total} ({total - n_benchmarked} short ones without a benchmark file)")
    if wall is not None:
        print(f"workflow wall time: {wall:.1f} s ({workdir})")


if __name__ == "__main__":
    main()
