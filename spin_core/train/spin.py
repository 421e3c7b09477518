"""SPIN training on transformers.Trainer: one forward for real and generated responses (prefix-shared
packing by default), reference log-probs read from the pairs file, logistic (or hinge) loss."""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path

import torch
from transformers import Trainer

from ..config import SpinConfig
from ..data import load_pairs
from ..errors import ConfigError, DataError
from ..io import disk_full_named, plain_modes, write_json
from ..modeling import load_model, save_tokenizer
from .arguments import training_arguments
from .callbacks import check_finite, run_mean_loss, training_callbacks
from .encoding import bound_prompts, encode_whole_pair, hidden_eos, truncate
from .logprobs import collate_sequences, model_logps, suppressed_token_ids
from .loss import spin_loss
from .packing import check_packing_supported, pack_pairs, packed_logps
from .precision import deepspeed_training
from .resume import remove_checkpoints, train_resumable

log = logging.getLogger(__name__)


def encode_pairs_for_training(rows: list[dict], tokenizer, cfg: SpinConfig, where: str) -> list[dict]:
    whole = [encode_whole_pair(tokenizer, r, cfg, f"{where}: row {i}") for i, r in enumerate(rows, start=1)]
    # The reference pass already applied the prompt rule; this counts what training sees.
    keep, _ = bound_prompts([p for p, _ in whole], cfg, "train", where, cfg.truncation)
    out = []
    for i in keep:
        row = rows[i]
        for key in ("ref_logp_real", "ref_logp_generated"):
            if key not in row:
                raise DataError(f"{where}: row {i + 1}: missing field '{key}' (run the reference pass first)")
        p, (r, g) = truncate(*whole[i], cfg)
        out.append(
            {
                "prompt_ids": p,
                "real_ids": r,
                "generated_ids": g,
                "ref_logps": (float(row["ref_logp_real"]), float(row["ref_logp_generated"])),
            }
        )
    return out


def spin_collator(pad_id: int, packing: bool = True, hide_id: int | None = None):
    """B pairs -> one batch whose log-probs come out as 2B values: 0..B-1 real, B..2B-1 generated.

    packing: one prefix-shared segment per pair, packed into rows (train/packing.py);
    otherwise 2B right-padded sequences, rows 0..B-1 real, B..2B-1 generated. hide_id: the token
    hidden from attention but at each response's end (encoding.hidden_eos).
    """

    def collate(examples):
        if packing:
            batch = pack_pairs(
                [e["prompt_ids"] for e in examples],
                [e["real_ids"] for e in examples],
                [e["generated_ids"] for e in examples],
                pad_id,
                hide_id,
            )
        else:
            prompts = [e["prompt_ids"] for e in examples] * 2
            responses = [e["real_ids"] for e in examples] + [e["generated_ids"] for e in examples]
            batch = collate_sequences(prompts, responses, pad_id, hide_id=hide_id)
        batch["ref_logps"] = torch.tensor(
            [e["ref_logps"][0] for e in examples] + [e["ref_logps"][1] for e in examples], dtype=torch.float32
        )
        return batch

    return collate


