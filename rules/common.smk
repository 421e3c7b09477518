# Config loading and validation, and the small input functions every rule shares. The workflow's
# vocabulary (model names, paths, seeds, which pairs iteration t trains on) lives in
# spin_core/names.py, the typed config in spin_core/config.py; this file only asks them.
import os
import shlex
import signal
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from analysis.report import RECIPE_FIGURE, RECIPE_TABLES, figure_names, table_names  # noqa: E402
from spin_core import names  # noqa: E402
from spin_core.config import load_yaml, params_json, replicate, validate_config  # noqa: E402
from spin_core.errors import ConfigError  # noqa: E402
from spin_core.train.launch import launcher  # noqa: E402
from spin_core.train.resume import remove_checkpoints  # noqa: E402

# Validate before any job runs. validate_config reports every schema violation as one short line
# per key ("spin.beta: 0 is less than ...") plus the rules a schema cannot say (iterations are
# 0..n, cross-key constraints), and returns the typed config; snakemake's validate then re-checks
# against the same schema.
# Snakemake has already read the --configfile files, keeping the last of two equal keys without a
# word; reading them again with our loader gives the same file:line errors as `spin-repro validate`.
try:
    for _configfile in workflow.overwrite_configfiles:
        load_yaml(_configfile)
    CFG = validate_config(config, source=" + ".join(map(str, workflow.overwrite_configfiles)) or "config")
except ConfigError as e:
    raise WorkflowError(str(e)) from None
validate(config, schema="../schemas/config.schema.yaml")


TINY = CFG.tiny
ITERATIONS = list(CFG.iterations)
MODELS = names.main_models(ITERATIONS)
NUM_SHARDS = CFG.generate.num_shards

# Released checkpoints: the models are imported, nothing is trained (rules/released.smk).
RELEASED = bool(CFG.released.models)
# Convergence study (tiny world): extra SPIN chains with other seeds (each from its own SFT model,
# seed{r}/sft), and the SFT-continued control (from the main run's).
SEED_CHAINS = names.seed_chains(CFG.convergence.seeds) if TINY and not RELEASED else []
CONTROL_ON = TINY and CFG.convergence.control.enabled and not RELEASED
# Every model that gets held-out samples, divergences and proxies.
ALL_MODELS = (
    MODELS
    + [m for c in SEED_CHAINS for m in [names.sft_model(c)] + names.chain_models(c, ITERATIONS)]
    + (names.chain_models(names.CONTROL, ITERATIONS) if CONTROL_ON else [])
)


wildcard_constraints:
    t=r"\d+",
    k=r"\d+",
    n=r"\d+",
    chain=names.SEED_CHAIN_PATTERN,
    model=names.MODEL_PATTERN,


def res(family, key):
    """Per-rule-family resource from config.resources (its entry, else the default entry)."""
    return CFG.resource(family, key)


def previous_model_dir(t, chain=""):
    """Iteration t starts from, and is referenced to, the previous model of its chain."""
    return names.model_dir(names.previous_model(names.model_name(t, chain)))


def for_chain(section, chain):
    """A config section with its seed shifted for a replicate chain (unchanged for the main run)."""
    return replicate(section, names.chain_replicate(chain))


def spin_params(wildcards):
    """--params for a job of iteration t: its SPIN recipe (spin.per_iteration applied), with the seed
    shifted for a replicate chain."""
    spin = CFG.spin.for_iteration(int(wildcards.t))
    return params_json(spin=for_chain(spin, wildcards.get("chain", "")))


def model_spin(wildcards):
    """The SPIN recipe of the iteration that made {model} (the base recipe for sft)."""
    return CFG.spin.for_iteration(names.parse_model(wildcards.model).iteration)


# Jobs on the chain sft -> generate -> reference -> train -> generate ... run before side jobs
# (divergence, evaluation, the theory overlay), which only the report waits for.
CRITICAL_PATH = 10
# Rules whose jobs keep checkpoints in params.checkpoints until the run succeeds.
TRAINING_RULES = {"sft", "sft_chain", "train", "train_chain", "sft_continued", "recipe_sft"}
# Generation: one job per iteration at the tiny scale (all shards), one per shard at paper scale.
GENERATE_JOB = "iter{t}" if TINY else "iter{t}_shard{k}-of-{n}"


