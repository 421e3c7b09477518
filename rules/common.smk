# Config loading and validation, and the small helpers every rule shares.
import json
import os
import posixpath
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from spin_core.config import validate_config  # noqa: E402
from spin_core.errors import ConfigError  # noqa: E402

# Validate before any job runs. validate_config reports every schema violation as one short line
# per key ("spin.beta: 0 is less than ...") plus the rules a schema cannot say (iterations are
# 0..n, cross-key constraints); snakemake's validate then re-checks against the same schema.
try:
    validate_config(config, source="config")
except ConfigError as e:
    raise WorkflowError(str(e)) from None
validate(config, schema="../schemas/config.schema.yaml")


TINY = config["scale"] == "tiny"
ITERATIONS = list(config["iterations"])
MODELS = ["sft"] + [f"iter{t}" for t in ITERATIONS]
NUM_SHARDS = config["generate"].get("num_shards", 1)

# Convergence study (tiny world): extra SPIN chains with other seeds, and the SFT-continued control.
CONV = config.get("convergence", {})
N_SEEDS = int(CONV.get("seeds", 1)) if TINY else 1
SEED_CHAINS = [f"seed{r}" for r in range(1, N_SEEDS)]
CONTROL_ON = TINY and bool(CONV.get("control", {}).get("enabled", False))
CONTROL = "sft_continued"


def chain_models(chain):
    """Model names of one chain: iter{t} for the main run, {chain}/iter{t} for the others."""
    return [f"{chain}/iter{t}" if chain else f"iter{t}" for t in ITERATIONS]


# Every model that gets held-out samples, divergences and proxies.
ALL_MODELS = (
    MODELS
    + [m for c in SEED_CHAINS for m in chain_models(c)]
    + (chain_models(CONTROL) if CONTROL_ON else [])
)


wildcard_constraints:
    t=r"\d+",
    k=r"\d+",
    n=r"\d+",
    chain=r"seed\d+",
    model=r"sft|((seed\d+|sft_continued)/)?iter\d+",


def params_json(*sections):
    """Config sections as one JSON string for a rule's --params (a change re-runs the rule)."""
    return json.dumps({s: config.get(s) for s in sections}, sort_keys=True)


def params_json_sub(section, sub):
    """One subsection as {sub: ...} JSON, so only its changes re-run a rule."""
    return json.dumps({sub: config.get(section, {}).get(sub, {})}, sort_keys=True)


def res(family, key):
    """Per-rule-family resource from config.resources, falling back to its default entry."""
    table = config["resources"]
    return table.get(family, {}).get(key, table["default"][key])


def model_dir(name):
    return f"models/{name}"


def previous_model(t, chain=""):
    """Iteration t starts from, and is referenced to, the previous model of its chain."""
    return model_dir(previous_model_name(f"{chain}/iter{t}" if chain else f"iter{t}"))


def previous_model_name(name):
    """sft for iteration 0 of any chain, else the chain's iteration t-1."""
    chain, it = posixpath.split(name)  # model names are paths under models/: [chain/]iter{t}
    t = int(it.removeprefix("iter"))
    if t == 0:
        return "sft"
    return f"{chain}/iter{t - 1}" if chain else f"iter{t - 1}"


def chain_seed_offset(chain):
    """seed{r} shifts every seed by 7919 * r (a prime: no clash with the per-shard/iteration offsets)."""
    return 7919 * int(chain.removeprefix("seed")) if chain else 0


def chain_params(section, chain):
    """params_json(section) with the section's seed shifted for a replicate chain."""
    value = dict(config.get(section) or {})
    value["seed"] = int(value.get("seed", 0)) + chain_seed_offset(chain)
    return json.dumps({section: value}, sort_keys=True)


def generated_shards(t, chain=""):
    root = f"data/generated/{chain}/iter{t}" if chain else f"data/generated/iter{t}"
    return [f"{root}/shard{k}-of-{NUM_SHARDS}.parquet" for k in range(NUM_SHARDS)]


def pair_source_iterations(t):
    """Official mixing rule: iteration t >= 1 trains on the pairs generated at t-1 and at t."""
    t = int(t)
    if config["spin"].get("mix_previous_iteration", True) and t >= 1:
        return [t - 1, t]
    return [t]


def pair_sources(wildcards):
    chain = wildcards.get("chain", "")
    return [f for s in pair_source_iterations(wildcards.t) for f in generated_shards(s, chain)]


