"""The precision a training job computes in, and the reference pass in the same one.

Training keeps fp32 master weights; with spin.bf16 on a GPU, Trainer runs each forward under bf16
autocast, and DeepSpeed (an accelerate config with distributed_type DEEPSPEED) holds the module's
weights in bf16. The official trainer runs its reference model through that same engine, so at step 0
every margin is 0. The reference pass here is a job of its own: it scores in the precision training
will use (fp32; fp32 weights under bf16 autocast; bf16 weights), so the step-0 margins are 0 here too
instead of beta x (bf16 - fp32 error), which is fifty times larger at beta 5 than at beta 0.1."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import yaml

FLOAT32, AUTOCAST_BF16, BFLOAT16 = "float32", "autocast-bf16", "bfloat16"


def bf16_training(spin) -> bool:
    """Whether training computes in bf16: spin.bf16 on a GPU (on a CPU, bf16 would be autocast, a
    different computation from the fp32 the tiny world is measured in)."""
    return bool(spin.bf16) and torch.cuda.is_available()


def deepspeed_training(spin) -> bool:
    """Whether training runs under DeepSpeed (more than one process, a DEEPSPEED accelerate config)."""
    from .launch import DEFAULT_ACCELERATE_CONFIG

    if spin.gpus <= 1:
        return False
    path = Path(spin.accelerate_config or DEFAULT_ACCELERATE_CONFIG)
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parents[2] / path
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("distributed_type") == "DEEPSPEED"
    except OSError:
        return False


def reference_precision(spin) -> str:
    """How the reference pass computes: as training's forward does."""
    if not bf16_training(spin):
        return FLOAT32
    return BFLOAT16 if deepspeed_training(spin) else AUTOCAST_BF16


def weights_dtype(precision: str) -> str:
    return "bfloat16" if precision == BFLOAT16 else "float32"


def forward_context(precision: str):
    """The autocast training's forward runs under (none for fp32 and for bf16 weights)."""
    if precision != AUTOCAST_BF16:
        return contextlib.nullcontext()
    return torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16)
