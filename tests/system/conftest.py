"""Shared by the system tests: one end-to-end run of the micro workflow (every stage, evaluation and
the convergence study included) in a working directory whose path contains a space."""

import pytest

from tests.helpers.workflow import run_snakemake


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("micro run")
    # 7.5 min alone on a slow 2-core machine of our kind (they differ about 2x), and the other pytest-xdist
    # worker competes for the cores: a generous limit, so the slow machine does not fail the suite.
    proc = run_snakemake(workdir, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return workdir
