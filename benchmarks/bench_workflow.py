"""CPU and wall time of the tiny-world workflow, in total and by stage, from one run.

Runs `snakemake --cores all` on a config in a scratch directory (or reads an existing run with --from
DIR) and prints:
- `cpu_seconds=<n>`: user + sys CPU of every process the run started (Snakemake and all its jobs,
  counted by the kernel for the finished process tree: resource.getrusage(RUSAGE_CHILDREN));
- `wall_seconds=<n>`: the run's wall-clock time;
- `startup_share=<f>`: of the CPU of the jobs' stage processes, the share spent before each job's first
  useful work: before its stage function started, plus every import it ran (spin_core/cli/startup.py,
  switched on by SPIN_REPRO_STARTUP=1 for the run; each job logs `startup_cpu=.. total_cpu=..`, summed
  here over logs/**/*.log);
- per stage, the jobs and their wall and CPU seconds from Snakemake's own benchmark files
  (results/benchmarks/**/*.tsv; jobs without one, a second or two each, are in the total only).
Stages run in parallel on 2 cores, so the per-stage wall sums add up to more than the total.

    python benchmarks/bench_workflow.py [--configfile config/config.yaml [OVERLAY...]] [--from DIR] [--keep]

Several config files merge as Snakemake merges them. The paper-path rehearsal needs its local assets
and a judge (or MT-Bench off):

    spin-repro rehearsal-assets --out /tmp/rehearsal
    printf 'evaluation: {mt_bench: {enabled: false}}\n' > /tmp/no-judge.yaml
    python benchmarks/bench_workflow.py --configfile config/rehearsal.yaml /tmp/rehearsal/paths.yaml /tmp/no-judge.yaml
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from spin_core.cli.startup import ENV as STARTUP_ENV  # noqa: E402
from spin_core.cli.startup import parse_line  # noqa: E402

# Benchmark files of per-model stages sit in a folder of the stage's name; the others are named
# <rule>_<model or iteration>.tsv.
STAGE_PATTERN = re.compile(r"^(.*?)(_(sft|iter\d+|seed\d+|sft_continued)(_.*)?)?$")


def stage_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else STAGE_PATTERN.match(path.stem).group(1)


def summarise(workdir: Path) -> dict[str, list]:
    """stage -> [jobs, wall seconds, CPU seconds] from Snakemake's benchmark files."""
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    root = workdir / "results" / "benchmarks"
    for f in sorted(root.rglob("*.tsv")):
        header, values = (line.split("\t") for line in f.read_text().splitlines()[:2])
        row = dict(zip(header, values))
        entry = totals[stage_of(f, root)]
        entry[0] += 1
        entry[1] += float(row["s"])
        entry[2] += float(row.get("cpu_time") or 0.0)
    return dict(totals)


def total_jobs(workdir: Path) -> int | None:
    """The job count of the newest Snakemake run in workdir ("N of M steps" in its log)."""
    for log in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True):
        steps = re.findall(r"\d+ of (\d+) steps", log.read_text())
        if steps:
            return int(steps[-1])
    return None


def startup_totals(workdir: Path) -> tuple[float, float, int]:
    """(start-up CPU, total CPU, jobs) summed over the `startup_cpu=` lines of the run's job logs (the
    last line of each log: a rerun appends to nothing, tee rewrites the log)."""
    startup = total = 0.0
    jobs = 0
    for log in sorted((workdir / "logs").rglob("*.log")):
        found = [p for p in map(parse_line, log.read_text(errors="replace").splitlines()) if p is not None]
        if found:
            startup, total, jobs = startup + found[-1][0], total + found[-1][1], jobs + 1
    return startup, total, jobs


def run(configfiles: list[str], workdir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree) of one workflow run, its jobs timing their
    start-up (spin_core/cli/startup.py)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", *configfiles, "--cores", "all", "--quiet", "rules", "host"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, STARTUP_ENV: "1"})
    if done.returncode != 0:
        # Snakemake has said what failed above; nothing is measured from a partial run.
        sys.exit(f"bench_workflow: the workflow failed (exit {done.returncode}); its run directory, kept: {workdir}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--configfile",
        nargs="+",
        default=[str(ROOT / "config" / "config.yaml")],
        help="config files, merged in order (default: config/config.yaml)",
    )
    ap.add_argument("--from", dest="existing", help="summarise an existing run directory instead of running")
    ap.add_argument("--keep", action="store_true", help="keep the scratch run directory")
    a = ap.parse_args()
    wall = cpu = None
    if a.existing:
        workdir = Path(a.existing)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench_workflow_"))
        wall, cpu = run(a.configfile, workdir)
    stages = summarise(workdir)
    print(f"{'stage':18s} {'jobs':>5s} {'wall s':>9s} {'CPU s':>9s}")
    for stage, (n, s, c) in sorted(stages.items(), key=lambda kv: -kv[1][2]):
        print(f"{stage:18s} {n:5d} {s:9.1f} {c:9.1f}")
    n_benchmarked = sum(v[0] for v in stages.values())
    print(f"{'benchmarked jobs':18s} {n_benchmarked:5d} {sum(v[1] for v in stages.values()):9.1f} "
          f"{sum(v[2] for v in stages.values()):9.1f}")  # fmt: skip
    total = total_jobs(workdir)
    if total is not None:
        print(f"jobs in the run: {total} ({total - n_benchmarked} short ones without a benchmark file)")
    startup, job_cpu, timed = startup_totals(workdir)
    if timed:
        print(f"start-up: {startup:.1f} of {job_cpu:.1f} CPU s in the {timed} jobs that timed it")
        print(f"startup_share={startup / job_cpu:.3f}")
    else:
        print(f"startup_share=unknown (no job log in {workdir}/logs has a startup_cpu= line: run without --from)")
    if wall is not None:
        print(f"cpu_seconds={cpu:.1f}")
        print(f"wall_seconds={wall:.1f}")
        print(f"run directory: {workdir}" if a.keep else "")
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
