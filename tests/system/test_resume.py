"""Kill the workflow (SIGKILL, whole process group) during an iteration's training, rerun the same
command (after `--unlock`, as Snakemake asks): finished jobs are not re-run, the killed job's finished
steps are restored rather than redone, training resumes from its checkpoint, nothing is half-written."""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers.workflow import (
    MICRO,
    TEMP_GLOB,
    check_no_partial_outputs,
    declared_outputs,
    snakemake_cmd,
    start_snakemake,
    workflow_env,
)

# The evaluation fan-out and the extra convergence chains are covered by the end-to-end test;
# here they would only add minutes.
# Iteration 1 trains for 20 epochs (480 steps, a few seconds; spin.per_iteration) so the kill lands
# mid-training: micro's 48 steps take well under a second and could finish between two polls.
# Three iterations: the one killed, one before it and one after it.
NO_EVAL_YAML = (
    "iterations: [0, 1, 2]\n"
    "evaluation: {enabled: false}\n"
    "convergence: {seeds: 1, control: {enabled: false}}\n"
    "spin: {save_steps: 20, per_iteration: {1: {num_train_epochs: 20}}}\n"
)


def wait_for(predicate, timeout: float, proc) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def unlock_and_rerun(tmp_path, configs) -> subprocess.CompletedProcess:
    """What Snakemake asks after a stop: `--unlock`, then the same command again (which must succeed)."""
    unlock = subprocess.run(
        snakemake_cmd(tmp_path, "--unlock", configfile=configs), env=workflow_env(), capture_output=True, text=True
    )
    assert unlock.returncode == 0, unlock.stderr
    rerun = subprocess.run(
        snakemake_cmd(tmp_path, configfile=configs), env=workflow_env(), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
    return rerun


def signal_snakemake_during_training(tmp_path, sig):
    """Two iterations; `sig` to the snakemake process alone once iteration 1's training has saved a
    checkpoint. Returns (config files, iteration 1's checkpoint folder, exit code, the run's log)."""
    (tmp_path / "no_eval.yaml").write_text(NO_EVAL_YAML.replace("[0, 1, 2]", "[0, 1]"))
    configs = [MICRO, tmp_path / "no_eval.yaml"]
    ckpt_dir = tmp_path / "work" / "train" / "iter1"
    with open(tmp_path / "first_run.log", "w") as log:
        proc = start_snakemake(tmp_path, configs, log)
        try:
            reached = wait_for(lambda: any(ckpt_dir.glob("checkpoint-*/trainer_state.json")), timeout=400, proc=proc)
            assert reached, (tmp_path / "first_run.log").read_text()[-3000:]
            os.kill(proc.pid, sig)
            returncode = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return configs, ckpt_dir, returncode, (tmp_path / "first_run.log").read_text()


@pytest.mark.slow
def test_kill_during_training_then_rerun_resumes(tmp_path):
    (tmp_path / "no_eval.yaml").write_text(NO_EVAL_YAML)
    configs = [MICRO, tmp_path / "no_eval.yaml"]
    log = open(tmp_path / "first_run.log", "w")
    proc = start_snakemake(tmp_path, configs, log)
    ckpt_dir = tmp_path / "work" / "train" / "iter1"
    try:
        reached = wait_for(
            lambda: ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*/trainer_state.json")), timeout=400, proc=proc
        )
        assert reached, (tmp_path / "first_run.log").read_text()[-3000:]
        time.sleep(0.3)  # let training go on past the checkpoint, into unsaved steps
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert not (tmp_path / "models" / "iter1").exists(), "iter1 finished before the kill: test did not interrupt"

    # Nothing present is half-written: every file parses, every model dir is complete.
    check_no_partial_outputs(tmp_path)

    finished = [
        "models/sft/config.json",
        "models/sft/model.safetensors",
        "models/iter0/model.safetensors",
        "data/pairs/pairs_iter0.parquet",
        "data/generated/iter0/shard0-of-1.parquet",
        "data/generated/iter1/shard0-of-1.parquet",
        "data/pairs/pairs_iter1.parquet",
        "results/train/iter0/metrics.json",
        "results/divergence/exact/iter0.csv",
    ]
    # At the tiny scale a chain is one job (rules/spin_chain.smk), which Snakemake reruns whole after a
    # kill, having deleted its outputs; every finished step was stashed, so the rerun links it back:
    # the same file (inode) and bytes, not a recomputation. The killed training resumes from its checkpoint.
    before = {rel: ((tmp_path / rel).stat().st_ino, (tmp_path / rel).read_bytes()) for rel in finished}

    # A SIGKILL leaves Snakemake's directory lock behind; Snakemake's own remedy is --unlock.
    rerun = unlock_and_rerun(tmp_path, configs)
    out = rerun.stdout + rerun.stderr
    for rel, (inode, content) in before.items():
        assert (tmp_path / rel).stat().st_ino == inode, f"{rel} was redone"
        assert (tmp_path / rel).read_bytes() == content, rel
    assert "rule world:" not in out and "rule data:" not in out
    log = (tmp_path / "logs" / "spin_chain" / "main.log").read_text()
    for k, step in enumerate(["sft", "divergence-model", "generate-shards", "reference", "train", "divergence-model",
                              "generate-shards", "reference"], 1):  # fmt: skip
        assert f"step {k}/14: {step} finished in an earlier run of this job" in log, log[-3000:]
    assert "step 9/14: train finished in an earlier run" not in log and "step 9/14: train" in log
    assert "resuming from checkpoint" in log
    for rel in declared_outputs(iterations=(0, 1, 2), evaluation=False):
        assert (tmp_path / rel).exists(), rel
    check_no_partial_outputs(tmp_path)
    assert not list(tmp_path.glob("**/" + TEMP_GLOB)), "temp files left behind"


@pytest.mark.slow
def test_sigint_to_snakemake_alone_stops_the_running_training(tmp_path):
    """SIGINT reaching only the snakemake process (`kill -INT`, not a terminal's Ctrl-C, which reaches
    every job): the workflow passes it on, so the running training job stops as with Ctrl-C instead of
    training on unseen. The rerun resumes from the job's last checkpoint and finishes."""
    configs, ckpt_dir, _, first = signal_snakemake_during_training(tmp_path, signal.SIGINT)
    assert "no job failed" in first and "did not complete successfully" not in first, first[-2000:]
    # The chain's job logs every step: iteration 0's training finished; iteration 1's (step 9 of 10,
    # the one interrupted) must not have.
    first_log = (tmp_path / "logs" / "spin_chain" / "main.log").read_text()
    assert "step 9/10: train\n" in first_log, first_log[-3000:]
    interrupted = first_log.split("step 9/10: train\n", 1)[1]
    assert "train: final" not in interrupted and "step 9/10: train done" not in interrupted, (
        "the training step ran on after the SIGINT"
    )
    alive = _training_processes(tmp_path)
    assert not alive, alive
    assert not (tmp_path / "models" / "iter1").exists()
    steps = sorted(int(p.name.removeprefix("checkpoint-")) for p in ckpt_dir.glob("checkpoint-*"))
    last_step = json.loads(sorted(ckpt_dir.glob("checkpoint-*/trainer_state.json"))[-1].read_text())["max_steps"]
    assert steps and steps[-1] < last_step

    unlock_and_rerun(tmp_path, configs)
    train_log = (tmp_path / "logs" / "spin_chain" / "main.log").read_text()
    assert f"resuming from checkpoint {ckpt_dir.relative_to(tmp_path)}/checkpoint-{steps[-1]}" in train_log, train_log
    assert (tmp_path / "models" / "iter1" / "config.json").exists()
    # The run succeeded: its checkpoints are released.
    assert not list((tmp_path / "work" / "train").glob("*/checkpoint-*"))


def _training_processes(workdir) -> list[str]:
    """Command lines of stage processes (a training, or a chain's `steps`) still running in `workdir`."""
    import psutil

    time.sleep(2.0)  # a stopped job's processes are gone within moments
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "spin_core.cli" in cmd and p.info["cwd"] == str(workdir):
            found.append(cmd)
    return found


@pytest.mark.slow
def test_sigterm_to_snakemake_says_no_job_failed_and_keeps_the_running_job(tmp_path):
    """SIGTERM (what a cluster or systemd sends): Snakemake lets the running job finish, keeps it and
    starts no other. Its own last words were "At least one job did not complete successfully"."""
    configs, _, returncode, first = signal_snakemake_during_training(tmp_path, signal.SIGTERM)
    assert returncode == 1
    assert "no job failed" in first and "did not complete successfully" not in first, first[-2000:]
    assert "Will exit after finishing currently running jobs" in first
    dry = subprocess.run(
        snakemake_cmd(tmp_path, "-n", configfile=configs), env=workflow_env(), capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    # the chain's job (iteration 1's training, then its measures) finished and was kept; no later job started
    assert "rule spin_chain:" not in dry.stdout and "rule divergence_table:" in dry.stdout, dry.stdout[-3000:]
