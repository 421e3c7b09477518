"""SIGKILL the whole workflow at a random moment inside each stage in turn (one workdir, each run
resuming the previous one): after every kill nothing under a final name is half-written, the
rerun plans only jobs whose outputs are missing or incomplete (or that depend on those), and the
last rerun finishes with every declared output. Plus: same seed and config give identical pairs
and training metrics (determinism on CPU)."""

import base64
import json
import os
import random
import re
import signal
import subprocess
import time

import pandas as pd
import pytest

from tests.helpers.workflow import (
    MICRO,
    check_no_partial_outputs,
    snakemake_cmd,
    start_snakemake,
    temps_left,
    workflow_env,
)

SMALL = "iterations: [0, 1]\nevaluation: {enabled: false}\nconvergence: {seeds: 1, control: {enabled: false}}\n"
# In DAG order; each is killed at a random point after it starts: at the tiny scale a SPIN chain is one
# job (its SFT model, then two iterations: 10 steps), whose `spin-repro steps` logs "step k/n:
# <command>" as a step starts (a step restored from an earlier run says so after the name, so it does
# not match: the kill lands in the first step of that stage this run computes, of either iteration);
# the figures are a rule's job.
STAGES = {
    "sft": r"step \d+/10: sft$",
    "generate": r"step \d+/10: generate-shards$",
    "reference": r"step \d+/10: reference$",
    "train": r"step \d+/10: train$",
    "divergence": r"step \d+/10: divergence-model$",
    "figures": r"^(local)?rule figures:",
}
# Why Snakemake may plan a job after a kill: its own outputs are missing/incomplete, or an input
# is being remade. Anything else (params, code, mtime of finished inputs) would be redoing
# finished work.
ALLOWED_REASONS = ("Missing output files", "Incomplete output files", "Input files updated by another job")


def run_until_stage(workdir, configs, stage, delay, log_path):
    """Start the workflow; once `stage` has started (STAGES), wait `delay` s and SIGKILL the
    process group. Returns True if it killed, False if the run ended first."""
    with open(log_path, "w") as log:
        proc = start_snakemake(workdir, configs, log)
        pattern = re.compile(STAGES[stage], re.M)
        end = time.time() + 600
        while time.time() < end and proc.poll() is None:
            if pattern.search(log_path.read_text()):
                time.sleep(delay)
                break
            time.sleep(0.05)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return killed


def incomplete_marked(workdir) -> set[str]:
    """Outputs Snakemake marked incomplete (a job was killed while making them): file names in
    .snakemake/incomplete are the base64 of the output path."""
    marks = workdir / ".snakemake" / "incomplete"
    return {base64.b64decode(p.name).decode() for p in marks.iterdir()} if marks.is_dir() else set()


def planned_reasons(workdir, configs) -> list[str]:
    """Why each job of the rerun's plan runs. With rerun-incomplete (profiles/default) a job whose
    outputs are marked incomplete is planned as 'Forced execution': reported as incomplete here.
    `all` is the target pseudo-rule (no outputs, always planned) and is left out."""
    unlock = subprocess.run(
        snakemake_cmd(workdir, "--unlock", configfile=configs), env=workflow_env(), capture_output=True
    )
    assert unlock.returncode == 0
    dry = subprocess.run(
        snakemake_cmd(workdir, "-n", configfile=configs),
        env=workflow_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    incomplete = incomplete_marked(workdir)
    reasons, rule, outputs = [], None, []
    for line in (dry.stdout + dry.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule, outputs = m.group(1), []
        elif m := re.match(r"^\s+output: (.*)$", line):
            outputs = m.group(1).split(", ")
        elif (m := re.match(r"^\s+reason: (.*)$", line)) and rule != "all":
            reason = m.group(1)
            if reason == "Forced execution" and incomplete & set(outputs):
                reason = "Incomplete output files (rerun-incomplete)"
            reasons.append(reason)
    return reasons


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_kill_at_random_points_in_every_stage_then_resume(tmp_path):
    seed = int(os.environ.get("SPIN_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    print(f"kill delays drawn with SPIN_KILL_SEED={seed}")
    (tmp_path / "small.yaml").write_text(SMALL)
    configs = [MICRO, tmp_path / "small.yaml"]
    workdir = tmp_path / "wd"
    killed_in = []
    for i, stage in enumerate(STAGES):
        # A step of the chain's job computes for 0.2-1 s (the process has started, its imports mostly
        # done): a delay within half a second lands inside the step or just after it.
        delay = rng.uniform(0.0, 0.5)
        if run_until_stage(workdir, configs, stage, delay, tmp_path / f"run{i}_{stage}.log"):
            killed_in.append((stage, round(delay, 2)))
        check_no_partial_outputs(workdir)
        for reason in planned_reasons(workdir, configs):
            assert reason.startswith(ALLOWED_REASONS), f"after a kill in {stage}: job planned because {reason!r}"
    assert len(killed_in) >= 5, killed_in  # the kills really landed inside most stages

    final = subprocess.run(
        snakemake_cmd(workdir, configfile=configs), env=workflow_env(), capture_output=True, text=True, timeout=900
    )
    assert final.returncode == 0, (final.stdout + final.stderr)[-4000:]
    check_no_partial_outputs(workdir)
    # A kill mid-write leaves a temp beside its output; the write that finally made the output removed it.
    assert temps_left(workdir) == [], (temps_left(workdir), killed_in)
    for rel in (
        "results/divergence/exact.csv",
        "results/divergence/proxies.csv",
        "results/tables/claims.csv",
        "results/figures/divergence_vs_iteration.png",
        "models/iter1/model.safetensors",
    ):
        assert (workdir / rel).exists(), rel
    nothing = subprocess.run(
        snakemake_cmd(workdir, "-n", configfile=configs), env=workflow_env(), capture_output=True, text=True
    )
    assert "Nothing to be done" in nothing.stdout + nothing.stderr


def test_same_seed_same_config_gives_identical_pairs_and_metrics(tmp_path, world, tokenizer, tiny_model):
    from spin_core.config import EncodingConfig, GenerateConfig, SpinConfig
    from spin_core.generate.pairs import generate_shard
    from spin_core.io import write_jsonl
    from spin_core.modeling import save_model
    from spin_core.train.reference import reference_pass
    from spin_core.train.spin import train_spin
    from spin_core.world.sft_data import make_tiny_sft_data

    train, _ = make_tiny_sft_data(world, 48, 1, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    gen = GenerateConfig(max_new_tokens=16, batch_size=16, seed=7)
    spin = SpinConfig(learning_rate=1e-3, num_train_epochs=1, per_device_train_batch_size=8, max_length=48,
                      max_prompt_length=12, logging_steps=2, save_steps=100, seed=7)  # fmt: skip
    runs = []
    for r in ("a", "b"):
        d = tmp_path / r
        generate_shard(gen, spin.view(EncodingConfig), tmp_path / "sft", tmp_path / "train.jsonl", d / "gen.parquet", 0)
        reference_pass(spin, [d / "gen.parquet"], tmp_path / "sft", d / "pairs.parquet")
        train_spin(spin, d / "pairs.parquet", tmp_path / "sft", d / "model", d / "ck", d / "metrics.json")
        runs.append(d)
    a, b = (pd.read_parquet(d / "pairs.parquet") for d in runs)
    assert (a["generated"].astype(str) == b["generated"].astype(str)).all()
    pd.testing.assert_series_equal(a["ref_logp_generated"], b["ref_logp_generated"])
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in runs)
    assert ma["final"] == mb["final"]
    assert [h.get("loss") for h in ma["log_history"]] == [h.get("loss") for h in mb["log_history"]]
