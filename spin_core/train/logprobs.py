"""Summed response-token log-probs (prompt masked, EOS included), in padded batches sorted by length."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch

IGNORE_INDEX = -100
log = logging.getLogger(__name__)


def label_logps(logits: torch.Tensor, labels: torch.Tensor, suppress_ids: Sequence[int] | None = None) -> torch.Tensor:
    """log softmax(logits)[label] over the last dimension, in float32, any leading shape.

    Tokens in `suppress_ids` get zero probability, which is how a policy restricted to an alphabet
    is scored. Labels must be valid ids (mask ignored positions before or after).
    """
    logits = logits.float()
    if suppress_ids:
        idx = torch.as_tensor(list(suppress_ids), device=logits.device)
        logits = logits.index_fill(-1, idx, torch.finfo(logits.dtype).min)
    return torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def sequence_logps(
    logits: torch.Tensor,
    labels: torch.Tensor,
    suppress_ids: Sequence[int] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Sum of log p(label_t | tokens_<t) over positions whose label is not ignore_index.

    logits: (batch, seq, vocab) from a causal LM; labels: (batch, seq), aligned with input_ids
    (the shift by one happens here). Returns (batch,) float32.
    """
    labels = labels[:, 1:]
    mask = labels != ignore_index
    token_logps = label_logps(logits[:, :-1, :], labels.masked_fill(~mask, 0), suppress_ids)
    return (token_logps * mask).sum(-1)


def collate_sequences(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    pad_id: int,
    padding_side: str = "right",
    hide_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pad prompt+response sequences into input_ids, attention_mask, position_ids and labels.

    Labels are the input ids on response positions and IGNORE_INDEX elsewhere. Position ids count
    real tokens only, so left- and right-padded batches give the same log-probs. With hide_id, every
    occurrence of that token but each sequence's last is hidden from attention (attention_mask 0), as
    uclaml/SPIN's collator hides inner EOS tokens; positions still count it.
    """
    seqs = [list(p) + list(r) for p, r in zip(prompts, responses)]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (p, s) in enumerate(zip(prompts, seqs)):
        off = 0 if padding_side == "right" else width - len(s)
        input_ids[i, off : off + len(s)] = torch.as_tensor(s)
        attention[i, off : off + len(s)] = 1
        labels[i, off + len(p) : off + len(s)] = torch.as_tensor(s[len(p) :], dtype=torch.long)
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    if hide_id is not None:
        last = torch.zeros_like(attention, dtype=torch.bool)
        for i, s in enumerate(seqs):
            last[i, (0 if padding_side == "right" else width - len(s)) + len(s) - 1] = True
        attention = attention.masked_fill((input_ids == hide_id) & attention.bool() & ~last, 0)
    return {"input_ids": input_ids, "attention_mask": attention, "position_ids": position_ids, "labels": labels}


def suppressed_token_ids(model) -> list[int]:
    """The ids the saved policy may not emit (generation_config.suppress_tokens), or []."""
    cfg = getattr(model, "generation_config", None)
    return list(getattr(cfg, "suppress_tokens", None) or [])


def model_logps(model, batch: dict[str, torch.Tensor], suppress_ids: Sequence[int] | None) -> torch.Tensor:
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    ).logits
    return sequence_logps(logits, batch["labels"], suppress_ids)


def progress_line(desc: str, done: int, total: int, elapsed: float, units: str = "batches") -> str:
    """'desc: done/total units (elapsed, rate, ETA)' for a log line: progress without bars in logs."""
    rate = done / elapsed if elapsed > 0 else float("inf")
    eta = (total - done) / rate if done and rate > 0 else float("nan")
    return f"{desc}: {done}/{total} {units} ({elapsed:.0f}s, {rate:.3g} {units}/s, ETA {eta:.0f}s)"


def in_sorted_batches(lengths: Sequence[int], batch_size: int, desc: str):
    """Yield index lists of up to batch_size items in order of length, logging progress (every 10 s
    and at the end, with the rate and an ETA).

    Sorting by length keeps padding (wasted compute) small; callers put results back by index.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n_batches = (len(order) + batch_size - 1) // batch_size
    t0 = last = time.time()
    for b in range(n_batches):
        yield order[b * batch_size : (b + 1) * batch_size]
        if time.time() - last > 10 or b == n_batches - 1:
            last = time.time()
            log.info("%s", progress_line(desc, b + 1, n_batches, last - t0))


@torch.no_grad()
def response_logps(
    model,
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    desc: str = "scoring",
    hide_id: int | None = None,
) -> list[float]:
    """Summed response log-probs under `model` for many pairs, in length-sorted batches (hide_id:
    collate_sequences')."""
    model.eval()
    device = next(model.parameters()).device
    suppress = suppressed_token_ids(model)
    out = [0.0] * len(prompts)
    for idx in in_sorted_batches([len(p) + len(r) for p, r in zip(prompts, responses)], batch_size, desc):
        batch = collate_sequences([prompts[i] for i in idx], [responses[i] for i in idx], pad_id, hide_id=hide_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        for i, v in zip(idx, model_logps(model, batch, suppress).tolist()):
            out[i] = v
    return out
