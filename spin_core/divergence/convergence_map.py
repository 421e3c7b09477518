"""One cell of the convergence map: SPIN on the tiny world for many iterations at one beta and one
training budget (learning rate x epochs), with the exact forward/reverse KL after every iteration.

Each iteration is the workflow's own stage functions in a row (generate_shard -> reference_pass ->
train_spin -> sample_heldout -> exact_divergence) on a subset of the SFT prompts, and it trains on the
pair files the main run's rule would give it (`names.pair_source_iterations`), so the map measures the
same recipe as the main run. Snakemake runs one job per cell; inside a cell the iterations must run in
order, and each finished iteration leaves its model and divergence rows in the cell's work folder, so
a killed cell resumes at the first unfinished iteration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..config import DivergenceConfig, GenerateConfig, MapConfig, SpinConfig
from ..data import load_sft
from ..generate.pairs import generate_shard
from ..io import write_json, write_jsonl, write_table
from ..train.reference import reference_pass
from ..train.resume import remove_checkpoints
from ..train.spin import train_spin
from .exact import exact_divergence
from .samples import sample_heldout
from .stability import predicted_label, realised_step

log = logging.getLogger(__name__)


def _digest(path: str | Path) -> str:
    """sha256 of a file, or of every file in a directory (sorted by name)."""
    h = hashlib.sha256()
    path = Path(path)
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def inputs_stamp(cell: tuple[float, float, float], sections: tuple, sft: Path, train: Path, test: Path) -> dict:
    """What a cell's finished iterations were made from: its (beta, lr, epochs), the config
    sections, and digests of the SFT model and the data."""
    stamp = {
        "cell": list(cell),
        "configs": [dataclasses.asdict(c) for c in sections],
        "sft": _digest(sft),
        "data": [_digest(train), _digest(test)],
    }
    return json.loads(json.dumps(stamp))  # as read back from inputs.json (tuples become lists)


def cell_pair_files(work: Path, t: int, spin: SpinConfig) -> list[Path]:
    """The generated-pairs files iteration t of a cell trains on: those of the same iterations as
    the main run's rule (this one's, and with mixing the previous one's)."""
    mix = spin.for_iteration(t).mix_previous_iteration
    return [work / f"generated_iter{s}.parquet" for s in names.pair_source_iterations(t, mix)]


def _start_work_dir(work: Path, stamp: dict, name: str) -> None:
    """Keep the cell's finished iterations only if they were made from the same inputs; otherwise
    (a new SFT model, other settings) the cell starts over."""
    stamp_file = work / "inputs.json"
    if work.exists() and (not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp):
        log.info("map cell %s: inputs changed since the last run; starting the cell over", name)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(stamp_file, stamp)


def _train_iteration(work: Path, t: int, previous: Path, prompts: Path, spin: SpinConfig, generate: GenerateConfig):
    """Iteration t of a cell, as the workflow's stages run it: generate from the previous iterate,
    score the pairs it trains on under that iterate, train. Each finished step's file is kept."""
    generated = work / f"generated_iter{t}.parquet"
    if not generated.exists():
        generate_shard(generate, previous, prompts, generated, iteration=t)
    pairs = work / f"pairs_iter{t}.parquet"
    if not pairs.exists():
        reference_pass(spin.for_iteration(t), cell_pair_files(work, t, spin), previous, pairs)
    model = work / names.model_name(t)
    checkpoints, metrics = work / f"checkpoints_iter{t}", work / f"metrics_iter{t}.json"
    train_spin(spin.for_iteration(t), pairs, previous, model, checkpoints, metrics)
    remove_checkpoints(checkpoints)  # the model is saved (atomically): nothing will resume from them


def _measure(work: Path, model: Path, label: str, world: Path, test: Path, div, generate) -> pd.DataFrame:
    """The exact KL of one model of the cell (its held-out samples and rows kept in the work folder)."""
    out = work / f"divergence_{label}.csv"
    if out.exists():
        return pd.read_csv(out)
    samples = work / f"samples_{label}.parquet"
    if not samples.exists():
        write_table(samples, sample_heldout(div, generate, model, test))
    df = exact_divergence(div, model, world, samples, label, forward_out=work / f"forward_{label}.parquet")
    write_table(out, df)
    return df


def cell_steps(work: Path, labels: list[str]) -> dict[str, float]:
    """The realised step (divergence/stability.py) that made each iterate from the one before, on the
    forward-KL responses both were scored on; NaN where a model's per-response file is missing."""
    steps = {}
    for prev, cur in zip(labels, labels[1:]):
        a, b = work / f"forward_{prev}.parquet", work / f"forward_{cur}.parquet"
        if not (a.exists() and b.exists()):
            steps[cur] = float("nan")
            continue
        before, after = pd.read_parquet(a), pd.read_parquet(b)
        if not np.allclose(before.logp_data, after.logp_data):  # not the same responses
            raise RuntimeError(f"{work}: {prev} and {cur} were scored on different responses")
        steps[cur] = realised_step(after.logp_model, before.logp_model, after.logp_data, after.prompt)
    return steps


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

    `sweep.iterations` iterations, the exact KL after each, as tidy rows with the cell's settings."""
    work = Path(work_dir)
    name = names.cell_name(beta, learning_rate, epochs)
    stamp = inputs_stamp((beta, learning_rate, epochs), (sweep, spin, generate, divergence), sft, train, test)
    _start_work_dir(work, stamp, name)
    prompts = work / "prompts.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, load_sft(train)[: sweep.n_prompts])
    # The cell's values hold at every iteration; the recipe's other per-iteration settings still apply.
    swept = {"beta": beta, "learning_rate": learning_rate, "num_train_epochs": epochs}
    per_iteration = {t: {k: v for k, v in o.items() if k not in swept} for t, o in spin.per_iteration.items()}
    spin = dataclasses.replace(spin, **swept, per_iteration=per_iteration)
    generate = dataclasses.replace(generate, num_shards=1)
    div = dataclasses.replace(
        divergence, n_prompts=sweep.divergence_prompts, samples_per_prompt=sweep.divergence_samples
    )
    frames = [_measure(work, Path(sft), names.SFT, world, test, div, generate)]
    previous = Path(sft)
    for t in range(sweep.iterations):
        model = work / names.model_name(t)
        if not model.exists():
            log.info("map cell %s: iteration %d/%d", name, t + 1, sweep.iterations)
            _train_iteration(work, t, previous, prompts, spin, generate)
        frames.append(_measure(work, model, names.model_name(t), world, test, div, generate))
        previous = model
    df = pd.concat(frames, ignore_index=True)
    labels = [names.SFT] + [names.model_name(t) for t in range(sweep.iterations)]
    steps = cell_steps(work, labels)
    df["realised_step"] = df["model"].map(steps)  # NaN for the SFT model: no step made it
    df["predicted"] = df["realised_step"].map(predicted_label)
    settings = {"cell": name, "beta": beta, "learning_rate": learning_rate, "epochs": epochs}
    for i, (column, value) in enumerate(settings.items()):
        df.insert(i, column, value)
    return df
