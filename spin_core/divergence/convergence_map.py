"""One cell of the convergence map: SPIN on the tiny world for many iterations at one beta and one
training budget (learning rate x epochs), with the exact forward/reverse KL after every iteration.

The iterations are a chain (divergence/chain.py: the workflow's own stage functions in a row) on a
subset of the SFT prompts, training on the pair files the main run's rule would give it
(`names.pair_source_iterations`), so the map measures the same recipe as the main run. Snakemake runs
one job per cell; a killed cell resumes at its first unfinished step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..config import DivergenceConfig, GenerateConfig, MapConfig, SpinConfig, replace
from .chain import (
    chain_margins,
    chain_prompts,
    chain_proxy,
    chain_steps,
    inputs_stamp,
    measure,
    paired_changes,
    run_chain,
    spin_iteration,
    start_work_dir,
)
from .stability import predicted_label

log = logging.getLogger(__name__)


def run_cell(
    sweep: MapConfig,
    spin: SpinConfig,
    generate: GenerateConfig,
    divergence: DivergenceConfig,
    beta: float,
    learning_rate: float,
    epochs: float,
    sft: Path,
    world: Path,
    train: Path,
    test: Path,
    work_dir: Path,
) -> pd.DataFrame:
    """One convergence-map cell: many SPIN iterations at one beta and training budget.

    `sweep.iterations` iterations, the exact KL after each, as tidy rows with the cell's settings, the
    realised step of each iteration and the label it predicts."""
    work = Path(work_dir)
    name = f"map cell {names.cell_name(beta, learning_rate, epochs)}"
    stamp = inputs_stamp([beta, learning_rate, epochs], (sweep, spin, generate, divergence), sft, train, test)
    start_work_dir(work, stamp, name)
    prompts = chain_prompts(work, train, sweep.n_prompts)
    # The cell's values hold at every iteration; the recipe's other per-iteration settings still apply.
    swept = {"beta": beta, "learning_rate": learning_rate, "num_train_epochs": epochs}
    per_iteration = {
        t: {k: v for k, v in o.model_dump().items() if k not in swept} for t, o in spin.per_iteration.items()
    }
    spin = replace(spin, **swept, per_iteration=per_iteration)
    generate = replace(generate, num_shards=1)
    div = replace(divergence, n_prompts=sweep.divergence_prompts, samples_per_prompt=sweep.divergence_samples)
    df, labels = run_chain(
        work,
        sft,
        sweep.iterations,
        lambda t, previous: spin_iteration(work, t, previous, prompts, spin, generate, sft),
        lambda model, label, previous: measure(work, model, label, world, test, div, generate, spin, previous),
        name,
    )
    steps = chain_steps(work, labels)
    df["realised_step"] = df["model"].map(steps)  # NaN for the SFT model: no step made it
    df["predicted"] = df["realised_step"].map(predicted_label)
    # The margin (no p_data needed) and the step it implies, M_t / J_t, J_t the previous model's
    # Jeffreys divergence (forward + reverse KL): equal to the realised step for an exact-direction update.
    df["margin"] = df["model"].map(chain_margins(work, labels, div))
    jeffreys = df.groupby("model")["value"].sum()
    previous = dict(zip(labels[1:], labels))
    df["margin_step"] = df["margin"] / df["model"].map(lambda m: jeffreys.get(previous.get(m), np.nan))
    df = df.merge(paired_changes(work, labels), on=["model", "metric"], how="left")  # NaN for the SFT model
    # What a paper-scale user has, for the stopping rules (analysis/stopping.py)
    df["heldout_nll"] = df["model"].map(chain_proxy(work, labels, "heldout_nll"))
    df["heldout_margin"] = df["model"].map(chain_proxy(work, labels, "rv_margin"))
    settings = {"cell": names.cell_name(beta, learning_rate, epochs), "beta": beta, "learning_rate": learning_rate,
                "epochs": epochs}  # fmt: skip
    for i, (column, value) in enumerate(settings.items()):
        df.insert(i, column, value)
    return df
