"""The command a training job runs: one process, or `accelerate launch` over spin.gpus processes
(DDP or DeepSpeed ZeRO-3, per the accelerate config), with the precision taken from spin.bf16."""

from __future__ import annotations

from pathlib import Path

from ..config import SpinConfig

DEFAULT_ACCELERATE_CONFIG = "config/accelerate/deepspeed_zero3.yaml"


def launcher(spin: SpinConfig, base_dir: str | Path | None = None) -> list[str]:
    """argv prefix before the CLI command (`train ...`). The accelerate config decides the engine;
    --mixed_precision always comes from spin.bf16, so the config file cannot disagree with the
    trainer (DeepSpeed stops on "bf16.enabled=True vs hf bf16=False"). A relative accelerate config
    that is not in the working directory is taken from base_dir (the repository: config/accelerate/)."""
    if spin.gpus <= 1:
        return ["python", "-m", "spin_core.cli"]
    config = spin.accelerate_config or DEFAULT_ACCELERATE_CONFIG
    if base_dir is not None and not Path(config).is_absolute() and not Path(config).exists():
        config = str(Path(base_dir) / config)
    return [
        "accelerate", "launch",
        "--config_file", config,
        "--num_processes", str(spin.gpus),
        "--mixed_precision", "bf16" if spin.bf16 else "no",
        "-m", "spin_core.cli",
    ]  # fmt: skip
