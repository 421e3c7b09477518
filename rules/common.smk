# Config loading and validation, and the small helpers every rule shares.
import json
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


wildcard_constraints:
    t=r"\d+",
    k=r"\d+",
    n=r"\d+",
    model=r"sft|iter\d+",


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


def previous_model(t):
    """Iteration t starts from, and is referenced to, the previous model."""
    return model_dir("sft" if int(t) == 0 else f"iter{int(t) - 1}")


def generated_shards(t):
    return [f"data/generated/iter{t}/shard{k}-of-{NUM_SHARDS}.parquet" for k in range(NUM_SHARDS)]


def pair_source_iterations(t):
    """Official mixing rule: iteration t >= 1 trains on the pairs generated at t-1 and at t."""
    t = int(t)
    if config["spin"].get("mix_previous_iteration", True) and t >= 1:
        return [t - 1, t]
    return [t]


def pair_sources(wildcards):
    return [f for s in pair_source_iterations(wildcards.t) for f in generated_shards(s)]


# ---- SPIN training
def train_launcher():
    gpus = int(config["spin"].get("gpus", 1))
    if gpus > 1:
        acc = config["spin"].get("accelerate_config") or "config/accelerate/deepspeed_zero3.yaml"
        return f"accelerate launch --config_file {acc} --num_processes {gpus} -m spin_core.cli"
    return "python -m spin_core.cli"


# ---- divergence
def model_iteration(name):
    """sft -> -1 (before SPIN), iter{t} -> t."""
    return -1 if name == "sft" else int(name.removeprefix("iter"))


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


def final_targets():
    targets = [f"results/train/iter{t}/metrics.json" for t in ITERATIONS]
    if TINY:
        targets.append("results/divergence/exact.csv")
    if EVAL_ON:
        targets.append("results/eval/scores.csv")
    return targets


def print_results_summary():
    print("\nspin-repro finished. Results:")
    for target in final_targets():
        print(f"  {target}")
    print(f"  models: {', '.join(model_dir(m) for m in MODELS)}")
