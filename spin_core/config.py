"""The config, typed: one frozen dataclass per section, each default written once, parsed in one place.

`schemas/config.schema.yaml` is the contract a config file must meet: Snakemake validates against it
before any job runs, and so does `validate_config`. The dataclasses give every stage typed access and
check what a schema cannot say (iterations 0..n, cross-key rules). Rules hand sections to a stage as
one JSON object (`params_json`); the command line parses each back with `parse_section`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .names import replicate_seed_offset

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


# ---------------------------------------------------------------- parsing
def _key(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def parse_section(cls, data, where: str):
    """A mapping (from YAML or JSON; None for all defaults) as a `cls` dataclass, nested sections
    included. Unknown keys and values of the wrong type are ConfigErrors naming `where.key`; the
    class's own `check(where)`, if any, then checks its ranges."""
    if isinstance(data, cls):
        return data
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}")
    hints = _hints(cls)
    try:
        obj = cls(**{k: _convert(hints[k], v, _key(where, k)) for k, v in data.items()})
    except TypeError as e:  # a required key is missing
        raise ConfigError(f"{where or 'config'}: {e}") from None
    if hasattr(obj, "check"):
        obj.check(where)
    return obj


def _convert(tp, value, where: str):
    """`value` as type `tp` (JSON turns tuples into lists and int keys into strings: undo that)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, where)
        if any(isinstance(value, a) and not (a is int and isinstance(value, bool)) for a in options):
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {[a.__name__ for a in options]}")
    if dataclasses.is_dataclass(tp):
        return parse_section(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_types = [args[0]] * len(value) if origin is list or args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{where}: expected {len(item_types)} values, got {len(value)}")
        return origin(_convert(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args
        return {_convert_key(key_type, k, where): _convert(value_type, v, _key(where, k)) for k, v in value.items()}
    return _convert_scalar(tp, value, where)


def _convert_key(tp, key, where: str):
    if tp is int and isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return _convert_scalar(tp, key, where)


def _convert_scalar(tp, value, where: str):
    if tp is Any or tp is dict:
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: {value!r} is not of type {tp.__name__}")


def _positive(where: str, **values) -> None:
    for k, v in values.items():
        if v is None or v <= 0:
            raise ConfigError(f"{_key(where, k)}: must be > 0, got {v!r}")


def _one_of(where: str, key: str, value, options: tuple) -> None:
    if value not in options:
        raise ConfigError(f"{_key(where, key)}: must be one of {list(options)}, got {value!r}")


def params_json(**sections) -> str:
    """Config sections (dataclasses or plain values) as the JSON object a stage reads from --params;
    each key is the name of the stage function's parameter that takes it."""

    def plain(v):
        return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v

    text = json.dumps({k: plain(v) for k, v in sections.items()}, sort_keys=True)
    # Snakemake fills "{name}" in a rule's string params as wildcards: inside JSON strings (e.g.
    # generate.prompt_template's "{prompt}") write braces as \u escapes, which JSON decodes back.
    return _JSON_STRING.sub(lambda m: m.group(0).replace("{", "\\u007b").replace("}", "\\u007d"), text)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


# ---------------------------------------------------------------- sections
@dataclass(frozen=True)
class WorldConfig:
    """The tiny world's parameters; spin_core/world/world.py says what each one scales."""

    seed: int = 1234
    n_words: int = 40
    prompt_min_words: int = 2
    prompt_max_words: int = 5
    bigram_scale: float = 2.5
    skipgram_scale: float = 1.0
    topic_scale: float = 1.5
    mood_scale: float = 1.0
    length_base: float = 3.0
    length_per_prompt_word: float = 2.0
    stop_sharpness: float = 0.8
    stop_word_scale: float = 0.5

    def check(self, where="world"):
        if self.prompt_min_words < 1 or self.prompt_max_words < self.prompt_min_words:
            raise ConfigError(f"{where}.prompt_min_words/prompt_max_words: need 1 <= min <= max")


