"""Resuming a training run from its newest complete checkpoint, and dropping checkpoints once done."""

from __future__ import annotations

import json
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


def unreadable(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (its first file that does not load: truncated, empty,
    not what its name says), or None. Every file of every rank is checked, so all ranks choose the same
    checkpoint. Cheap: torch files are opened memory-mapped (a truncated zip has no central directory),
    a safetensors file is checked against the size its header declares."""
    import torch
    from safetensors import safe_open

    for f in sorted(checkpoint.rglob("*")):
        if not f.is_file():
            continue
        try:
            if f.suffix == ".json":
                json.loads(f.read_text())
            elif f.suffix == ".safetensors":
                with safe_open(str(f), "pt"):
                    pass
            elif f.suffix in (".pt", ".pth", ".bin"):
                torch.load(f, map_location="cpu", mmap=True, weights_only=False)
            elif f.name == "latest" and not (checkpoint / f.read_text().strip()).is_dir():
                return f"{f.name} names {f.read_text().strip()!r}, which is not there"
        except Exception as e:  # each loader has its own error types
            return f"{f.relative_to(checkpoint)}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return None


def train_resumable(trainer, checkpoint_dir: str | Path):
    """_train_resumable, a checkpoint save on a full disk reported as OSError(ENOSPC) naming the folder."""
    with disk_full_named(checkpoint_dir):
        return _train_resumable(trainer, checkpoint_dir)


def _train_resumable(trainer, checkpoint_dir: str | Path):
    """trainer.train(), resuming from the newest checkpoint in checkpoint_dir whose every file loads.

    Partial checkpoints (a kill during saving) and checkpoints with a file that does not load (a kill
    or a full disk while writing it) are removed, each named in the log, before anything is loaded: the
    trainer never holds part of a checkpoint it could not finish loading. Without a loadable one it
    starts from the init model and says so. A checkpoint that passes the checks and still fails to load
    stops the job with an error naming it, rather than training on from a half-loaded state."""
    from transformers.trainer_callback import PrinterCallback

    # ProgressLogger already reports each logging step; Trainer's printer would repeat it.
    trainer.remove_callback(PrinterCallback)
    checkpoint_dir = Path(checkpoint_dir)
    complete = complete_checkpoints(checkpoint_dir)
    bad = sorted(set(checkpoint_dir.glob("checkpoint-*")) - set(complete))
    for partial in bad:
        log.warning("removing incomplete checkpoint %s (the previous run stopped while saving it)", partial)
    chosen = None
    for ckpt in complete:
        problem = unreadable(ckpt)
        if problem is None:
            chosen = ckpt
            break
        log.warning("checkpoint %s cannot be loaded (%s); removing it and trying an older one", ckpt, problem)
        bad.append(ckpt)
    _remove_on_rank_zero(trainer, bad)
    if chosen is None:
        if bad:
            log.warning("no loadable checkpoint left in %s: training from the start (the init model)", checkpoint_dir)
        return trainer.train()
    log.info("resuming from checkpoint %s", chosen)
    try:
        return trainer.train(resume_from_checkpoint=str(chosen))
    except SpinError:
        raise
    except Exception as e:  # torch.load and DeepSpeed raise many types
        if trainer.state.global_step > int(chosen.name.removeprefix("checkpoint-")):
            raise  # the failure came from training itself, not from loading the checkpoint
        raise SpinError(
            f"{chosen}: the checkpoint passed the file checks but does not load ({type(e).__name__}: {e});"
            " remove it to resume from an older one or start over"
        ) from None


def _remove_on_rank_zero(trainer, paths: list[Path]) -> None:
    """Remove checkpoint folders once every rank has chosen where to resume (ranks check the same files)."""
    if not paths:
        return
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()


def remove_checkpoints(checkpoint_dir: str | Path) -> None:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
