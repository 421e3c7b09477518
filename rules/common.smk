# Shared by the rule files. The config, validated before any job runs; the run it asks for; the small
# input functions of the SPIN chain. The workflow's vocabulary (model names, paths, seeds, which pairs
# iteration t trains on) lives in spin_core/names.py, the typed config and the run it asks for in
# spin_core/config.py; each stage's file sets its own constants at its top.
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from analysis.report import MAP_STOPPING_TABLES, RECIPE_FIGURE, RECIPE_TABLES, figure_names, table_names  # noqa: E402
from spin_core import names  # noqa: E402
from spin_core.config import EncodingConfig, ReferenceConfig, params_json, replicate  # noqa: E402
from spin_core.configfile import key_lines, load_yaml, validate_config  # noqa: E402
from spin_core.errors import ConfigError  # noqa: E402
from spin_core.evaluate import lm_eval_versions  # noqa: E402
from spin_core.train.launch import launcher  # noqa: E402

# Validate before any job runs: the typed config (spin_core/config.py) reports each problem as one
# line naming the key and the file:line that set it, cross-key rules included, and returns the typed
# config; snakemake's validate then re-checks against the JSON Schema generated from the same models.
# Snakemake has already read the --configfile files, keeping the last of two equal keys without a
# word; reading them again with our loader gives the same file:line errors as `spin-repro validate`.
try:
    for _configfile in workflow.overwrite_configfiles:
        load_yaml(_configfile)
    CFG = validate_config(
        config,
        source=" + ".join(map(str, workflow.overwrite_configfiles)) or "config",
        lines=key_lines(workflow.overwrite_configfiles),
    )
except ConfigError as e:
    raise WorkflowError(str(e)) from None
validate(config, schema="../schemas/config.schema.json", set_default=False)


TINY = CFG.tiny
ITERATIONS = list(CFG.iterations)
MODELS = names.main_models(ITERATIONS)
NUM_SHARDS = CFG.generate.num_shards
RELEASED = CFG.released_run  # released checkpoints: imported, nothing trained
SEED_CHAINS = CFG.seed_chains  # replicate SPIN chains (tiny world), each from its own SFT model
CONTROL_ON = CFG.control_on  # the SFT-continued control (tiny world), from the main run's SFT model
ALL_MODELS = CFG.all_models  # every model that gets held-out samples, divergences and proxies
EVAL_ON = CFG.evaluation.enabled
# The map, the recipe ablation and the studies are their own targets; once they have run, the default
# target and the report keep them.
MAP_DONE = TINY and os.path.exists(names.MAP_TABLE)
RECIPES_DONE = TINY and not RELEASED and os.path.exists(names.RECIPES_SUMMARY)
STUDIES_DONE = [m for m in names.study_markers().values() if TINY and not RELEASED and os.path.exists(m)]


wildcard_constraints:
    t=r"\d+",
    k=r"\d+",
    n=r"\d+",
    chain=names.SEED_CHAIN_PATTERN,
    model=names.MODEL_PATTERN,


def asset_input(value, place):
    """An asset's folder (rules/assets.smk) when a config key names its place, else nothing (a hub id,
    a path of the user's)."""
    return place if value == place else []


def res(family, key):
    """Per-rule-family resource from config.resources (its entry, else the default entry)."""
    return CFG.resource(family, key)


def previous_model_dir(t, chain=""):
    """Iteration t starts from, and is referenced to, the previous model of its chain."""
    return names.model_dir(names.previous_model(names.model_name(t, chain)))


def for_chain(section, chain):
    """A config section with its seed shifted for a replicate chain (unchanged for the main run)."""
    return replicate(section, names.chain_replicate(chain))


def iteration_spin(wildcards, view=None):
    """Iteration t's SPIN recipe (spin.per_iteration applied), the seed shifted for a replicate chain;
    with `view`, only the keys a stage reads (config.EncodingConfig, ReferenceConfig), so that changing
    another key re-runs no job of that stage."""
    spin = for_chain(CFG.spin.for_iteration(int(wildcards.t)), wildcards.get("chain", ""))
    return spin if view is None else spin.view(view)


def spin_params(wildcards):
    """--params for a training job of iteration t: its whole recipe."""
    return params_json(spin=iteration_spin(wildcards))


def reference_params(wildcards):
    return params_json(spin=iteration_spin(wildcards, ReferenceConfig))