@dataclass(frozen=True)
class DataConfig:
    """SFT data: sampled from the tiny world, or the first exchange of UltraChat-200k rows."""

    source: str = "tiny_world"  # tiny_world | ultrachat
    n_train: int = 2000
    n_test: int = 200
    seed: int = 0
    dataset: str | None = None  # hub id (ultrachat)
    revision: str | None = None
    train_split: str = "train_sft"
    test_split: str = "test_sft"

    def check(self, where="data"):
        _one_of(where, "source", self.source, ("tiny_world", "ultrachat"))
        if self.source == "ultrachat" and not self.dataset:
            raise ConfigError(f"{where}.dataset: required when {where}.source is 'ultrachat'")


SFT_STARTS = ("saturated", "weak")


@dataclass(frozen=True)
class SFTConfig:
    """How the `sft` model comes to be: trained here (tiny world) or taken from a hub id or path.
    Fields named as transformers.TrainingArguments' go to it as they are (train/arguments.py)."""

    mode: str = "train"  # train | pretrained
    model: str | None = None  # hub id or path when mode == pretrained
    revision: str | None = None
    architecture: dict = field(default_factory=dict)  # LlamaConfig kwargs when mode == train
    # saturated: trained to its best held-out NLL (early stopping within max_epochs), where the paper
    # starts (one more SFT epoch lowers its scores, Table 5); weak: num_train_epochs only.
    start: str = "saturated"
    validation_rows: int = 200  # the SFT split's last rows, held out from SFT training for its NLL
    max_epochs: float = 20.0  # saturated: the budget early stopping stops within
    patience: int = 2  # saturated: epochs without a lower held-out NLL before stopping
    learning_rate: float = 3e-3
    num_train_epochs: float = 1.0  # weak start
    max_steps: int = -1
    per_device_train_batch_size: int = 32
    warmup_ratio: float = 0.0
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.0
    logging_steps: int = 10
    save_steps: int = 50
    seed: int = 42

    def check(self, where="sft"):
        _one_of(where, "mode", self.mode, ("train", "pretrained"))
        _one_of(where, "start", self.start, SFT_STARTS)
        if self.mode == "pretrained" and not self.model:
            raise ConfigError(f"{where}.model: required when {where}.mode is 'pretrained'")
        if self.mode == "train":
            _positive(
                where, learning_rate=self.learning_rate, per_device_train_batch_size=self.per_device_train_batch_size
            )


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling y' from the previous iterate (defaults: the official code's vLLM settings)."""

    backend: str = "hf"  # hf | vllm
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    batch_size: int = 64
    num_shards: int = 1
    seed: int = 42
    dtype: str = "float32"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    # How the prompt is shown: "chat" = the model's chat template (what SPIN trains on); otherwise a
    # format with {prompt}, e.g. the official generate.py's "### Instruction: {prompt}\n\n### Response: ".
    prompt_template: str = "chat"
    # sample: temperature / top_p (temperature 0 = greedy); model: the model's own generation_config,
    # as the official generate.py, which calls generate() with max_new_tokens only.
    decoding: str = "sample"

    def check(self, where="generate"):
        _one_of(where, "backend", self.backend, ("hf", "vllm"))
        _one_of(where, "decoding", self.decoding, ("sample", "model"))
        if self.prompt_template != "chat" and self.prompt_template.count("{prompt}") != 1:
            raise ConfigError(
                f"{where}.prompt_template: 'chat' or a text with {{prompt}} once, got {self.prompt_template!r}"
            )
        if self.temperature < 0:
            raise ConfigError(f"{where}.temperature: must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"{where}.top_p: must be in (0, 1], got {self.top_p}")
        _positive(where, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, num_shards=self.num_shards)


@dataclass(frozen=True)
class SpinConfig:
    """One SPIN iteration's recipe. Fields named as transformers.TrainingArguments' go to it as they
    are (train/arguments.py); the rest are SPIN's own."""

    beta: float = 0.1
    loss: str = "logistic"  # logistic | hinge
    mix_previous_iteration: bool = True
    learning_rate: float = 5e-7
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.1
    optim: str = "rmsprop"
    weight_decay: float = 0.0
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    bf16: bool = False
    packing: bool = True  # prefix-shared packing (train/packing.py); false: two padded rows per pair
    max_length: int = 1024
    max_prompt_length: int = 512
    long_prompts: str = "truncate"  # prompts over max_prompt_length: truncate (keep the end) | skip
    invalid_rows: str = "error"  # empty prompts/responses, unknown words: error (file, row, field) | skip
    seed: int = 42
    logging_steps: int = 10
    save_strategy: str = "steps"  # steps | epoch
    save_steps: int = 50
    save_total_limit: int | None = 1  # checkpoints kept while training (None: all)
    keep_checkpoints: bool = False  # keep them after the final model is saved
    ref_batch_size: int = 64
    dataloader_num_workers: int = 0
    gpus: int = 1
    accelerate_config: str | None = None
    # iteration -> settings replacing the ones above for that iteration (the paper lowers the learning
    # rate at iterations 2-3 and raises beta at 3); for_iteration(t) gives an iteration's recipe.
    per_iteration: dict[int, dict] = field(default_factory=dict)

    def for_iteration(self, t: int) -> SpinConfig:
        """The recipe of iteration t: these settings with per_iteration[t] applied (t < 0: the base)."""
        overrides = self.per_iteration.get(int(t), {}) if t >= 0 else {}
        return dataclasses.replace(self, **overrides, per_iteration={})

    def check(self, where="spin"):
        for t, overrides in self.per_iteration.items():
            if t < 0 or not isinstance(overrides, dict):
                raise ConfigError(
                    f"{where}.per_iteration: keys are iterations (0, 1, ...) mapping to settings, got {t!r}"
                )
            bad = sorted(
                set(overrides) - {f.name for f in dataclasses.fields(self)} | ({"per_iteration"} & set(overrides))
            )
            if bad:
                raise ConfigError(f"{where}.per_iteration.{t}: unknown key(s) {bad}")
            merged = {**dataclasses.asdict(self), **overrides, "per_iteration": {}}
            parse_section(SpinConfig, merged, f"{where}.per_iteration.{t}")
        _one_of(where, "loss", self.loss, ("logistic", "hinge"))
        _one_of(where, "long_prompts", self.long_prompts, ("truncate", "skip"))
        _one_of(where, "invalid_rows", self.invalid_rows, ("error", "skip"))
        _positive(
            where,
            beta=self.beta,
            learning_rate=self.learning_rate,
            num_train_epochs=self.num_train_epochs,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_length=self.max_length,
            max_prompt_length=self.max_prompt_length,
        )
        if self.max_prompt_length >= self.max_length:
            raise ConfigError(f"{where}.max_prompt_length: must be smaller than {where}.max_length")


