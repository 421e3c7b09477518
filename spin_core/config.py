"""Typed config sections, parsed in one place, and schema validation of whole config files.

`schemas/config.schema.yaml` is the source of truth for what a config may contain; Snakemake
validates against it before any job runs, and `validate_config` does the same for the CLI. The
dataclasses give the code typed access and re-check the ranges a schema cannot express.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


def _parse(cls, d: dict | None, section: str):
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {unknown}")
    try:
        return cls(**d)
    except TypeError as e:
        raise ConfigError(f"{section}: {e}") from None


def _positive(section: str, **values):
    for k, v in values.items():
        if v is None or v <= 0:
            raise ConfigError(f"{section}.{k}: must be > 0, got {v!r}")


@dataclass(frozen=True)
class SFTConfig:
    """How the `sft` model comes to be: trained here (tiny world) or taken from a hub/path."""

    mode: str = "train"  # train | pretrained
    model: str | None = None  # hub id or path when mode == pretrained
    revision: str | None = None
    architecture: dict = field(default_factory=dict)  # LlamaConfig kwargs when mode == train
    learning_rate: float = 3e-3
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 32
    warmup_ratio: float = 0.0
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.0
    logging_steps: int = 10
    seed: int = 42

    @classmethod
    def from_dict(cls, d):
        cfg = _parse(cls, d, "sft")
        if cfg.mode not in ("train", "pretrained"):
            raise ConfigError(f"sft.mode: must be 'train' or 'pretrained', got {cfg.mode!r}")
        if cfg.mode == "pretrained" and not cfg.model:
            raise ConfigError("sft.model: required when sft.mode is 'pretrained'")
        if cfg.mode == "train":
            _positive(
                "sft", learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.per_device_train_batch_size
            )
        return cfg


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

    @classmethod
    def from_dict(cls, d):
        cfg = _parse(cls, d, "generate")
        if cfg.backend not in ("hf", "vllm"):
            raise ConfigError(f"generate.backend: must be 'hf' or 'vllm', got {cfg.backend!r}")
        if cfg.temperature < 0:
            raise ConfigError(f"generate.temperature: must be >= 0, got {cfg.temperature}")
        if not 0 < cfg.top_p <= 1:
            raise ConfigError(f"generate.top_p: must be in (0, 1], got {cfg.top_p}")
        _positive("generate", max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, num_shards=cfg.num_shards)
        return cfg


@dataclass(frozen=True)
class SpinConfig:
    """One SPIN iteration's training recipe (names follow transformers.TrainingArguments)."""

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
    packing: bool = True  # prefix-shared packing (spin_core/packing.py); false: two padded rows per pair
    max_length: int = 1024
    max_prompt_length: int = 512
    long_prompts: str = "truncate"  # prompts over max_prompt_length: truncate (keep the end) | skip
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

    @classmethod
    def from_dict(cls, d):
        cfg = _parse(cls, d, "spin")
        if cfg.loss not in ("logistic", "hinge"):
            raise ConfigError(f"spin.loss: must be 'logistic' or 'hinge', got {cfg.loss!r}")
        if cfg.long_prompts not in ("truncate", "skip"):
            raise ConfigError(f"spin.long_prompts: must be 'truncate' or 'skip', got {cfg.long_prompts!r}")
        _positive(
            "spin",
            beta=cfg.beta,
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.num_train_epochs,
            per_device_train_batch_size=cfg.per_device_train_batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            max_length=cfg.max_length,
            max_prompt_length=cfg.max_prompt_length,
        )
        if cfg.max_prompt_length >= cfg.max_length:
            raise ConfigError("spin.max_prompt_length: must be smaller than spin.max_length")
        return cfg


@dataclass(frozen=True)
class DivergenceConfig:
    """Monte Carlo estimate of forward/reverse KL to p_data on held-out prompts (tiny world)."""

    n_prompts: int = 200
    samples_per_prompt: int = 4
    max_new_tokens: int = 64
    batch_size: int = 128
    seed: int = 0

    @classmethod
    def from_dict(cls, d):
        cfg = _parse(cls, d, "divergence")
        _positive(
            "divergence",
            n_prompts=cfg.n_prompts,
            samples_per_prompt=cfg.samples_per_prompt,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
        )
        return cfg


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
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
        errors.append(f"{key}: {err.message}")
    return sorted(errors)


def check_semantics(config: dict) -> None:
    """Rules a JSON schema cannot say: iterations are 0..n; sections parse into their types."""
    its = config.get("iterations")
    if its != list(range(len(its or []))) or not its:
        raise ConfigError(f"iterations: must be the consecutive list 0..n starting at 0, got {its!r}")
    SFTConfig.from_dict(config.get("sft"))
    GenerateConfig.from_dict(config.get("generate"))
    SpinConfig.from_dict(config.get("spin"))
    DivergenceConfig.from_dict(config.get("divergence"))
    if config.get("scale") == "tiny":
        if "world" not in config:
            raise ConfigError("world: required when scale is 'tiny'")
    if config.get("scale") == "tiny" and SFTConfig.from_dict(config.get("sft")).mode != "train":
        raise ConfigError("sft.mode: the tiny world trains its own SFT model ('train')")


def validate_config(config: dict, source: str = "config") -> dict[str, Any]:
    """Schema + semantic validation; raises ConfigError naming the first bad key."""
    errors = schema_errors(config)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    try:
        check_semantics(config)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return config