def generate_params(wildcards):
    """Sampling, and the prompt rule of the iteration the pairs are for."""
    chain = wildcards.get("chain", "")
    return params_json(generate=for_chain(CFG.generate, chain), spin=iteration_spin(wildcards, EncodingConfig))


# What the SFT model's training reads of the spin section: the prompt rule and lengths.
SFT_SPIN = CFG.spin.view(EncodingConfig)


def model_recipe(model):
    """The SPIN recipe of the iteration that made `model`, a model name (the base recipe for sft)."""
    return CFG.spin.for_iteration(names.parse_model(model).iteration)


def model_spin(wildcards):
    """model_recipe of {model}."""
    return model_recipe(wildcards.model)


# Jobs on the chain sft -> generate -> reference -> train -> generate ... run before side jobs
# (divergence, evaluation, the theory overlay), which only the report waits for.
CRITICAL_PATH = 10
# Rules whose jobs keep checkpoints in params.checkpoints until the run succeeds.
TRAINING_RULES = {"sft", "train", "spin_chain", "spin_chain_seed", "sft_continued", "recipe_sft"}
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


def mixed_iterations(wildcards):
    """The earlier iterations whose generated shards iteration t also trains on (mixing: t-1)."""
    t = int(wildcards.t)
    return [s for s in names.pair_source_iterations(t, CFG.spin.for_iteration(t).mix_previous_iteration) if s != t]


# ---- Tiny world: a model's measures (held-out samples, exact KL, proxies) in the job that makes it
def measure_outputs(model):
    """The files of divergence-model for `model` (a name with wildcards)."""
    return dict(
        samples=names.heldout_samples(model),
        exact=names.divergence_rows("exact", model),
        proxies=names.divergence_rows("proxies", model),
        per_prompt=names.per_prompt_rows(model),
    )


def measure_params(model):
    """--params of divergence-model for `model` (a name without wildcards): the prompt rule and lengths
    of the spin section, not its training keys (a new beta reruns no SFT job; the margin's beta is an
    option of its own, measure_ref)."""
    spin = model_recipe(model).view(EncodingConfig)
    return params_json(divergence=CFG.divergence, generate=CFG.generate, spin=spin)


def measure_ref(input, model):
    """The previous iterate of `model`, its held-out samples and the beta of the step that made `model`,
    as options of divergence-model and proxies: the real-vs-generated margin's (none for an SFT model)."""
    ref = input_args(input, only=("ref_model", "ref_samples"))
    if not ref:
        return ""
    return f"{ref} --beta {model_recipe(model).beta!r}"


# What a measure reads besides the model (tiny world).
MEASURE_INPUTS = dict(world="data/world/world.json", test="data/sft/test.jsonl") if TINY else {}
# Runs in this environment's python; a step whose launcher differs (accelerate launch) runs apart.
IN_PROCESS = shlex.join(["python", "-m", "spin_core.cli"])


def paths_of(files):
    """The paths of a rule's inputs or outputs (a dict or list of paths and lists of paths), in order."""
    out = []
    for v in files.values() if isinstance(files, dict) else files:
        out += [str(f) for f in ([v] if isinstance(v, str) else v)]
    return out


def steps_command(steps, job, input, output):
    """The commands of a job that runs several stages in a row (rules/spin_chain.smk, evaluate.smk),
    from (launcher, command) pairs with quoted arguments: consecutive steps in this python share one
    `spin-repro steps` process, which stashes each finished step under names.steps_stash(job) (keyed by
    the job's inputs and outputs so far, spin_core/cli/stash.py); a step under another launcher
    (accelerate launch, spin.gpus > 1) is its own process between them. input and output are the job's
    paths (paths_of), not Snakemake's objects: a param computed from those is "derived", and Snakemake
    does not record it, so a changed command (a new beta) would not rerun the job."""
    groups = []
    for launch, command in steps:
        if groups and launch == IN_PROCESS and groups[-1][0] == IN_PROCESS:
            groups[-1][1].append(command)
        else:
            groups.append((launch, [command]))
    stash = ["--stash", names.steps_stash(job), "--inputs", *map(str, input), "--outputs", *map(str, output), "--"]
    return " && ".join(
        f"{launch} steps {shlex.join(stash)} {' :: '.join(commands)}" if launch == IN_PROCESS else f"{launch} {commands[0]}"
        for launch, commands in groups
    )


