"""The convergence map measures the main run's recipe: a map cell and the workflow's rules train
iteration t on the pairs of the same iterations, with spin.mix_previous_iteration on and off."""

import re

import pandas as pd
import pytest

from spin_core import names
from spin_core.config import DivergenceConfig, GenerateConfig, MapConfig, SpinConfig
from spin_core.divergence.convergence_map import run_cell
from spin_core.io import write_jsonl
from spin_core.modeling import save_model
from spin_core.world.sft_data import make_tiny_sft_data
from tests.helpers.workflow import MICRO, run_snakemake


def workflow_pair_sources(workdir, overlay) -> dict[int, set[int]]:
    """From Snakemake's dry run: iteration t -> the iterations whose generated shards its reference
    job reads (the reference pass writes exactly the pairs the train job then reads)."""
    proc = run_snakemake(workdir, "-n", configfile=[MICRO, overlay], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sources = {}
    for job in re.split(r"\n(?=(?:local)?rule )", proc.stdout + proc.stderr):
        if not job.startswith("rule reference:"):
            continue
        inputs = re.search(r"^\s+input: (.*)$", job, re.M).group(1)
        output = re.search(r"^\s+output: (.*)$", job, re.M).group(1)
        t = int(re.search(r"pairs_iter(\d+)", output).group(1))
        sources[t] = {int(i) for i in re.findall(r"data/generated/iter(\d+)/shard", inputs)}
    return sources


@pytest.mark.parametrize("mix", [True, False], ids=["mix_on", "mix_off"])
def test_map_cell_and_workflow_train_on_the_same_pairs_with_mix(tmp_path, world, tokenizer, tiny_model, mix):
    overlay = tmp_path / "mix.yaml"
    overlay.write_text(f"spin: {{mix_previous_iteration: {str(mix).lower()}}}\n")
    workflow = workflow_pair_sources(tmp_path / "wd", overlay)
    assert workflow[1] == set(names.pair_source_iterations(1, mix))

    train, test = make_tiny_sft_data(world, 16, 4, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    world.save(tmp_path / "world.json")
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    spin = SpinConfig(mix_previous_iteration=mix, max_length=48, max_prompt_length=12, per_device_train_batch_size=8,
                      logging_steps=1, warmup_ratio=0.0, optim="sgd")  # fmt: skip
    run_cell(
        MapConfig(iterations=2, n_prompts=16, divergence_prompts=4, divergence_samples=1),
        spin, GenerateConfig(max_new_tokens=12, batch_size=16), DivergenceConfig(max_new_tokens=12, batch_size=16),
        0.1, 1e-3, 1.0, tmp_path / "sft", tmp_path / "world.json", tmp_path / "train.jsonl", tmp_path / "test.jsonl",
        tmp_path / "cell",
    )  # fmt: skip
    for t in (0, 1):
        cell = set(pd.read_parquet(tmp_path / "cell" / f"pairs_iter{t}.parquet")["iteration"])
        assert cell == workflow[t], (t, cell, workflow[t])
    pairs1 = pd.read_parquet(tmp_path / "cell" / "pairs_iter1.parquet")
    assert len(pairs1) == (32 if mix else 16)
