"""The convergence map measures the main run's recipe: a map cell and the workflow's rules train
iteration t on the pairs of the same iterations, with spin.mix_previous_iteration on and off."""

import re
import shlex

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
    step reads (`--pairs` of the `reference` steps in the tiny scale's one-job chain; the reference
    pass writes exactly the pairs the train step then reads)."""
    proc = run_snakemake(workdir, "-n", "-p", configfile=[MICRO, overlay], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = next(
        j for j in re.split(r"\n(?=(?:local)?rule )", proc.stdout + proc.stderr) if j.startswith("rule spin_chain:")
    )
    shell = re.search(r"^Shell command: (.*)$", job, re.M).group(1)
    words = shlex.split(shell[shell.index(" -- ") : shell.rindex(") 2>&1 |")])
    sources = {}
    for step in (i for i, w in enumerate(words) if w == "reference"):
        pairs = words[words.index("--pairs", step) + 1 :]
        pairs = pairs[: next(i for i, w in enumerate(pairs) if w.startswith("--"))]
        assert pairs and all(re.fullmatch(r"data/generated/iter\d+/shard\d+-of-\d+\.parquet", f) for f in pairs), pairs
        out = words[words.index("--out", step) + 1]
        t = int(re.fullmatch(r"data/pairs/pairs_iter(\d+)\.parquet", out).group(1))
        sources[t] = {int(re.search(r"iter(\d+)", f).group(1)) for f in pairs}
    assert sorted(sources) == [0, 1, 2, 3], proc.stdout[-3000:]
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


def test_recipe_runs_and_the_matched_control(tmp_path, world, tokenizer, tiny_model):
    """A recipe-ablation run trains its variant's recipe, keeps per-prompt KLs with the run's keys, and
    resumes without retraining; the SFT-continued control takes the same number of steps per iteration."""
    from spin_core.config import ControlConfig, RecipesConfig, RecipeVariant
    from spin_core.divergence.recipes import run_recipe

    train, test = make_tiny_sft_data(world, 16, 4, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    world.save(tmp_path / "world.json")
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    recipes = RecipesConfig(iterations=2, n_prompts=16, seeds=1, divergence_prompts=4, divergence_samples=2,
                            variants={"official": RecipeVariant(), "greedy": RecipeVariant(generate={"temperature": 0.0})})  # fmt: skip
    spin = SpinConfig(max_length=48, max_prompt_length=12, per_device_train_batch_size=8, logging_steps=1,
                      warmup_ratio=0.0, optim="sgd", learning_rate=1e-3, num_train_epochs=1.0)  # fmt: skip
    common = dict(spin=spin, generate=GenerateConfig(max_new_tokens=12, batch_size=16),
                  divergence=DivergenceConfig(max_new_tokens=12, batch_size=16), control=ControlConfig(),
                  start="saturated", seed=1, sft=tmp_path / "sft", world=tmp_path / "world.json",
                  train=tmp_path / "train.jsonl", test=tmp_path / "test.jsonl")  # fmt: skip

    def run(recipe, **kw):
        out = tmp_path / f"{recipe}.per_prompt.parquet"
        rows = run_recipe(recipes, recipe=recipe, work_dir=tmp_path / recipe, per_prompt_out=out, **common, **kw)
        rows.to_csv(tmp_path / f"{recipe}.csv", index=False)
        return rows, pd.read_parquet(out)

    rows, per_prompt = run("greedy")
    generated = pd.read_parquet(tmp_path / "greedy" / "generated_iter0.parquet")
    assert {g["temperature"] for g in generated["generation"]} == {0.0}  # the variant's setting reached generation
    assert set(rows[["start", "recipe", "seed"]].itertuples(index=False, name=None)) == {("saturated", "greedy", 1)}
    assert sorted(per_prompt.iteration.unique()) == [-1, 0, 1]
    assert len(per_prompt) == 3 * 2 * 4  # models x metrics x prompts
    # What a paper-scale user has, per model (the stopping rules read it): held-out NLL of the human
    # responses, and the held-out margin of the step that made the model (none for the SFT model).
    assert rows["heldout_nll"].notna().all() and (rows["heldout_nll"] > 0).all()
    assert rows[rows.iteration >= 0]["heldout_margin"].notna().all()
    assert rows[rows.iteration < 0]["heldout_margin"].isna().all()
    stamp = (tmp_path / "greedy" / "iter1" / "model.safetensors").stat().st_mtime_ns
    again, _ = run("greedy")
    assert (tmp_path / "greedy" / "iter1" / "model.safetensors").stat().st_mtime_ns == stamp  # resumed, not retrained
    pd.testing.assert_frame_equal(again, rows)

    official, _ = run("official")
    control, _ = run(names.CONTROL, match=tmp_path / "official.csv")
    steps = lambda df: df.dropna(subset=["steps"]).drop_duplicates("iteration").set_index("iteration")["steps"]  # noqa: E731
    pd.testing.assert_series_equal(steps(control), steps(official))
    assert (steps(official) > 0).all()


def test_published_fixes_run_as_recipe_variants(tmp_path, world, tokenizer, tiny_model):
    """alpha-SPIN's variant trains on references mixed with the SFT model; fictitious play's samples
    iteration 1's y' from the SFT model and iteration 0; SAPO's samples y' from the moving average of
    the chain's weights and trains on its replay buffer's iterations."""
    import numpy as np

    from spin_core.config import ControlConfig, RecipesConfig, RecipeVariant
    from spin_core.divergence.recipes import run_recipe

    train, test = make_tiny_sft_data(world, 16, 4, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    world.save(tmp_path / "world.json")
    save_model(tiny_model, tokenizer, tmp_path / "sft")
    variants = {"alpha_05": RecipeVariant(spin={"reference_alpha": 0.5}),
                "fictitious": RecipeVariant(spin={"opponent": "fictitious"}),
                "ema_replay": RecipeVariant(spin={"opponent": "ema", "ema_decay": 0.5, "replay": 3})}  # fmt: skip
    recipes = RecipesConfig(iterations=3, n_prompts=16, seeds=1, divergence_prompts=4, divergence_samples=2,
                            variants=variants, control=False)  # fmt: skip
    spin = SpinConfig(max_length=48, max_prompt_length=12, per_device_train_batch_size=8, logging_steps=1,
                      warmup_ratio=0.0, optim="sgd", learning_rate=1e-3, num_train_epochs=1.0)  # fmt: skip
    common = dict(recipes=recipes, spin=spin, generate=GenerateConfig(max_new_tokens=12, batch_size=16),
                  divergence=DivergenceConfig(max_new_tokens=12, batch_size=16), control=ControlConfig(),
                  start="saturated", seed=0, sft=tmp_path / "sft", world=tmp_path / "world.json",
                  train=tmp_path / "train.jsonl", test=tmp_path / "test.jsonl")  # fmt: skip
    for recipe in variants:
        run_recipe(
            recipe=recipe, work_dir=tmp_path / recipe, per_prompt_out=tmp_path / f"{recipe}.pp.parquet", **common
        )
    pairs = pd.read_parquet(tmp_path / "alpha_05" / "pairs_iter1.parquet")
    assert set(pairs.base_model) == {str(tmp_path / "sft")} and set(pairs.reference_model) == {
        str(tmp_path / "alpha_05" / "iter0")
    }
    np.testing.assert_allclose(pairs.ref_logp_real, 0.5 * pairs.previous_logp_real + 0.5 * pairs.base_logp_real)
    assert not np.allclose(pairs.previous_logp_real, pairs.base_logp_real)  # iteration 0 moved the model
    generated = pd.read_parquet(tmp_path / "fictitious" / "generated_iter1.parquet")
    assert set(generated.opponent) <= {"sft", "iter0"} and len(generated) == 16
    assert set(pd.read_parquet(tmp_path / "fictitious" / "generated_iter0.parquet").opponent) == {"sft"}  # all it has
    # SAPO: iteration 2's y' from E_2 = 0.5 E_1 + 0.5 iter1 (E_1 = 0.5 sft + 0.5 iter0), sampled as the
    # generate stage samples that model; its pairs are those of iterations 0, 1 and 2, all scored by iter1.
    work = tmp_path / "ema_replay"
    assert (work / "ema_iter1").exists() and (work / "ema_iter2").exists()
    assert pd.read_parquet(work / "generated_iter2.parquet")["generation"].iloc[0]["model"] == str(work / "ema_iter2")
    pairs2 = pd.read_parquet(work / "pairs_iter2.parquet")
    assert sorted(set(pairs2.iteration)) == [0, 1, 2] and len(pairs2) == 3 * 16
    assert set(pairs2.reference_model) == {str(work / "iter1")}