# The shell of a several-stage job: params.steps (steps_command), its output in {log}.
STEPS_SHELL = "export OMP_NUM_THREADS={threads}; ({params.steps}) 2>&1 | tee {log:q}"


def input_args(input, skip=(), only=None):
    """Named inputs as command-line options: --name path, quoted (those in `only`, if given)."""
    return " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(str(v))}"
        for k, v in input.items()
        if k not in skip and (only is None or k in only)
    )


# ---- SPIN training
def train_launcher():
    return shlex.join(launcher(CFG.spin, workflow.basedir))


# ---- Tiny world: a SPIN chain (its SFT model, then every iteration) is one job (rules/spin_chain.smk)
TRAIN_ROWS = "data/sft/train.jsonl"
TOKENIZER = "data/world/tokenizer"


class At(dict):
    """The wildcards of iteration t of a chain, for the per-iteration param functions (rules/common.smk)."""

    __getattr__ = dict.__getitem__


def measure_step(model):
    """The measures of `model` (a name): held-out samples, exact KL and proxies, with the previous iterate
    and the beta of the step that made it for the real-vs-generated margin (none for an SFT model)."""
    out = measure_outputs(model)
    argv = ["divergence-model", "--params", measure_params(model), "--model", names.model_dir(model)]
    argv += ["--world", MEASURE_INPUTS["world"], "--test", MEASURE_INPUTS["test"]]
    ref = names.proxy_reference(model)
    if ref:
        argv += ["--ref-model", ref["ref_model"], "--ref-samples", ref["ref_samples"]]
        argv += ["--beta", repr(model_recipe(model).beta)]
    argv += ["--name", model, "--samples-out", out["samples"], "--exact-out", out["exact"]]
    argv += ["--proxies-out", out["proxies"], "--per-prompt-out", out["per_prompt"]]
    return IN_PROCESS, shlex.join(argv)


def iteration_steps(t, chain):
    """Iteration t of `chain`: generate -> reference -> train -> measure, the paper scale's commands."""
    w = At(t=str(t), chain=chain)
    model = names.model_name(t, chain)
    prev = names.previous_model(model)
    init = names.model_dir(prev)
    generated = names.generated_shards(t, NUM_SHARDS, chain)
    mixed = [f for s in mixed_iterations(w) for f in names.generated_shards(s, NUM_SHARDS, chain)]
    pairs = names.pairs_file(t, chain)
    generate = ["generate-shards", "--params", generate_params(w), "--model", init, "--prompts", TRAIN_ROWS]
    generate += ["--iteration", str(t), "--out", *generated]
    reference = ["reference", "--params", reference_params(w), "--model", init, "--pairs", *mixed, *generated]
    reference += ["--out", pairs]
    train = ["train", "--params", spin_params(w), "--pairs", pairs, "--init", init, "--out", names.model_dir(model)]
    train += ["--checkpoints", names.train_checkpoints(model), "--release-checkpoints", names.train_checkpoints(prev)]
    train += ["--metrics", names.train_metrics(model)]
    return [
        (IN_PROCESS, shlex.join(generate)),
        (IN_PROCESS, shlex.join(reference)),
        (train_launcher(), shlex.join(train)),
        measure_step(model),
    ]


def chain_steps(chain):
    """The SFT model of `chain` ("" for the main run), its measures, then every iteration."""
    sft = names.sft_model(chain)
    cfg = params_json(sft=for_chain(CFG.sft, chain), spin=SFT_SPIN)
    argv = ["sft", "--params", cfg, "--train", TRAIN_ROWS, "--tokenizer", TOKENIZER, "--out", names.model_dir(sft)]
    argv += ["--checkpoints", names.train_checkpoints(sft), "--metrics", names.train_metrics(sft)]
    steps = [(IN_PROCESS, shlex.join(argv)), measure_step(sft)]
    for t in ITERATIONS:
        steps += iteration_steps(t, chain)
    return steps


def control_steps():
    """Iteration t of the control (SFT continued for SPIN iteration t's steps), then its measures."""
    steps = []
    for t in ITERATIONS:
        model = names.model_name(t, names.CONTROL)
        cfg = params_json(spin=CFG.spin.for_iteration(t), control=CFG.convergence.control)
        argv = ["sft-continue", "--params", cfg, "--train", TRAIN_ROWS]
        argv += ["--init", names.model_dir(names.previous_model(model))]
        argv += ["--match-steps", names.train_metrics(names.model_name(t)), "--out", names.model_dir(model)]
        argv += ["--checkpoints", names.train_checkpoints(model), "--metrics", names.train_metrics(model)]
        steps += [(IN_PROCESS, shlex.join(argv)), measure_step(model)]
    return steps