class SPINTrainer(Trainer):
    """Trainer whose loss is SPIN's, with metrics named as in the official code."""

    def __init__(self, *args, beta: float, loss_type: str, ref_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.beta = beta
        self.loss_type = loss_type
        # spin.reference: live: a frozen copy of the previous iterate, prepared as the official trainer
        # does (evaluation mode: the same device placement and mixed-precision forward as the policy).
        self.ref_model = None if ref_model is None else self.accelerator.prepare_model(ref_model, evaluation_mode=True)
        self.suppress_ids = suppressed_token_ids(self.model)
        self._metrics = defaultdict(list)
        # Our loss is already a per-pair mean: do not let Trainer rescale it by token counts.
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ref = inputs.pop("ref_logps")
        n = ref.shape[0] // 2
        # The collator's layout decides: only packed batches say where each target is read.
        batch_logps = packed_logps if "target_pos" in inputs else model_logps
        logps = batch_logps(model, inputs, self.suppress_ids)
        if self.ref_model is not None:  # the same batch, layout and precision as the policy's forward
            with torch.no_grad():
                ref = batch_logps(self.ref_model, inputs, self.suppress_ids).detach()
        losses, real_rewards, gen_rewards = spin_loss(logps[:n], logps[n:], ref[:n], ref[n:], self.beta, self.loss_type)
        loss = losses.mean()
        check_finite(loss, self.state.global_step)
        m = self._metrics
        m["rewards/real"].append(real_rewards.mean().item())
        m["rewards/generated"].append(gen_rewards.mean().item())
        m["rewards/margins"].append((real_rewards - gen_rewards).mean().item())
        m["rewards/accuracies"].append((real_rewards > gen_rewards).float().mean().item())
        m["logps/real"].append(logps[:n].detach().mean().item())
        m["logps/generated"].append(logps[n:].detach().mean().item())
        return (loss, {"logps": logps}) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        keys = sorted(k for k, v in self._metrics.items() if v)
        if keys:
            # Each rank saw its own pairs: average the ranks' means (equal per-device batches), as
            # Trainer does for the loss; every rank logs at the same steps, so all join this reduce.
            means = torch.tensor([sum(self._metrics[k]) / len(self._metrics[k]) for k in keys], dtype=torch.float64)
            if self.accelerator.num_processes > 1:
                means = self.accelerator.reduce(means.to(self.accelerator.device), reduction="mean").cpu()
            logs.update({k: float(v) for k, v in zip(keys, means)})
        self._metrics.clear()
        super().log(logs, *args, **kwargs)


def save_trained_model(trainer, tokenizer, out_dir: str | Path) -> None:
    """Save through trainer.save_model (every rank takes part, so DeepSpeed ZeRO-3 can gather the
    sharded weights) into a temp dir beside out_dir, then rename it into place on rank 0."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.saving.tmp"
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    try:
        with disk_full_named(out_dir):  # inside the cleanup: it must look before the space is freed
            trainer.save_model(str(tmp))
            if trainer.is_world_process_zero():
                save_tokenizer(tokenizer, tmp)
                plain_modes(tmp)  # safetensors writes its weights 0600
                if out_dir.exists():
                    shutil.rmtree(out_dir)
                os.replace(tmp, out_dir)
                log.info("saved model to %s", out_dir)
    except Exception:
        if trainer.is_world_process_zero():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    trainer.accelerator.wait_for_everyone()


def live_reference(spin: SpinConfig, init: Path):
    """spin.reference: live: a frozen copy of the model training starts from (None: precomputed)."""
    if spin.reference != "live":
        return None
    if deepspeed_training(spin):
        raise ConfigError(
            "spin.reference: 'live' is not offered under DeepSpeed (a second ZeRO-3 engine); use 'precomputed'"
        )
    ref_model, _ = load_model(init, dtype="float32", place=False)
    ref_model.eval().requires_grad_(False)
    log.info("train: live reference (a frozen copy of %s scores each batch)", init)
    return ref_model


def train_spin(
    spin: SpinConfig,
    pairs: Path,
    init: Path,
    out: Path,
    checkpoints: Path,
    metrics: Path,
    release_checkpoints: Path | None = None,
) -> dict:
    """One SPIN iteration: start from the previous iterate (init) and train on the scored pairs.

    release_checkpoints: the checkpoints of the job that made `init`. The workflow passes them: its
    model is an accepted input now, so they are not needed, and at 7B each iteration's last
    checkpoint (weights and optimizer state) is tens of GB."""
    if release_checkpoints and os.environ.get("RANK", "0") == "0":
        remove_checkpoints(release_checkpoints)
    rows = load_pairs(pairs)
    # TrainingArguments first: it sets each rank's device and, under DeepSpeed ZeRO-3 with
    # zero3_init_flag, makes from_pretrained partition the weights as they load instead of every rank
    # holding the whole model. Trainer then places the model (place=False).
    args = training_arguments(spin, checkpoints)
    # fp32 master weights; with bf16 on a GPU, Trainer runs the forward under autocast.
    model, tokenizer = load_model(init, dtype="float32", place=False)
    if spin.packing:
        check_packing_supported(model)
    examples = encode_pairs_for_training(rows, tokenizer, spin, str(pairs))
    log.info(
        "train: %d pairs, beta=%s, loss=%s, lr=%s, epochs=%s, packing=%s",
        len(examples), spin.beta, spin.loss, spin.learning_rate, spin.num_train_epochs, spin.packing,
    )  # fmt: skip
    trainer = SPINTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=spin_collator(tokenizer.pad_token_id, spin.packing, hidden_eos(tokenizer, spin)),
        callbacks=training_callbacks("train"),
        beta=spin.beta,
        loss_type=spin.loss,
        ref_model=live_reference(spin, init),
    )
    result = train_resumable(trainer, checkpoints)
    history = [h for h in trainer.state.log_history if "loss" in h]
    final = {
        "train_loss": run_mean_loss(trainer.state.log_history),
        "global_step": result.global_step,
        "n_pairs": len(examples),
    }
    if history:
        final.update({k: v for k, v in history[-1].items() if "/" in k or k == "loss"})
    save_trained_model(trainer, tokenizer, out)
    if trainer.is_world_process_zero():
        # The iteration's own recipe (spin.per_iteration applied), beside what it did.
        recipe = {k: v for k, v in spin.model_dump().items() if k != "per_iteration"}
        write_json(metrics, {"final": final, "recipe": recipe, "log_history": trainer.state.log_history})
    log.info("train: final %s", final)
    _end_process_group()
    return final


def _end_process_group() -> None:
    """Under accelerate launch, every rank leaves the process group before the interpreter exits: a
    gloo group torn down at exit instead once aborted a rank whose training had finished ("terminate
    called without an active exception", exit -6, a ZeRO-3 test on 2 CPU processes)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
