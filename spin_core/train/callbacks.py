"""What every training run reports and checks as it goes: progress lines, and a stop on a NaN loss."""

from __future__ import annotations

import logging
import time

import torch
from transformers import TrainerCallback

from ..errors import TrainingDivergedError

log = logging.getLogger(__name__)


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss).all():
        raise TrainingDivergedError(f"training: loss is {loss.item()} at step {step}; stopping")


class ProgressLogger(TrainerCallback):
    """Logs loss and the other logged values at each logging step, with steps/s and an ETA (tqdm's
    bar is off: in a log file it would be one line per update)."""

    def __init__(self, name: str):
        self.name = name
        self.start = None  # (time, step) when this process started training (a resume starts later)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = (time.time(), state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
        t0, step0 = self.start or (time.time(), state.global_step)
        elapsed, done = time.time() - t0, state.global_step - step0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(state.max_steps - state.global_step) / rate:.0f}s" if rate > 0 else "?"
        log.info(
            "%s step %d/%d (%.3g steps/s, ETA %s) %s", self.name, state.global_step, state.max_steps, rate, eta, shown
        )
