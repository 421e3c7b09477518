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
TRAINING_RULES = {"sft", "sft_chain", "train", "iteration", "iteration_chain", "sft_continued", "recipe_sft"}
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
MEASURE_STEP = (
    IN_PROCESS,
    "divergence-model --params {params.measure:q} --model {output.model:q} --world {input.world:q}"
    " --test {input.test:q} {params.ref} --name {params.name:q} --samples-out {output.samples:q}"
    " --exact-out {output.exact:q} --proxies-out {output.proxies:q} --per-prompt-out {output.per_prompt:q}",
)


def one_process(steps):
    """The shell command of a job that runs several stage commands in a row, as (launcher, command)
    pairs, launcher the argv prefix of the command (IN_PROCESS, or train_launcher()'s: its text is
    params.launcher): consecutive steps of this python share one `spin-repro steps` process
    (spin_core/cli/); a step under accelerate launch (spin.gpus > 1) is its own process between
    them. The job's output goes to {log}."""
    groups = []
    for launch, command in steps:
        if groups and launch == IN_PROCESS and groups[-1][0] == IN_PROCESS:
            groups[-1][1].append(command)
        else:
            groups.append((launch, [command]))
    commands = [
        f"{launch if launch == IN_PROCESS else '{params.launcher}'} {'steps ' if len(cmds) > 1 else ''}{' :: '.join(cmds)}"
        for launch, cmds in groups
    ]
    if len(commands) == 1:  # one stage: the command line the rule had before
        return f"OMP_NUM_THREADS={{threads}} {commands[0]} 2>&1 | tee {{log:q}}"
    return "export OMP_NUM_THREADS={threads}; (" + " && ".join(commands) + ") 2>&1 | tee {log:q}"


def iteration_steps():
    """generate -> reference -> train -> measure: the commands of the paper scale's separate rules."""
    generate = (
        "generate-shards --params {params.generate:q} --model {input.init:q} --prompts {input.prompts:q}"
        " --iteration {wildcards.t} --out {output.generated:q}"
    )
    reference = "reference --params {params.reference:q} --model {input.init:q} --pairs {params.pairs} --out {output.pairs:q}"
    train = (
        "train --params {params.train:q} --pairs {output.pairs:q} --init {input.init:q} --out {output.model:q}"
        " --checkpoints {params.checkpoints:q} --release-checkpoints {params.release:q} --metrics {output.metrics:q}"
    )
    return [(IN_PROCESS, generate), (IN_PROCESS, reference), (train_launcher(), train), MEASURE_STEP]


def iteration_outputs(chain=""):
    model = names.model_name("{t}", chain)
    return dict(
        generated=generate_outputs(chain),
        pairs=names.pairs_file("{t}", chain),
        model=directory(names.model_dir(model)),
        metrics=names.train_metrics(model),
        **measure_outputs(model),
    )


def iteration_inputs(w):
    chain = w.get("chain", "")
    model = names.model_name(w.t, chain)
    return dict(
        names.proxy_reference(model),
        init=previous_model_dir(w.t, chain),
        prompts="data/sft/train.jsonl",
        mixed=[f for s in mixed_iterations(w) for f in names.generated_shards(s, NUM_SHARDS, chain)],
        **MEASURE_INPUTS,
    )


# The control's iteration t, then its measures (as rules/iteration.smk does for SPIN's).
CONTROL_STEPS = [
    (
        IN_PROCESS,
        "sft-continue --params {params.cfg:q} --train {input.train:q} --init {input.init:q}"
        " --match-steps {input.match_steps:q} --out {output.model:q} --checkpoints {params.checkpoints:q}"
        " --metrics {output.metrics:q}",
    ),
    MEASURE_STEP,
]


def control_inputs(w):
    model = names.model_name(w.t, names.CONTROL)
    return dict(
        names.proxy_reference(model),
        train="data/sft/train.jsonl",
        init=previous_model_dir(w.t, names.CONTROL),
        match_steps=names.train_metrics(names.model_name(w.t)),
        **MEASURE_INPUTS,
    )


def sft_steps():
    sft = (
        "sft --params {params.cfg:q} --train {input.train:q} {params.tokenizer} --out {output.model:q}"
        " --checkpoints {params.checkpoints:q} --metrics {output.metrics:q}"
    )
    return [(IN_PROCESS, sft), *([MEASURE_STEP] if TINY else [])]


def sft_measure_outputs(model):
    return measure_outputs(model) if TINY else {}


def sft_measure_params(model):
    return dict(measure=measure_params(model), name=model, ref="") if TINY else {}


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


