"""How much of a job's CPU goes to starting it (benchmarks/bench_workflow.py's startup_share).

With SPIN_REPRO_STARTUP=1 in its environment, a stage's command line counts as start-up the CPU its
process spent before the stage function began (the interpreter, our imports, argument and config
parsing) plus the CPU of every import the stage then runs (torch, transformers, lm-eval are imported
where they are first needed), each timed around the outermost `import` statement or
importlib.import_module call, so a nested import is counted once. At exit it logs one line,
`startup_cpu=<s> total_cpu=<s>` (CPU seconds of this process, user + sys; a process it launches, such
as accelerate's workers, is not in either). Without the variable nothing is timed.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import os
import time

ENV = "SPIN_REPRO_STARTUP"
MARK = "startup_cpu="


class ImportClock:
    """CPU seconds spent inside imports since install(), outermost calls only."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def _timed(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - t0
                self._depth -= 1

        return wrapper

    def install(self) -> None:
        builtins.__import__ = self._timed(builtins.__import__)
        importlib.import_module = self._timed(importlib.import_module)


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def start() -> tuple[float, ImportClock]:
    """The CPU this process has used so far (everything before the stage) and a running import clock."""
    clock = ImportClock()
    clock.install()
    return time.process_time(), clock


def report_line(before_stage: float, clock: ImportClock) -> str:
    return f"{MARK}{before_stage + clock.seconds:.3f} total_cpu={time.process_time():.3f}"


def parse_line(line: str) -> tuple[float, float] | None:
    """(startup, total) CPU seconds from a log line that holds report_line's output, else None."""
    at = line.find(MARK)
    if at < 0:
        return None
    fields = dict(part.split("=", 1) for part in line[at:].split() if "=" in part)
    try:
        return float(fields["startup_cpu"]), float(fields["total_cpu"])
    except (KeyError, ValueError):
        return None