@dataclass(frozen=True)
class DivergenceConfig:
    """Held-out sampling and the Monte Carlo divergence estimates (exact KL on the tiny world)."""

    n_prompts: int = 200
    samples_per_prompt: int = 4
    max_new_tokens: int = 64
    batch_size: int = 128
    seed: int = 0

    def check(self, where="divergence"):
        _positive(
            where,
            n_prompts=self.n_prompts,
            samples_per_prompt=self.samples_per_prompt,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
        )


@dataclass(frozen=True)
class ControlConfig:
    """The SFT-continued control: as many supervised steps as each SPIN iteration."""

    enabled: bool = False
    learning_rate: float | None = None  # None: spin.learning_rate, so only the objective differs


@dataclass(frozen=True)
class TheoryBudget:
    lr: float
    steps: int


@dataclass(frozen=True)
class TheoryConfig:
    """The tabular theory overlay (divergence/theory.py) on an enumerable world."""

    n_words: int = 3
    budget: int = 4  # token budget T: events are <T words + stop, or T words
    n_prompts: int = 4
    world_seed: int = 1234
    prompt_seed: int = 0
    init_temperature: float = 2.0  # the start p_0 ∝ p_data^(1/temperature): a flatter, weaker model
    iterations: int = 6
    betas: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0)
    budgets: tuple[TheoryBudget, ...] = (TheoryBudget(0.5, 20), TheoryBudget(2.0, 20), TheoryBudget(2.0, 100))


