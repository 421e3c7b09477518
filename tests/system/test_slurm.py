"""The SLURM profile against a real (single-node, localhost) SLURM cluster: the micro workflow
submitted through snakemake-executor-plugin-slurm must go through sbatch and produce the same
results as a local run. Skips, saying why, where the cluster cannot start (no slurm-wlm/munge,
not root). Without accounting, job status comes from squeue (--slurm-status-command squeue)."""

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers.slurm_cluster import ClusterUnavailable, start_cluster, stop_cluster
from tests.helpers.workflow import MICRO, ROOT, snakemake_cmd, workflow_env

# One iteration, no evaluation, one chain, up to the divergence tables: every kind of job of the tiny
# world's SPIN chain (world, data, the chain's job: its SFT model, one iteration, their measures) and
# the tables (5 jobs). A job costs about 14 s through sbatch here (the plugin's job step parses the
# workflow again), so each one counts.
SMALL = "iterations: [0]\nevaluation: {enabled: false}\nconvergence: {seeds: 1, control: {enabled: false}}\n"
TARGETS = ["results/divergence/exact.csv", "results/divergence/proxies.csv"]
SUBMITTED_RULES = ["world", "data", "spin_chain", "divergence_table", "divergence_table"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    try:
        c = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as e:
        pytest.skip(f"no local SLURM cluster: {e}")
    yield c
    stop_cluster(c)
    assert all(p.poll() is not None for p in c.procs), "a daemon outlived the test"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_slurm_profile_runs_the_workflow_through_sbatch(cluster, tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text(SMALL)
    local, remote = tmp_path / "local", tmp_path / "slurm"
    # The local run to compare with goes on beside the cluster run, which mostly waits on sbatch.
    local_log = open(tmp_path / "local.log", "w")
    local_run = subprocess.Popen(
        snakemake_cmd(local, *TARGETS, configfile=[MICRO, small]),
        env=workflow_env(),
        stdout=local_log,
        stderr=local_log,
    )

    cmd = [
        sys.executable, "-m", "snakemake", *TARGETS, "-s", str(ROOT / "Snakefile"), "--directory", str(remote),
        "--configfile", str(MICRO), str(small),
        "--profile", str(ROOT / "profiles" / "slurm"),
        # this test cluster: no accounting (status from squeue), no account, small node, fast polls
        "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2", "--latency-wait", "5", "--jobs", "2",
        "--default-resources", "mem_mb=1000", "runtime=10",
        # the profile asks 8 CPUs for the data rule (paper scale); this node has 2
        "--set-resources", "data:cpus_per_task=1",
    ]  # fmt: skip
    env = {**workflow_env(), **{"SLURM_CONF": cluster.env["SLURM_CONF"]}}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    assert local_run.wait(timeout=600) == 0, (tmp_path / "local.log").read_text()[-3000:]

    # Every job went through sbatch: the plugin logs the SLURM job id of each submission, and
    # slurmctld still lists them (MinJobAge 10 min) as COMPLETED.
    submitted = [line for line in out.splitlines() if "has been submitted with SLURM jobid" in line]
    queue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%T"], env=cluster.env, capture_output=True, text=True)
    states = queue.stdout.split()
    rules = [re.search(r"slurm_logs/rule_(\w+)/", line).group(1) for line in submitted]
    assert sorted(rules) == sorted(SUBMITTED_RULES), rules
    assert states.count("COMPLETED") >= len(submitted), (len(submitted), states)

    # Same results as the local run.
    for rel in ("results/divergence/exact.csv", "results/divergence/proxies.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(local / rel), pd.read_csv(remote / rel))
    for t in (0,):
        a = pd.read_parquet(local / f"data/pairs/pairs_iter{t}.parquet")
        b = pd.read_parquet(remote / f"data/pairs/pairs_iter{t}.parquet")
        cols = ["prompt_id", "ref_logp_real", "ref_logp_generated"]
        pd.testing.assert_frame_equal(a[cols], b[cols])
        assert (a["generated"].astype(str) == b["generated"].astype(str)).all()
        ma = json.loads((local / f"results/train/iter{t}/metrics.json").read_text())["final"]
        mb = json.loads((remote / f"results/train/iter{t}/metrics.json").read_text())["final"]
        assert ma == mb
    assert "SLURM_CONF" not in os.environ  # the cluster's config never leaks into other tests
