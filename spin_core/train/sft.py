"""The `sft` model, trained on the tiny world to one of two starts (saturated: early stopping on a held-out
split; weak: one short run) or taken as published, and
the SFT-continued control (supervised steps from a model, as many as a SPIN iteration took)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, Trainer

from .. import names
from ..config import ControlConfig, EncodingConfig, SFTConfig, SpinConfig
from ..data import first_exchange, load_sft
from ..errors import DataError
from ..io import atomic_dir, read_json, write_json
from ..modeling import check_model_dir, load_model, load_tokenizer, save_model
from ..world.tokenizer import non_response_token_ids
from .arguments import training_arguments
from .callbacks import check_finite, run_mean_loss, training_callbacks
from .encoding import bound_prompts, encode_prompt, encode_response, screen_rows, sft_row_problem, truncate_pair
from .logprobs import collate_sequences
from .resume import train_resumable

log = logging.getLogger(__name__)

SFT_CHECKPOINTS = Path(names.train_checkpoints(names.SFT))


def build_tiny_model(architecture: dict, tokenizer, suppress_ids: list[int], seed: int):
    """A randomly initialised LlamaForCausalLM sized by `architecture` (LlamaConfig kwargs)."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **architecture,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        suppress_tokens=list(suppress_ids) or None,
    )
    return model


def encode_sft_rows(rows: list[dict], tokenizer, spin: EncodingConfig, stage: str, where: str) -> list[dict]:
    """SFT rows as prompt and response tokens, under the prompt rule (train/encoding.bound_prompts)."""
    turns = [first_exchange(row["messages"], f"{where}: row {i}") for i, row in enumerate(rows, start=1)]
    prompts = [encode_prompt(tokenizer, user, spin.system_turn) for user, _ in turns]
    keep, _ = bound_prompts(prompts, spin, stage, where)
    out = []
    for i in keep:
        p, r = truncate_pair(
            prompts[i], encode_response(tokenizer, turns[i][1]), spin.max_length, spin.max_prompt_length
        )
        out.append({"prompt_ids": p, "response_ids": r})
    return out


def _sft_collator(pad_id: int):
    def collate(examples):
        return collate_sequences([e["prompt_ids"] for e in examples], [e["response_ids"] for e in examples], pad_id)

    return collate


class NLLTrainer(Trainer):
    """transformers' Trainer (its causal-LM loss on the response tokens), stopping on a NaN loss."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        check_finite(out[0] if return_outputs else out, self.state.global_step)
        return out


def _train_nll(model, tokenizer, examples, args, checkpoint_dir, out_dir, name: str, held_out=None, callbacks=()):
    """Supervised training on response tokens (resumable), then save. The checkpoints stay until the
    workflow has accepted the model (release_checkpoints): a rerun then resumes at the last step.
    Returns the trainer (its state holds the log history)."""
    trainer = NLLTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        eval_dataset=held_out,
        data_collator=_sft_collator(tokenizer.pad_token_id),
        callbacks=training_callbacks(name) + list(callbacks),
    )
    train_resumable(trainer, checkpoint_dir)
    save_model(trainer.model, tokenizer, out_dir)
    return trainer


def split_validation(examples: list, validation_rows: int, where: str) -> tuple[list, list]:
    """The SFT split's last `validation_rows` rows are held out (both starts): the NLL that early
    stopping watches, and a record of how far each start got."""
    if validation_rows >= len(examples):
        raise DataError(
            f"{where}: sft.validation_rows is {validation_rows} but the SFT split has {len(examples)} rows;"
            " it must leave rows to train on"
        )
    return examples[:-validation_rows], examples[-validation_rows:]


def start_arguments(sft: SFTConfig) -> tuple[dict, list]:
    """TrainingArguments overrides and callbacks of a start: both measure the held-out NLL after every
    epoch; the saturated one trains up to max_epochs, stops after `patience` epochs without a new best
    and keeps the best epoch's weights (its checkpoints are per epoch, so the best one is on disk)."""
    overrides = dict(eval_strategy="epoch", per_device_eval_batch_size=256)
    if sft.start == "weak":
        return overrides, []
    overrides.update(
        num_train_epochs=sft.max_epochs,
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        # The patience counter lives in EarlyStoppingCallback: a resumed run must restore it.
        restore_callback_states_from_checkpoint=True,
    )
    return overrides, [EarlyStoppingCallback(early_stopping_patience=sft.patience)]


def validation_curve(log_history: list[dict]) -> list[dict]:
    """[{epoch, validation_nll}] from the trainer's log history (one entry per epoch evaluated)."""
    curve = {}
    for h in log_history:
        if "eval_loss" in h:
            curve[round(float(h["epoch"]), 6)] = float(h["eval_loss"])
    return [{"epoch": e, "validation_nll": v} for e, v in sorted(curve.items())]


