"""The recipe ablation: which choices of the SPIN recipe decide whether the iterates approach p_data.

One run is one recipe variant (convergence.recipes.variants: sampled or greedy y', mixing on or off,
constant beta or the paper's schedule, 2 or 6 epochs ...) from one SFT start (saturated or weak) with
one seed, for `iterations` iterations on a subset of the SFT prompts, with the exact KL after each. The
seed shifts the SFT model's init and data order (its own `sft` job) and every sampling and training
seed, so the bands over seeds include the SFT model. The SFT-continued control (`sft_continued`) is a
run too: supervised steps matched, iteration by iteration, to the first variant's run of the same
start and seed. Each run is a chain (divergence/chain.py): a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import names
from ..config import (
    ControlConfig,
    DivergenceConfig,
    GenerateConfig,
    LongHorizonConfig,
    RecipesConfig,
    SpinConfig,
    replace,
    replicate,
)
from ..errors import DataError
from ..io import write_json, write_table
from .chain import (
    chain_prompts,
    chain_rows,
    control_iteration,
    inputs_stamp,
    measure,
    run_chain,
    spin_iteration,
    start_work_dir,
)
from .memorisation import chain_memorisation

log = logging.getLogger(__name__)

RUN_KEYS = ["start", "recipe", "seed"]


def _match_steps(work: Path, matched_rows: Path, iterations: int) -> list[Path]:
    """The SFT-continued control's step counts, from the matched SPIN run's rows, as the metrics files
    continue_sft reads."""
    rows = pd.read_csv(matched_rows)
    steps = rows.dropna(subset=["steps"]).drop_duplicates("iteration").set_index("iteration")["steps"]
    missing = [t for t in range(iterations) if t not in steps.index]
    if missing:
        raise DataError(f"{matched_rows}: no training steps for iteration(s) {missing}")
    files = []
    for t in range(iterations):
        path = work / f"match_iter{t}.json"
        write_json(path, {"final": {"global_step": int(steps[t])}})
        files.append(path)
    return files


def run_recipe(
    recipes: RecipesConfig,
    spin: SpinConfig,
    generate: GenerateConfig,
    divergence: DivergenceConfig,
    control: ControlConfig,
    recipe: str,
    start: str,
    seed: int,
    sft: Path,
    world: Path,
    train: Path,
    test: Path,
    work_dir: Path,
    per_prompt_out: Path,
    match: Path | None = None,
) -> pd.DataFrame:
    """One run of the ablation: tidy exact-KL rows per iteration with the run's keys, its realised
    steps and training steps; its per-prompt KLs go to per_prompt_out. `recipe` is a variant name or
    sft_continued (then `match` is the rows file of the run whose steps it matches)."""
    work = Path(work_dir)
    name = f"recipe {recipe} ({start} start, seed {seed})"
    is_control = recipe == names.CONTROL
    if is_control and match is None:
        raise DataError(f"{name}: --match (the matched SPIN run's rows) is required for {names.CONTROL}")
    if not is_control and recipe not in recipes.variants:
        raise DataError(f"{name}: no variant {recipe!r} in convergence.recipes.variants ({sorted(recipes.variants)})")
    variant = next(iter(recipes.variants)) if is_control else recipe
    spin, generate = recipes.recipe(variant, spin, generate)
    spin, generate = replicate(spin, seed), replace(replicate(generate, seed), num_shards=1)
    div = replace(divergence, n_prompts=recipes.divergence_prompts,
                              samples_per_prompt=recipes.divergence_samples)  # fmt: skip
    extra = (match,) if is_control else ()
    stamp = inputs_stamp([recipe, start, seed], (recipes, spin, generate, div, control), sft, train, test, extra)
    start_work_dir(work, stamp, name)
    prompts = chain_prompts(work, train, recipes.n_prompts)
    if is_control:
        matched = _match_steps(work, match, recipes.iterations)

        def step(t, previous):
            control_iteration(work, t, previous, prompts, spin, control, matched[t])
    else:

        def step(t, previous):
            spin_iteration(work, t, previous, prompts, spin, generate, sft)

    df, labels = run_chain(work, sft, recipes.iterations, step,
                           lambda model, label, previous: measure(work, model, label, world, test, div, generate, spin,
                                                                  previous), name)  # fmt: skip
    df, per_prompt = chain_rows(work, df, labels)
    keys = {"start": start, "recipe": recipe, "seed": int(seed)}
    write_table(per_prompt_out, per_prompt.assign(**keys)[RUN_KEYS + list(per_prompt.columns)])
    return df.assign(**keys)[RUN_KEYS + list(df.columns)]


def run_long_horizon(
    long_horizon: LongHorizonConfig,
    recipes: RecipesConfig,
    spin: SpinConfig,
    generate: GenerateConfig,
    divergence: DivergenceConfig,
    control: ControlConfig,
    seed: int,
    sft: Path,
    world: Path,
    train: Path,
    test: Path,
    work_dir: Path,
    per_prompt_out: Path,
) -> pd.DataFrame:
    """One long chain (convergence.long_horizon): the ablation's run of its recipe from its start for
    `iterations` iterations, each model with its memorisation gap (divergence/memorisation.py) on the
    chain's own training prompts, against fresh p_data responses drawn with the run's seed."""
    rows = run_recipe(replace(recipes, iterations=long_horizon.iterations), spin, generate, divergence, control,
                      long_horizon.recipe, long_horizon.start, seed, sft, world, train, test, work_dir,
                      per_prompt_out)  # fmt: skip
    work = Path(work_dir)
    labels = [names.SFT] + [names.model_name(t) for t in range(long_horizon.iterations)]
    models = {label: Path(sft) if label == names.SFT else work / label for label in labels}
    prompts = chain_prompts(work, train, recipes.n_prompts)  # the file the chain trained on (already written)
    gaps = chain_memorisation(work, models, world, prompts, spin, seed, divergence.batch_size)
    return rows.merge(gaps, on="model", how="left")
