"""Resuming a training run from its newest complete checkpoint, and dropping checkpoints once done."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import SpinError
from ..io import disk_full_named

log = logging.getLogger(__name__)


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
        if step.isdigit() and (_trainer_checkpoint(path) or _deepspeed_checkpoint(path)):
            found.append((int(step), path))
    return [p for _, p in sorted(found, reverse=True)]


def _trainer_checkpoint(path: Path) -> bool:
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    return has_weights and all((path / f).exists() for f in CHECKPOINT_FILES)


def _deepspeed_checkpoint(path: Path) -> bool:
    """DeepSpeed saves its own state: a `latest` file naming a global_stepN/ folder of optimizer and
    model shards (no optimizer.pt), beside Trainer's trainer_state.json and scheduler."""
    latest = path / "latest"
    if not latest.is_file() or not (path / "trainer_state.json").exists():
        return False
    tag = path / latest.read_text().strip()
    return tag.is_dir() and any(tag.glob("*optim_states.pt")) and any(tag.glob("*model_states.pt"))


def train_resumable(trainer, checkpoint_dir: str | Path):
    """_train_resumable, a checkpoint save on a full disk reported as OSError(ENOSPC) naming the folder."""
    with disk_full_named(checkpoint_dir):
        return _train_resumable(trainer, checkpoint_dir)


def _train_resumable(trainer, checkpoint_dir: str | Path):
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
