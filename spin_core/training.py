"""Pieces shared by the SFT and SPIN training runs: arguments, resume, checkpoint clean-up."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from .errors import TrainingDivergedError

log = logging.getLogger(__name__)


def training_arguments(checkpoint_dir: str | Path, **kw):
    """transformers.TrainingArguments with our defaults: no hub, no external loggers, resumable."""
    from transformers import TrainingArguments

    warmup_ratio = kw.pop("warmup_ratio", 0.0)
    defaults = dict(
        output_dir=str(checkpoint_dir),
        # transformers 5 takes a ratio in [0, 1) through warmup_steps.
        warmup_steps=float(warmup_ratio),
        report_to=[],
        remove_unused_columns=False,
        save_strategy="steps",
        save_total_limit=1,
        logging_strategy="steps",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    defaults.update(kw)
    return TrainingArguments(**defaults)


def train_resumable(trainer, checkpoint_dir: str | Path):
    """trainer.train(), resuming from the newest complete checkpoint in checkpoint_dir if any."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    # ProgressLogger already reports each logging step; Trainer's printer would repeat it.
    trainer.remove_callback(PrinterCallback)

    checkpoint_dir = Path(checkpoint_dir)
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if last:
        log.info("resuming from checkpoint %s", last)
    return trainer.train(resume_from_checkpoint=last)


def remove_checkpoints(checkpoint_dir: str | Path) -> None:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss).all():
        raise TrainingDivergedError(f"training: loss is {loss.item()} at step {step}; stopping")


class ProgressLogger:
    """A TrainerCallback that logs loss and speed at each logging step (tqdm is off in logs)."""

    def __new__(cls, name: str):
        from transformers import TrainerCallback

        class _Progress(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and state.is_world_process_zero:
                    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
                    log.info("%s step %d/%d %s", name, state.global_step, state.max_steps, shown)

        return _Progress()