@dataclass(frozen=True)
class MapBudget:
    learning_rate: float
    epochs: float


@dataclass(frozen=True)
class MapConfig:
    """The convergence map (divergence/convergence_map.py): beta x training budget, one job a cell."""

    iterations: int = 6
    n_prompts: int = 1000  # SFT prompts per iteration (a subset keeps a cell to about a minute)
    betas: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0)
    budgets: tuple[MapBudget, ...] = (MapBudget(1e-4, 1), MapBudget(1e-4, 3), MapBudget(1e-3, 3))
    divergence_prompts: int = 200
    divergence_samples: int = 4

    def cells(self) -> list[tuple[float, float, float]]:
        """(beta, learning_rate, epochs) of every cell."""
        return [(b, budget.learning_rate, budget.epochs) for b in self.betas for budget in self.budgets]


def replicate(section, seed: int):
    """A config section with its seed shifted for replicate `seed` of a study (0: unchanged)."""
    return dataclasses.replace(section, seed=section.seed + replicate_seed_offset(seed))


@dataclass(frozen=True)
class RecipeVariant:
    """A recipe of the ablation: settings replacing the main run's spin / generate keys."""

    spin: dict = field(default_factory=dict)
    generate: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RecipesConfig:
    """The recipe ablation (divergence/recipes.py): each variant of the SPIN recipe from each SFT start,
    `seeds` times (each seed trains its own SFT model and samples with its own seed), exact KL after
    every iteration; with `control`, the SFT-continued control matched to the first variant's steps."""

    iterations: int = 4
    n_prompts: int = 1000  # SFT prompts per iteration (a subset, as in the map)
    seeds: int = 3
    starts: tuple[str, ...] = SFT_STARTS
    divergence_prompts: int = 200
    divergence_samples: int = 4
    control: bool = True
    variants: dict[str, RecipeVariant] = field(default_factory=lambda: {"official": RecipeVariant()})

    def check(self, where="convergence.recipes"):
        for start in self.starts:
            _one_of(where, "starts", start, SFT_STARTS)
        for name in self.variants:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name == "sft_continued":
                raise ConfigError(
                    f"{where}.variants.{name}: names are lowercase words (a-z, 0-9, _), not sft_continued"
                )
        if not self.variants:
            raise ConfigError(f"{where}.variants: at least one recipe")

    @staticmethod
    def sft_for(sft: SFTConfig, start: str, seed: int) -> SFTConfig:
        """The SFT section of one start and seed: its own init and data order per seed."""
        return replicate(dataclasses.replace(sft, start=start), seed)

    def recipe(self, name: str, spin: SpinConfig, generate: GenerateConfig) -> tuple[SpinConfig, GenerateConfig]:
        """The main run's spin and generate sections with variant `name`'s settings in place."""
        v = self.variants[name]
        where = f"convergence.recipes.variants.{name}"
        spin = parse_section(SpinConfig, {**dataclasses.asdict(spin), **v.spin}, f"{where}.spin")
        generate = parse_section(GenerateConfig, {**dataclasses.asdict(generate), **v.generate}, f"{where}.generate")
        return spin, generate


