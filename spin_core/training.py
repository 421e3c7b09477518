"""Pieces shared by the SFT and SPIN training runs: arguments, resume, checkpoint clean-up."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from .errors import SpinError, TrainingDivergedError

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


CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def complete_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Checkpoints that hold every file a resume needs, newest first.

    A job killed while Trainer was writing a checkpoint leaves a partial checkpoint-N directory;
    transformers' get_last_checkpoint would pick it and the resume would fail, so we check files.
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for path in checkpoint_dir.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
        if step.isdigit() and has_weights and all((path / f).exists() for f in CHECKPOINT_FILES):
            found.append((int(step), path))
    return [p for _, p in sorted(found, reverse=True)]


def train_resumable(trainer, checkpoint_dir: str | Path):
    """trainer.train(), resuming from the newest complete checkpoint in checkpoint_dir if any.

    Partial checkpoints (a kill during saving) are removed; if the newest complete-looking one
    still fails to load, the next older one is tried before starting from scratch.
    """
    from transformers.trainer_callback import PrinterCallback

    # ProgressLogger already reports each logging step; Trainer's printer would repeat it.
    trainer.remove_callback(PrinterCallback)
    checkpoint_dir = Path(checkpoint_dir)
    complete = complete_checkpoints(checkpoint_dir)
    for partial in set(checkpoint_dir.glob("checkpoint-*")) - set(complete):
        log.warning("removing incomplete checkpoint %s (the previous run stopped while saving it)", partial)
        shutil.rmtree(partial, ignore_errors=True)
    for ckpt in complete:
        log.info("resuming from checkpoint %s", ckpt)
        try:
            return trainer.train(resume_from_checkpoint=str(ckpt))
        except SpinError:
            raise
        except Exception as e:  # torch.load of a truncated file raises many types
            if trainer.state.global_step > int(ckpt.name.removeprefix("checkpoint-")):
                raise  # the failure came from training itself, not from loading the checkpoint
            log.warning("checkpoint %s cannot be loaded (%s); trying an older one", ckpt, e)
            shutil.rmtree(ckpt, ignore_errors=True)
    return trainer.train()


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