# ---- SPIN training
def train_launcher():
    gpus = int(config["spin"].get("gpus", 1))
    if gpus > 1:
        acc = config["spin"].get("accelerate_config") or "config/accelerate/deepspeed_zero3.yaml"
        return f"accelerate launch --config_file {acc} --num_processes {gpus} -m spin_core.cli"
    return "python -m spin_core.cli"


# ---- divergence
def model_iteration(name):
    """sft -> -1 (before SPIN), [chain/]iter{t} -> t."""
    if name == "sft":
        return -1
    return int(posixpath.basename(name).removeprefix("iter"))


def proxy_reference_args(wildcards, input):
    """The previous iterate and its samples, for the real-vs-generated proxy (none for sft)."""
    if wildcards.model == "sft":
        return ""
    return f"--ref-model {input.ref_model} --ref-samples {input.ref_samples}"


def proxy_reference_inputs(wildcards):
    if wildcards.model == "sft":
        return {}
    prev = previous_model_name(wildcards.model)
    return {"ref_model": model_dir(prev), "ref_samples": f"results/divergence/samples/{prev}.parquet"}


# ---- evaluation
EVAL = config.get("evaluation", {})
EVAL_ON = bool(EVAL.get("enabled", False))
LB_TASKS = list(EVAL.get("leaderboard", {}).get("tasks", {}))
BB_TASKS = list(EVAL.get("bigbench", {}).get("tasks", {}))
MT_CFG = EVAL.get("mt_bench", {})
TINY_TASK_DIR = "data/eval/lm_eval"
MT_DIR = "data/eval/mt_bench"


def eval_family_params(family):
    return json.dumps({"family": EVAL.get(family, {})}, sort_keys=True)


def tiny_task_files():
    """Inputs an lm-eval job needs: the local task YAMLs (tiny world) or nothing (lm-eval's own)."""
    if not TINY:
        return []
    return [f"{TINY_TASK_DIR}/{t}.yaml" for t in LB_TASKS + BB_TASKS]


# ---- report (rules/report.smk)
TABLES = ["benchmarks_paper_vs_ours", "claims", "proxies_by_iteration"] + (
    ["divergence_by_iteration", "proxy_tracking", "theory_overlay"] if TINY else []
)
FIGURES = ["benchmarks_vs_iteration", "proxies_vs_iteration"] + (
    ["divergence_vs_iteration", "spin_vs_sft_continued", "proxy_tracking", "theory_overlay"] if TINY else []
)
MAP = CONV.get("map", {})
PAPER_RESULTS = os.path.join(workflow.basedir, "analysis", "paper_results.yaml")


def report_inputs(wildcards):
    inputs = {"proxies": "results/divergence/proxies.csv"}
    if TINY:
        inputs.update(exact="results/divergence/exact.csv", theory="results/theory/overlay.csv")
    if EVAL_ON:
        inputs["scores"] = "results/eval/scores.csv"
    return inputs


def figure_inputs(wildcards):
    return {k: v for k, v in report_inputs(wildcards).items() if k != "scores"}


def map_cells():
    """One output per (beta, budget) cell; defaults are MapConfig's (spin_core/convergence_map.py)."""
    from spin_core.convergence_map import MapConfig

    cfg = MapConfig.from_dict(MAP)
    return [
        f"results/convergence_map/cells/beta{b:g}_lr{lr:g}_ep{ep:g}.csv" for b in cfg.betas for lr, ep in cfg.budgets
    ]


MAP_DONE = os.path.exists("results/convergence_map/map.csv")


def final_targets():
    targets = [f"results/train/iter{t}/metrics.json" for t in ITERATIONS]
    if TINY:
        targets.append("results/divergence/exact.csv")
    if EVAL_ON:
        targets.append("results/eval/scores.csv")
    targets += [f"results/tables/{name}.csv" for name in TABLES]
    targets += [f"results/figures/{name}.png" for name in FIGURES]
    # The map is its own target (`snakemake convergence_map`, up to ~30 min); once it has run,
    # the default target keeps it, so the report includes its figures.
    if TINY and MAP_DONE:
        targets.append("results/convergence_map/map.csv")
    return targets


def print_results_summary():
    print("\nspin-repro finished. Results:")
    for target in final_targets():
        print(f"  {target}")
    print(f"  models: {', '.join(model_dir(m) for m in MODELS)}")