def model_outputs(model, key):
    """A model's folder, training metrics and measures, as named outputs ending in _{key}."""
    files = dict(model=directory(names.model_dir(model)), metrics=names.train_metrics(model), **measure_outputs(model))
    return {f"{name}_{key}": path for name, path in files.items()}


def chain_outputs(chain=""):
    """Every file of a chain's job (chain: "" or the "{chain}" wildcard)."""
    sft = f"{chain}/{names.SFT}" if chain else names.SFT
    out = model_outputs(sft, "sft")
    for t in ITERATIONS:
        out |= model_outputs(names.model_name(t, chain), f"iter{t}")
        out[f"generated_iter{t}"] = names.generated_shards(t, NUM_SHARDS, chain)
        out[f"pairs_iter{t}"] = names.pairs_file(t, chain)
    return out


def chain_inputs():
    return dict(
        train=TRAIN_ROWS,
        tokenizer=TOKENIZER,
        pretrained=asset_input(CFG.sft.model, names.ASSET_MODEL),
        **MEASURE_INPUTS,
    )


def chain_command(w):
    chain = w.get("chain", "")
    outputs = paths_of(chain_outputs(chain))
    return steps_command(chain_steps(chain), chain_job(w), paths_of(chain_inputs()), outputs)


def control_inputs():
    """The control's: the main run's SFT model and the SPIN iterations whose steps it matches."""
    first = names.model_name(ITERATIONS[0], names.CONTROL) if ITERATIONS else None
    return dict(
        train=TRAIN_ROWS,
        init=names.model_dir(names.SFT),
        match_steps=[names.train_metrics(names.model_name(t)) for t in ITERATIONS],
        **names.proxy_reference(first) if first else {},
        **MEASURE_INPUTS,
    )


def control_outputs():
    return {k: v for t in ITERATIONS for k, v in model_outputs(names.model_name(t, names.CONTROL), f"iter{t}").items()}


def control_command(w):
    return steps_command(control_steps(), names.CONTROL, paths_of(control_inputs()), paths_of(control_outputs()))


def chain_checkpoints(chain):
    return [names.train_checkpoints(m) for m in [names.sft_model(chain), *names.chain_models(chain, ITERATIONS)]]


def chain_job(w):
    return f"spin_chain/{w.get('chain') or 'main'}"


# ---- Tiny world: every model's evaluation in one job (rules/evaluate.smk)
def eval_steps():
    """One eval-model step per model: its lm-eval tasks, MT-Bench answers and the oracle judge."""
    cfg = params_json(leaderboard=LB_FAMILY, bigbench=BB_FAMILY, mt_bench=EVAL.mt_bench)
    argv = lambda m: ["eval-model", "--params", cfg, "--model", names.model_dir(m), "--name", m,
                      "--include-path", TINY_TASK_DIR, "--questions", f"{MT_DIR}/question.jsonl",
                      "--judge-prompts", f"{MT_DIR}/judge_prompts.jsonl", "--world", "data/world/world.json",
                      "--seed", str(CFG.seed)]  # fmt: skip
    return [(IN_PROCESS, shlex.join(argv(m))) for m in MODELS]

def eval_inputs():
    return dict(
        models=[names.model_dir(m) for m in MODELS],
        tasks=TINY_TASK_FILES,
        questions=f"{MT_DIR}/question.jsonl",
        judge_prompts=f"{MT_DIR}/judge_prompts.jsonl",
        world="data/world/world.json",
    )


def eval_command(w):
    outputs = [f for m in MODELS for f in eval_outputs(m)]
    return steps_command(eval_steps(), "eval_models", paths_of(eval_inputs()), outputs)


def eval_outputs(model):
    return [
        *[names.eval_task_result("leaderboard", model, t, ext) for t in LB_TASKS for ext in ("json", "csv")],
        *[names.eval_task_result("bigbench", model, t, ext) for t in BB_TASKS for ext in ("json", "csv")],
        names.mt_bench_answers(model),
        names.mt_bench_judgments(model),
        names.mt_bench_scores(model),
    ]