@dataclass(frozen=True)
class ConvergenceConfig:
    """The convergence study on the tiny world: seed chains, the control, theory, the map, the recipes."""

    seeds: int = 1  # SPIN chains; the first is the main run
    control: ControlConfig = field(default_factory=ControlConfig)
    theory: TheoryConfig = field(default_factory=TheoryConfig)
    map: MapConfig = field(default_factory=MapConfig)
    recipes: RecipesConfig = field(default_factory=RecipesConfig)


@dataclass(frozen=True)
class LmEvalTask:
    num_fewshot: int
    metrics: tuple[str, ...]
    primary: str | None = None  # the metric averaged and compared (default: the first)
    paper_name: str | None = None

    @property
    def primary_metric(self) -> str:
        return self.primary or self.metrics[0]


@dataclass(frozen=True)
class LmEvalFamily:
    """One family of lm-eval tasks (the leaderboard, Big-Bench), one job per model x task."""

    backend: str = "hf"  # hf | vllm (and tiny-world-oracle in tests)
    dtype: str = "float32"
    batch_size: int | str = 16
    limit: int | None = None
    model_args: str = ""
    # A folder of extra lm-eval task YAMLs (lm-eval's include_path); the rehearsal's local ARC copy.
    include_path: str | None = None
    tasks: dict[str, LmEvalTask] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteFile:
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ReleasedModel:
    model: str  # a hub id or a local model folder
    revision: str | None = None  # the commit to download (hub ids)


@dataclass(frozen=True)
class ReleasedConfig:
    """Published checkpoints evaluated without training: models/<name> is imported from `models`
    (sft and iter<t> for every iteration), and generation, the reference pass and training are
    skipped. Empty (the default): the workflow trains its own iterates."""

    models: dict[str, ReleasedModel] = field(default_factory=dict)


@dataclass(frozen=True)
class MTBenchConfig:
    """MT-Bench answers and single-answer grading (FastChat formats); judge oracle | openai."""

    judge: str = "oracle"
    judge_model: str = "gpt-4"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_retries: int = 5
    garbage_retries: int = 2
    judge_max_tokens: int = 2048
    max_new_tokens: int = 1024
    default_temperature: float = 0.7
    batch_size: int = 16
    questions: RemoteFile = field(default_factory=RemoteFile)
    judge_prompts: RemoteFile = field(default_factory=RemoteFile)
    reference_answers: RemoteFile = field(default_factory=RemoteFile)

    def check(self, where="evaluation.mt_bench"):
        _one_of(where, "judge", self.judge, ("oracle", "openai"))


@dataclass(frozen=True)
class TinyTasksConfig:
    n_docs: int = 100
    n_choices: int = 4
    n_mt_bench_questions: int = 16
    seed: int = 0


@dataclass(frozen=True)
class EvaluationConfig:
    enabled: bool = False
    leaderboard: LmEvalFamily = field(default_factory=LmEvalFamily)
    bigbench: LmEvalFamily = field(default_factory=LmEvalFamily)
    mt_bench: MTBenchConfig = field(default_factory=MTBenchConfig)
    tiny_tasks: TinyTasksConfig = field(default_factory=TinyTasksConfig)


@dataclass(frozen=True)
class ResourceSpec:
    mem_mb: int | None = None
    runtime: int | None = None  # minutes
    gpu: int | None = None
    threads: int | None = None


# What a rule family gets when neither its own entry nor resources.default names a value.
RESOURCE_FALLBACK = ResourceSpec(mem_mb=2000, runtime=30, gpu=0, threads=1)


