"""The data-size and capacity studies (issue #24, items 1 and 2): do the iterates leave p_data because
the SFT data are few, or the model small?

An arm (names.StudyArm) is one chain of a recipe of the ablation (convergence.studies.recipe), from an
SFT model saturated on the arm's rows at the arm's width, SPIN reusing its SFT prompts as the main run
does: all of them up to spin_prompts (the main run's 2000), the first spin_prompts of a larger arm, as
the paper's SPIN takes 50k of its SFT model's 200k prompts. Data size: the first N rows of one pool
(`make_pool`: the main run's SFT rows, then fresh draws of p_data; nested, so a larger size holds every
smaller one). Fresh: the SFT model of its size, but every iteration draws new prompts with new p_data
responses (`fresh_rows`), so SPIN sees the population objective rather than a finite sample.
Capacity: other widths on the main run's SFT rows.

Each model of a chain gets the exact forward and reverse KL on the main run's held-out prompts, the
paper-scale proxies, and the memorisation gap on the SFT rows every arm trained on (the first
gap_prompts): log p(y_train) - log p(y_new) against fresh p_data responses (divergence/memorisation.py),
the generalisation gap between the responses trained on and new ones for the same prompts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import names
from ..config import DivergenceConfig, GenerateConfig, RecipesConfig, SpinConfig, StudiesConfig, replace, replicate
from ..data import load_sft
from ..errors import DataError
from ..io import write_jsonl, write_table
from ..world.sft_data import make_tiny_sft_data
from ..world.world import TinyWorld
from .chain import chain_prompts, chain_rows, inputs_stamp, measure, run_chain, spin_iteration, start_work_dir
from .memorisation import chain_memorisation

log = logging.getLogger(__name__)

# A fresh draw asks for this many rows more than it keeps, to make up for prompts it must skip.
_SPARE = 0.05


def draw_rows(world: TinyWorld, n: int, seed: int, exclude: set[str]) -> list[dict]:
    """n SFT rows of p_data (distinct prompts, one response each, as the data stage draws them) whose
    prompts are not in `exclude`."""
    rows, _ = make_tiny_sft_data(world, n + int(_SPARE * n) + len(exclude) // 100 + 10, 0, seed)
    kept = [r for r in rows if r["prompt"] not in exclude][:n]
    if len(kept) < n:
        raise DataError(f"world: {n} rows wanted, {len(kept)} drawn apart from {len(exclude)} known prompts")
    return kept


def make_pool(world: Path, train: Path, test: Path, sizes: list[int], seed: int, out: list[Path]) -> None:
    """The data-size study's SFT rows: the main run's rows, then new p_data rows with prompts in neither
    split, to the largest size; size sizes[i] (the pool's first rows) to out[i]."""
    if len(out) != len(sizes):
        raise DataError(f"study pool: {len(out)} output files for {len(sizes)} sizes")
    rows, held_out = load_sft(train), load_sft(test)
    extra = max(sizes) - len(rows)
    if extra > 0:
        known = {r["prompt"] for r in rows + held_out}
        rows = rows + draw_rows(TinyWorld.load(world), extra, seed, known)
    for n, path in zip(sizes, out):
        write_jsonl(path, rows[:n])
        log.info("study pool: %d rows -> %s", n, path)


def fresh_rows(world: TinyWorld, n: int, seed: int, t: int, test: Path) -> list[dict]:
    """The fresh arm's rows of iteration t: n new p_data rows (seeded by the chain's seed and t), with
    no prompt of the held-out split the KL is measured on."""
    return draw_rows(world, n, names.shard_seed(seed, t, 0) + 1, {r["prompt"] for r in load_sft(test)})


def run_study_arm(
    studies: StudiesConfig,
    recipes: RecipesConfig,
    spin: SpinConfig,
    generate: GenerateConfig,
    divergence: DivergenceConfig,
    arm: str,
    seed: int,
    sft: Path,
    world: Path,
    train: Path,
    test: Path,
    work_dir: Path,
    per_prompt_out: Path,
) -> pd.DataFrame:
    """One arm's chain: tidy exact-KL rows per model with its proxies and memorisation gap, keyed by
    arm and seed; its per-prompt KLs go to per_prompt_out. `train` is the arm's SFT rows (the fresh
    arm: those of its SFT model, which the gap is read on)."""
    study_arm, work = names.parse_study_arm(arm), Path(work_dir)
    name = f"study arm {arm} (seed {seed})"
    spin, generate = recipes.recipe(studies.recipe, spin, generate)
    spin, generate = replicate(spin, seed), replace(replicate(generate, seed), num_shards=1)
    div = replace(divergence, n_prompts=recipes.divergence_prompts, samples_per_prompt=recipes.divergence_samples)
    stamp = inputs_stamp([arm, seed], (studies, spin, generate, div), sft, train, test)
    start_work_dir(work, stamp, name)
    rows = load_sft(train)
    if study_arm.fresh:
        the_world = TinyWorld.load(world)

        def prompts_for(t: int) -> Path:
            path = work / f"prompts_iter{t}.jsonl"
            if not path.exists():
                write_jsonl(path, fresh_rows(the_world, min(study_arm.n_train, studies.spin_prompts), seed, t, test))
            return path
    else:
        if len(rows) != study_arm.n_train:
            raise DataError(f"{name}: {train} has {len(rows)} rows, the arm is named for {study_arm.n_train}")
        every = chain_prompts(work, train, studies.spin_prompts)

        def prompts_for(t: int) -> Path:
            return every

    def step(t, previous):
        spin_iteration(work, t, previous, prompts_for(t), spin, generate, sft)

    def measure_model(model, label, previous):
        return measure(work, model, label, world, test, div, generate, spin, previous)

    df, labels = run_chain(work, sft, studies.iterations, step, measure_model, name)
    df, per_prompt = chain_rows(work, df, labels)
    gap_rows = work / "gap_prompts.jsonl"
    if not gap_rows.exists():
        write_jsonl(gap_rows, rows[: studies.gap_prompts])
    models = {label: Path(sft) if label == names.SFT else work / label for label in labels}
    gaps = chain_memorisation(work, models, world, gap_rows, spin, seed, divergence.batch_size)
    keys = {"arm": arm, "seed": int(seed), "n_train": study_arm.n_train, "hidden": study_arm.hidden,
            "fresh": study_arm.fresh}  # fmt: skip
    write_table(per_prompt_out, per_prompt.assign(**keys)[list(keys) + list(per_prompt.columns)])
    df = df.merge(gaps[["model", "gap", "gap_ci_low", "gap_ci_high", "data_gap"]], on="model", how="left")
    return df.assign(**keys)[list(keys) + list(df.columns)]