def generate_outputs(chain=""):
    if TINY:
        return names.generated_shards("{t}", NUM_SHARDS, chain)
    return names.generated_shard("{t}", "{k}", "{n}", chain)


def pair_sources(wildcards):
    """The generated shards iteration t trains on (names.pair_source_iterations: with mixing, t-1 and t)."""
    chain = wildcards.get("chain", "")
    t = int(wildcards.t)
    sources = names.pair_source_iterations(t, CFG.spin.for_iteration(t).mix_previous_iteration)
    return [f for s in sources for f in names.generated_shards(s, NUM_SHARDS, chain)]


# ---- SPIN training
def train_launcher():
    return shlex.join(launcher(CFG.spin, workflow.basedir))


# ---- divergence
def proxy_reference_args(wildcards, input):
    """The previous iterate and its samples, for the real-vs-generated proxy (none for sft)."""
    if names.parse_model(wildcards.model).iteration < 0:  # an SFT model: no previous iterate
        return ""
    return f"--ref-model {shlex.quote(input.ref_model)} --ref-samples {shlex.quote(input.ref_samples)}"


def proxy_reference_inputs(wildcards):
    if names.parse_model(wildcards.model).iteration < 0:
        return {}
    prev = names.previous_model(wildcards.model)
    return {"ref_model": names.model_dir(prev), "ref_samples": names.heldout_samples(prev)}


# ---- evaluation
EVAL = CFG.evaluation
EVAL_ON = EVAL.enabled
LB_TASKS = list(EVAL.leaderboard.tasks)
BB_TASKS = list(EVAL.bigbench.tasks)
TINY_TASK_DIR = "data/eval/lm_eval"
MT_DIR = "data/eval/mt_bench"


def tiny_task_files():
    """Inputs an lm-eval job needs: the local task YAMLs (tiny world) or nothing (lm-eval's own)."""
    if not TINY:
        return []
    return [f"{TINY_TASK_DIR}/{t}.yaml" for t in LB_TASKS + BB_TASKS]


# ---- report (rules/report.smk)
TABLES = table_names(TINY, trained=not RELEASED)
FIGURES = figure_names(TINY)
MAP = CFG.convergence.map
PAPER_RESULTS = os.path.join(workflow.basedir, "analysis", "paper_results.yaml")


def report_inputs(wildcards):
    inputs = {"proxies": names.divergence_table("proxies")}
    if TINY:
        inputs.update(
            exact=names.divergence_table("exact"),
            per_prompt=names.PER_PROMPT_TABLE,
            theory="results/theory/overlay.csv",
        )
        if not RELEASED:
            inputs["sft_metrics"] = names.train_metrics(names.SFT)
        if RECIPES_DONE:
            inputs["recipe_summary"] = RECIPES_SUMMARY
    if EVAL_ON:
        inputs["scores"] = "results/eval/scores.csv"
    return inputs


def figure_inputs(wildcards):
    return {k: v for k, v in report_inputs(wildcards).items() if k in ("exact", "proxies", "theory")}


