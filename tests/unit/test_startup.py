"""The start-up clock of benchmarks/bench_workflow.py: imports timed once each (outermost call), the
line every stage logs with SPIN_REPRO_STARTUP=1, and its sum over a run's logs."""

import os
import subprocess
import sys
import time
from pathlib import Path

from spin_core.cli.startup import ENV, ImportClock, parse_line

ROOT = Path(__file__).resolve().parents[2]


def test_import_clock_counts_nested_imports_once(tmp_path, monkeypatch):
    """A module that burns ~0.2 CPU s importing one that burns ~0.2 more: 0.4 s in all, not 0.6."""
    burn = "import time\nt0 = time.process_time()\nwhile time.process_time() - t0 < 0.2:\n    pass\n"
    (tmp_path / "startup_inner_mod.py").write_text(burn)
    (tmp_path / "startup_outer_mod.py").write_text("import startup_inner_mod\n" + burn)
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins
    import importlib

    monkeypatch.setattr(builtins, "__import__", builtins.__import__)
    monkeypatch.setattr(importlib, "import_module", importlib.import_module)
    clock = ImportClock()
    clock.install()
    t0 = time.process_time()
    importlib.import_module("startup_outer_mod")
    spent = time.process_time() - t0
    assert 0.38 < clock.seconds <= spent + 1e-6 and spent < 0.55


def test_a_stage_logs_its_startup_only_when_asked():
    cmd = [sys.executable, "-m", "spin_core.cli", "validate", str(ROOT / "config" / "config.yaml")]
    quiet = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, ENV: "0"})
    assert quiet.returncode == 0 and "startup_cpu=" not in quiet.stderr
    timed = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, ENV: "1"})
    assert timed.returncode == 0
    found = [p for p in map(parse_line, timed.stderr.splitlines()) if p]
    assert len(found) == 1
    startup, total = found[0]
    assert 0 < startup <= total


def test_bench_workflow_sums_the_last_line_of_each_job_log(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_workflow import startup_totals

    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "train" / "iter0.log").write_text(
        "12:00:00 INFO spin_core: train startup_cpu=9.000 total_cpu=10.000\n"
        "12:00:01 INFO spin_core: train startup_cpu=3.000 total_cpu=4.000\n"
    )
    (tmp_path / "logs" / "world.log").write_text("12:00:00 INFO spin_core: world startup_cpu=1.5 total_cpu=2.5\n")
    (tmp_path / "logs" / "other.log").write_text("no timing here\n")
    assert startup_totals(tmp_path) == (4.5, 6.5, 2)
    assert parse_line("x startup_cpu=abc total_cpu=1") is None
