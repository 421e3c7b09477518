"""What every training run reports and checks as it goes: progress lines, and a stop on a NaN loss."""

from __future__ import annotations

import logging

import torch
from transformers import TrainerCallback

from ..errors import TrainingDivergedError

log = logging.getLogger(__name__)


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss).all():
        raise TrainingDivergedError(f"training: loss is {loss.item()} at step {step}; stopping")


class ProgressLogger(TrainerCallback):
    """Logs loss and the other logged values at each logging step (tqdm is off in logs)."""

    def __init__(self, name: str):
        self.name = name

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
            log.info("%s step %d/%d %s", self.name, state.global_step, state.max_steps, shown)