@dataclass(frozen=True)
class Config:
    """A whole workflow config."""

    scale: str  # tiny | paper
    iterations: tuple[int, ...]
    data: DataConfig
    sft: SFTConfig
    generate: GenerateConfig
    spin: SpinConfig
    resources: dict[str, ResourceSpec]
    seed: int = 0
    recipe: str = "custom"  # which recipe this config follows, shown in the report (paper, official, ...)
    world: WorldConfig | None = None
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    released: ReleasedConfig = field(default_factory=ReleasedConfig)

    @property
    def tiny(self) -> bool:
        return self.scale == "tiny"

    def check(self, where=""):
        _one_of(where, "scale", self.scale, ("tiny", "paper"))
        if not self.iterations or list(self.iterations) != list(range(len(self.iterations))):
            raise ConfigError(
                f"iterations: must be the consecutive list 0..n starting at 0, got {list(self.iterations)}"
            )
        if self.tiny and self.world is None:
            raise ConfigError("world: required when scale is 'tiny'")
        if self.tiny and self.sft.mode != "train":
            raise ConfigError("sft.mode: the tiny world trains its own SFT model ('train')")
        if self.released.models:
            from .names import main_models

            wanted, given = set(main_models(list(self.iterations))), set(self.released.models)
            if wanted != given:
                raise ConfigError(
                    f"released.models: needs exactly {sorted(wanted)} (the SFT model and every iteration);"
                    f" missing {sorted(wanted - given)}, extra {sorted(given - wanted)}"
                )
        if self.tiny and self.evaluation.enabled:
            from .names import TINY_TASKS

            for family, known in TINY_TASKS.items():
                unknown = [t for t in getattr(self.evaluation, family).tasks if t not in known]
                if unknown:
                    raise ConfigError(
                        f"evaluation.{family}.tasks: {', '.join(map(repr, unknown))} not among the tiny"
                        f" world's {family} tasks ({', '.join(known)})"
                    )

    def resource(self, family: str, key: str):
        """A rule family's resource: its own entry, else resources.default, else RESOURCE_FALLBACK."""
        for spec in (self.resources.get(family), self.resources.get("default"), RESOURCE_FALLBACK):
            value = getattr(spec, key, None) if spec is not None else None
            if value is not None:
                return value
        raise KeyError(key)


# ---------------------------------------------------------------- whole files
class _DuplicateKey(Exception):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"duplicate key {key!r} (first at line {first}); YAML would silently keep the last value")
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """safe_load, except that a key repeated in one mapping is an error, not "the last one wins"."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict:
    """A config file as a dict; a problem is one ConfigError line naming the file (and line)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except _DuplicateKey as e:
        raise ConfigError(f"{path}:{e.line}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        hint = " (YAML indents with spaces, not tabs)" if "\\t" in str(e.problem) else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {e.problem or e.context}{hint}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def schema_errors(config: dict, schema_path: str | Path = SCHEMA_PATH) -> list[str]:
    """Every schema violation as 'key.path: message', sorted by path."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = []
    for err in validator.iter_errors(config):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        errors.append(f"{key}: {_explain(err, schema)}")
    return sorted(errors)


def _explain(err, schema: dict) -> str:
    """jsonschema's message, with the expected form in words where the schema describes it (a
    pattern or an anyOf of "a path ... or null" otherwise says only "not valid under any")."""

    def resolve(node):
        ref = node.get("$ref", "") if isinstance(node, dict) else ""
        return schema["$defs"][ref.removeprefix("#/$defs/")] if ref.startswith("#/$defs/") else node

    nodes = [resolve(n) for n in [err.schema, *err.schema.get("anyOf", [])]]
    described = [n.get("description") for n in nodes if isinstance(n, dict) and n.get("description")]
    if err.validator in ("pattern", "anyOf") and described:
        return f"{err.instance!r} is not {described[0]}"
    return err.message


def validate_config(config: dict, source: str = "config") -> Config:
    """Schema, then the typed parse and its checks; the typed Config, or a ConfigError naming the key."""
    errors = schema_errors(config)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    try:
        return parse_section(Config, config, "")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def validate_files(configs: list[Path], /) -> None:
    """Validate config files against the schema and the typed config."""
    for path in configs:
        validate_config(load_yaml(path), source=str(path))
        print(f"{path}: ok")