def input_args(input, skip=()):
    """Named inputs as command-line options: --name path, quoted."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in input.items() if k not in skip)


def map_cells():
    """One output per (beta, budget) cell of the convergence map."""
    return [names.map_cell_rows(names.cell_name(*cell)) for cell in MAP.cells()]


MAP_DONE = os.path.exists("results/convergence_map/map.csv")
RECIPES_SUMMARY = "results/tables/recipe_ablation_summary.csv"
RECIPES_DONE = TINY and not RELEASED and os.path.exists(RECIPES_SUMMARY)


# ---- the recipe ablation (rules/recipes.smk)
RECIPES = CFG.convergence.recipes
RECIPE_RUNS = list(RECIPES.variants) + ([names.CONTROL] if RECIPES.control else [])
RECIPE_MATCHED = next(iter(RECIPES.variants))  # the control matches this variant's steps


def recipe_sft_params(wildcards):
    return params_json(sft=RECIPES.sft_for(CFG.sft, wildcards.start, int(wildcards.r)), spin=CFG.spin)


def recipe_run_inputs(wildcards):
    inputs = {
        "sft": names.recipe_sft(wildcards.start, wildcards.r),
        "world": "data/world/world.json",
        "train": "data/sft/train.jsonl",
        "test": "data/sft/test.jsonl",
    }
    if wildcards.recipe == names.CONTROL:
        inputs["match"] = names.recipe_run(wildcards.start, RECIPE_MATCHED, wildcards.r)
    return inputs


def recipe_outputs(kind):
    runs = [(s, r, k) for s in RECIPES.starts for r in RECIPE_RUNS for k in range(RECIPES.seeds)]
    if kind == "sft":
        return [names.recipe_sft_metrics(s, k) for s in RECIPES.starts for k in range(RECIPES.seeds)]
    path = names.recipe_run if kind == "rows" else names.recipe_run_per_prompt
    return [path(s, r, k) for s, r, k in runs]


def released_revision_arg(model):
    revision = CFG.released.models[model].revision
    return f"--revision {shlex.quote(revision)}" if revision else ""


def final_targets():
    targets = [] if RELEASED else [names.train_metrics(names.model_name(t)) for t in ITERATIONS]
    if TINY:
        targets.append(names.divergence_table("exact"))
    if EVAL_ON:
        targets.append("results/eval/scores.csv")
    targets += [f"results/tables/{name}.csv" for name in TABLES]
    targets += [f"results/figures/{name}.png" for name in FIGURES]
    # The map is its own target (`snakemake convergence_map`, up to ~30 min); once it has run,
    # the default target keeps it, so the report includes its figures.
    if TINY and MAP_DONE:
        targets.append("results/convergence_map/map.csv")
    if RECIPES_DONE:  # the recipe ablation likewise (`snakemake recipes`)
        targets.append(RECIPES_SUMMARY)
    return targets


def release_finished_checkpoints():
    """Drop the checkpoints of this run's training jobs once the run has succeeded: only now are their
    models accepted outputs. A job's checkpoints outlive the job because Snakemake can still reject a
    finished job's outputs (SIGINT or SIGTERM to snakemake while it ran): the rerun then resumes at the
    last step instead of training again from scratch."""
    if CFG.spin.keep_checkpoints:
        return
    for job in workflow.dag.jobs:
        checkpoints = job.params.get("checkpoints") if job.rule.name in TRAINING_RULES else None
        if checkpoints:
            remove_checkpoints(checkpoints)


INTERRUPTED = []


def _record_interrupt(signum, frame):
    """Python's own Ctrl-C behaviour (KeyboardInterrupt), noting that the stop was asked for."""
    INTERRUPTED.append(signum)
    raise KeyboardInterrupt


try:
    signal.signal(signal.SIGINT, _record_interrupt)
except ValueError:  # not the main thread (Snakemake driven from another program): keep its handler
    pass


def report_stop():
    """Snakemake ends every unfinished run with "At least one job did not complete successfully", also
    when none failed: on SIGTERM it lets the running jobs finish, keeps their outputs and starts no
    new job; on Ctrl-C it stops them. Say which of the two happened, with the logs of failed jobs."""
    failed = sorted(getattr(workflow.scheduler, "failed", ()), key=lambda job: str(job))
    if failed:
        print(f"\nspin-repro: {len(failed)} job(s) failed; their logs:", file=sys.stderr)
        for job in failed:
            print(f"  {job.rule.name} {dict(job.wildcards)} -> {' '.join(job.log) or '(no log)'}", file=sys.stderr)
        return  # Snakemake's own error follows, and is true
    # A stop on request: SIGTERM is recorded by Snakemake's scheduler (no public API), Ctrl-C by
    # _record_interrupt. Any other failure without a failed job (an executor error, say) keeps
    # Snakemake's own message.
    if not (getattr(workflow.scheduler, "_user_kill", None) or INTERRUPTED):
        return
    print(
        "\nspin-repro stopped on request (SIGTERM or Ctrl-C) before finishing; no job failed. Jobs that"
        " Snakemake saw finish are kept; jobs stopped or still running at the stop are redone, training"
        " jobs from their checkpoints: rerun the same command to go on.",
        file=sys.stderr,
    )
    sys.exit(1)  # skip Snakemake's "At least one job did not complete successfully", which is untrue here


def print_results_summary():
    print("\nspin-repro finished. Results:")
    for target in final_targets():
        print(f"  {target}")
    print(f"  models: {', '.join(names.model_dir(m) for m in MODELS)}")
