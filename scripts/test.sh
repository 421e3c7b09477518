#!/usr/bin/env bash
# Command 2 of the README: install, lint, then the whole test suite (offline; ~10-12 minutes on 2 cores).
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not slow"` for the fast subset).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check spin_core analysis tests benchmarks scripts && ruff format --check spin_core analysis tests benchmarks scripts || exit 1
# Three workers (pytest-xdist) on the two cores, a file's tests in one of them, the long files first
# (tests/conftest.py), each process computing on one thread: with two, a core idles whenever a test
# waits (on sbatch, on a kill's timing); 904 s on two workers and 853 s on three on one machine,
# 660 and 644 s on another (#26, README Performance). PYTEST_WORKERS=0 runs in one process.
# --durations=15: every run ends with the 15 slowest tests, and tests/conftest.py adds the 15 using the
# most CPU (theirs and their child processes'), so the next person sees where the time goes.
python -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder --durations=15 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
