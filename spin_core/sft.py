"""The `sft` model: trained briefly on the tiny world (the weak start), or taken as published."""

from __future__ import annotations

import logging
from pathlib import Path

from .config import SFTConfig, SpinConfig
from .data import first_exchange, load_sft
from .logprobs import collate_sequences, encode_prompt, encode_response, truncate_pair
from .modeling import build_tiny_model, save_model
from .tokenizer import non_response_token_ids
from .training import ProgressLogger, check_finite, remove_checkpoints, train_resumable, training_arguments

log = logging.getLogger(__name__)


def encode_sft_rows(rows: list[dict], tokenizer, max_length: int, max_prompt_length: int) -> list[dict]:
    out = []
    for i, row in enumerate(rows, start=1):
        user, assistant = first_exchange(row["messages"], f"row {i}")
        p, r = truncate_pair(
            encode_prompt(tokenizer, user), encode_response(tokenizer, assistant), max_length, max_prompt_length
        )
        out.append({"prompt_ids": p, "response_ids": r})
    return out


def _sft_collator(pad_id: int):
    def collate(examples):
        batch = collate_sequences([e["prompt_ids"] for e in examples], [e["response_ids"] for e in examples], pad_id)
        return batch

    return collate


def train_sft(
    cfg: SFTConfig,
    train_path: str | Path,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    max_length: int,
    max_prompt_length: int,
) -> dict:
    """Train a tiny LlamaForCausalLM from random init on the SFT split (response tokens only)."""

    from .modeling import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    rows = load_sft(train_path)
    examples = encode_sft_rows(rows, tokenizer, max_length, max_prompt_length)
    model = build_tiny_model(cfg.architecture, tokenizer, non_response_token_ids(tokenizer), cfg.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("sft: %d examples, tiny Llama with %.2fM parameters", len(examples), n_params / 1e6)
    args = training_arguments(
        checkpoint_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_steps=50,
        seed=cfg.seed,
        data_seed=cfg.seed,
    )
    result = _train_nll(model, tokenizer, examples, args, checkpoint_dir, out_dir, "sft")
    return {"train_loss": result.training_loss, "steps": result.global_step, "parameters": n_params}


def _train_nll(model, tokenizer, examples, args, checkpoint_dir, out_dir, name: str):
    """Supervised training on response tokens (resumable), then save and drop the checkpoints."""
    from transformers import Trainer

    class _SFTTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            check_finite(out[0] if return_outputs else out, self.state.global_step)
            return out

    trainer = _SFTTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=_sft_collator(tokenizer.pad_token_id),
        callbacks=[ProgressLogger(name)],
    )
    result = train_resumable(trainer, checkpoint_dir)
    save_model(trainer.model, tokenizer, out_dir)
    remove_checkpoints(checkpoint_dir)
    return result


def continue_sft(
    spin: SpinConfig,
    learning_rate: float,
    steps: int,
    train_path: str | Path,
    init_model_dir: str | Path,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    metrics_path: str | Path,
) -> dict:
    """The compute-matched control: from `init_model_dir`, `steps` more supervised steps on the
    same prompts' human responses, with SPIN's optimiser, schedule and batch size, so the only
    difference from a SPIN iteration is the objective."""
    from .io import write_json
    from .modeling import load_model

    model, tokenizer = load_model(init_model_dir, dtype="float32")
    examples = encode_sft_rows(load_sft(train_path), tokenizer, spin.max_length, spin.max_prompt_length)
    log.info(
        "sft_continued: %d examples, %d steps at lr %g from %s", len(examples), steps, learning_rate, init_model_dir
    )
    args = training_arguments(
        checkpoint_dir,
        learning_rate=learning_rate,
        max_steps=steps,
        per_device_train_batch_size=spin.per_device_train_batch_size,
        gradient_accumulation_steps=spin.gradient_accumulation_steps,
        warmup_ratio=spin.warmup_ratio,
        lr_scheduler_type=spin.lr_scheduler_type,
        optim=spin.optim,
        weight_decay=spin.weight_decay,
        logging_steps=spin.logging_steps,
        save_steps=spin.save_steps,
        seed=spin.seed,
        data_seed=spin.seed,
    )
    result = _train_nll(model, tokenizer, examples, args, checkpoint_dir, out_dir, "sft_continued")
    final = {"train_loss": result.training_loss, "global_step": result.global_step, "n_examples": len(examples)}
    write_json(metrics_path, {"final": final})
    return final


def import_pretrained(model: str, revision: str | None, out_dir: str | Path) -> None:
    """Paper scale: materialise a published SFT model (hub id or local path) as models/sft."""
    import shutil

    from .io import atomic_dir
    from .modeling import check_model_dir

    src = Path(model)
    with atomic_dir(out_dir) as tmp:
        if src.is_dir():
            check_model_dir(src)
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        else:
            from huggingface_hub import snapshot_download

            log.info("downloading %s@%s", model, revision)
            snapshot_download(model, revision=revision, local_dir=str(tmp))
        check_model_dir(tmp)
