"""What every training run reports and checks as it goes: progress lines, a stop on a NaN loss, and the
loss over the whole run (also across a resume)."""

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


class LogAtSavesAndEnd(TrainerCallback):
    """Forces a log entry at every checkpoint and at the last step, so the logged windows tile the run:
    a checkpoint's log_history then ends where its steps end, and run_mean_loss can weight each window
    by its steps. Runs after transformers' DefaultFlowCallback, which sets should_save first."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save or state.global_step >= state.max_steps:
            control.should_log = True


def training_callbacks(name: str) -> list[TrainerCallback]:
    return [ProgressLogger(name), LogAtSavesAndEnd()]


def run_mean_loss(log_history: list[dict]) -> float:
    """Mean training loss per step over the whole run, from the logged windows.

    Each logged "loss" is the mean over the steps since the previous log. Trainer's own training_loss
    only sums the steps this process ran, so after a resume it is wrong (0.0 when resumed at the last
    step); the log history is saved in every checkpoint and covers the run from step 0.
    """
    windows = sorted({h["step"]: h["loss"] for h in log_history if "loss" in h and "step" in h}.items())
    total, previous = 0.0, 0
    for step, loss in windows:
        total += loss * (step - previous)
        previous = step
    return total / previous if previous else float("nan")
