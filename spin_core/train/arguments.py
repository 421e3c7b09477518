"""transformers.TrainingArguments built from a config section in one place: every field of the
section that TrainingArguments has goes to it under its own name, so no run copies fields by hand."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

from . import precision

# Our config keeps the names people know from the official code and the handbook; transformers 5
# renamed these two.
RENAMED = {"gradient_checkpointing": "activation_checkpointing", "warmup_ratio": "warmup_steps"}
# What every run here wants, whatever its section says: no hub, no external loggers, log lines instead
# of a progress bar, resumable checkpoints.
FIXED = dict(
    report_to=[],
    remove_unused_columns=False,
    save_strategy="steps",
    save_total_limit=1,
    logging_strategy="steps",
    disable_tqdm=True,
    dataloader_num_workers=0,
    # Every parameter takes part in every step: DDP need not search the graph for unused ones.
    ddp_find_unused_parameters=False,
)


@functools.cache
def _argument_names() -> frozenset[str]:
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


def training_arguments(section, checkpoint_dir: str | Path, **overrides):
    """TrainingArguments from `section` (a config section) plus `overrides`, checkpoints in
    checkpoint_dir. `seed` also seeds the data order; bf16 needs a GPU (on a CPU it would be
    autocast, a different computation from the fp32 the tiny world is measured in)."""
    from transformers import TrainingArguments

    values = {}
    for key in type(section).model_fields:
        name = RENAMED.get(key, key)
        if name in _argument_names():
            values[name] = getattr(section, key)
    values.update(overrides)
    # transformers 5 takes a warmup ratio in [0, 1) through warmup_steps.
    values["warmup_steps"] = float(values.get("warmup_steps", 0.0))
    if "seed" in values:
        values.setdefault("data_seed", values["seed"])
    values["bf16"] = precision.bf16_training(section) if "bf16" in values else False
    return TrainingArguments(
        output_dir=str(checkpoint_dir), use_cpu=not torch.cuda.is_available(), **{**FIXED, **values}
    )