def train_sft(
    sft: SFTConfig, spin: EncodingConfig, train: Path, tokenizer_dir: Path, out: Path, checkpoints: Path
) -> dict:
    """Train a tiny LlamaForCausalLM from random init on the SFT split (response tokens only), with
    spin's length limits, to the start sft.start names; its held-out NLL per epoch is returned."""
    tokenizer = load_tokenizer(tokenizer_dir)
    rows = screen_rows(load_sft(train), lambda r: sft_row_problem(tokenizer, r), spin.invalid_rows, str(train))
    examples = encode_sft_rows(rows, tokenizer, spin, "sft", str(train))
    fit, held_out = split_validation(examples, sft.validation_rows, str(train))
    model = build_tiny_model(sft.architecture, tokenizer, non_response_token_ids(tokenizer), sft.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "sft (%s start): %d examples, %d held out, tiny Llama with %.2fM parameters",
        sft.start, len(fit), len(held_out), n_params / 1e6,
    )  # fmt: skip
    overrides, callbacks = start_arguments(sft)
    args = training_arguments(sft, checkpoints, **overrides)
    trainer = _train_nll(model, tokenizer, fit, args, checkpoints, out, "sft", held_out, callbacks)
    curve = validation_curve(trainer.state.log_history)
    best = min(curve, key=lambda c: c["validation_nll"])
    final_nll = float(trainer.evaluate()["eval_loss"])  # the saved weights' held-out NLL
    log.info("sft (%s start): best held-out NLL %.4f at epoch %g of %g run", sft.start, best["validation_nll"],
             best["epoch"], curve[-1]["epoch"])  # fmt: skip
    return {
        "start": sft.start,
        "epochs_run": curve[-1]["epoch"],
        "best_epoch": best["epoch"] if sft.start == "saturated" else curve[-1]["epoch"],
        "validation_nll": final_nll,
        "validation_curve": curve,
        "validation_rows": len(held_out),
        "train_loss": run_mean_loss(trainer.state.log_history),
        "steps": trainer.state.global_step,
        "parameters": n_params,
    }


def make_sft_model(
    sft: SFTConfig,
    spin: EncodingConfig,
    out: Path,
    train: Path | None = None,
    tokenizer: Path | None = None,
    checkpoints: Path = SFT_CHECKPOINTS,
    metrics: Path | None = None,
) -> None:
    """Train (tiny world) or import (paper scale) the SFT model; metrics (if given) records how."""
    if sft.mode == "pretrained":
        import_pretrained(sft.model, out, sft.revision)
        final = {"start": "pretrained", "model": sft.model, "revision": sft.revision}
    else:
        if train is None or tokenizer is None:
            raise DataError("sft: --train and --tokenizer are required when sft.mode is 'train'")
        final = train_sft(sft, spin, train, tokenizer, out, checkpoints)
    if metrics is not None:
        write_json(metrics, {"final": final})


def continue_sft(
    spin: SpinConfig,
    control: ControlConfig,
    train: Path,
    init: Path,
    match_steps: Path,
    out: Path,
    checkpoints: Path,
    metrics: Path,
) -> dict:
    """The SFT-continued control for one iteration: supervised steps matched to SPIN's.

    From `init`, as many supervised steps as the SPIN iteration whose metrics.json is `match_steps`
    took, on the same prompts' human responses, with SPIN's optimiser, schedule and batch size, so the
    only difference from a SPIN iteration is the objective."""
    steps = int(read_json(match_steps)["final"]["global_step"])
    learning_rate = control.learning_rate or spin.learning_rate
    model, tokenizer = load_model(init, dtype="float32")
    rows = screen_rows(load_sft(train), lambda r: sft_row_problem(tokenizer, r), spin.invalid_rows, str(train))
    examples = encode_sft_rows(rows, tokenizer, spin, "sft-continue", str(train))
    log.info("sft_continued: %d examples, %d steps at lr %g from %s", len(examples), steps, learning_rate, init)
    args = training_arguments(spin, checkpoints, learning_rate=learning_rate, max_steps=steps)
    trainer = _train_nll(model, tokenizer, examples, args, checkpoints, out, "sft_continued")
    final = {"train_loss": run_mean_loss(trainer.state.log_history), "global_step": trainer.state.global_step,
             "n_examples": len(examples)}  # fmt: skip
    write_json(metrics, {"final": final})
    return final


def import_pretrained(model: str, out: Path, revision: str | None = None) -> None:
    """Materialise a published model (hub id at a revision, or a local folder) as a model folder:
    the SFT model at paper scale, every model of a released-checkpoints config."""
    src = Path(model)
    with atomic_dir(out) as tmp:
        if src.is_dir():
            check_model_dir(src)
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        else:
            from huggingface_hub import snapshot_download

            log.info("downloading %s@%s", model, revision)
            snapshot_download(model, revision=revision, local_dir=str(tmp))
        check_model_dir(tmp)
