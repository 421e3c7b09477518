"""Prefix-shared packing of SPIN pairs: fewer tokens per step for the same log-probs.

Each pair becomes one segment, prompt + real response + generated response. The real response
attends to the prompt and to itself, as in its own sequence; the generated response attends to the
prompt and to itself, never to the real one, and its position ids restart where the prompt ends.
So each response is scored in exactly the context it has alone, while the prompt is computed once
instead of twice. Segments are then packed into rows (first-fit decreasing), each segment walled
off from the others by the attention mask, so rows carry little padding. This is the prefix
sharing of Wang et al., "Accelerating Direct Preference Optimization with Prefix Sharing"
(arXiv 2410.20305), done with a 4D attention mask, which transformers passes to SDPA (and eager
attention) unchanged; flash-attention-2 takes no such mask (set spin.packing: false there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from accelerate.utils import extract_model_from_parallel
from torch.utils.checkpoint import checkpoint

from ..errors import ConfigError
from .logprobs import in_sorted_batches, label_logps, suppressed_token_ids

# Row widths are rounded up to this: SDPA's memory-efficient CUDA kernel wants the mask's last
# dimension aligned, and tensor-core matmuls like multiples of 8.
WIDTH_MULTIPLE = 8
# Row widths tried, as multiples of the longest segment. Wider rows pack short segments together
# (fewer padding slots), but a masked row computes its whole width x width attention square, so
# the search stops at twice the longest segment.
WIDTH_FACTORS = (1.0, 1.5, 2.0)
# Logits the LM head holds at once, in elements (tokens x vocabulary), while training.
HEAD_CHUNK_ELEMENTS = 2**26
ATTENTION_WITH_4D_MASKS = ("sdpa", "eager")


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of at most `capacity`, longest items placed first."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if lengths[i] > capacity:
            raise ValueError(f"item {i} of length {lengths[i]} exceeds the bin capacity {capacity}")
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


def choose_rows(lengths: Sequence[int]) -> tuple[int, list[list[int]]]:
    """(row width, rows of segment indices) with the fewest token slots over WIDTH_FACTORS."""
    best = None
    for factor in WIDTH_FACTORS:
        width = -(-int(max(lengths) * factor) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE
        rows = first_fit_decreasing(lengths, width)
        if best is None or len(rows) * width < len(best[1]) * best[0]:
            best = (width, rows)
    return best


def segment_mask(
    segment: torch.Tensor, is_real: torch.Tensor, is_generated: torch.Tensor, hidden: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows, W, W) bool attention mask [query, key] of packed rows: causal within a segment (-1 marks
    padding), and a generated response never sees the real response it shares a segment with. `hidden`
    positions are keys no query sees (spin.response_tokens: official hides inner EOS tokens)."""
    width = segment.shape[1]
    q = torch.arange(width)
    causal = q[None, :] <= q[:, None]  # [query, key]
    same_segment = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    generated_sees_real = is_generated[:, :, None] & is_real[:, None, :]
    allowed = same_segment & causal & ~generated_sees_real
    if hidden is not None:
        allowed &= ~hidden[:, None, :]
    # A query row with nothing to attend to (padding) attends to itself only: else it would give NaN.
    return allowed | (torch.eye(width, dtype=torch.bool) & ~allowed.any(-1, keepdim=True))


def pack_pairs(
    prompts: Sequence[Sequence[int]],
    reals: Sequence[Sequence[int]],
    generateds: Sequence[Sequence[int]],
    pad_id: int,
    hide_id: int | None = None,
) -> dict:
    """B pairs -> packed rows plus where each response token's log-prob is read.

    Returns input_ids, position_ids (rows, W), attention_mask (rows, 1, W, W) bool (True = may
    attend), and for every response token: target_pos (flat index into rows*W of the position whose
    output predicts it), target_ids (the token) and target_seq (0..B-1 real of pair i, B..2B-1
    generated of pair i: the layout the SPIN loss reads). n_pairs = B. With hide_id, every occurrence
    of that token is hidden from attention except each response's last token (the appended EOS).
    """
    # long: one pass over the segments fills every tensor of the layout; split up, the index
    # arithmetic of a segment (where each response starts, which position predicts its tokens)
    # would be spread over several places.
    n = len(prompts)
    if not n or len(reals) != n or len(generateds) != n:
        raise ValueError(f"pack_pairs: {n} prompts, {len(reals)} real and {len(generateds)} generated responses")
    if any(len(p) == 0 for p in prompts):
        # A response's first token is read at the prompt's last position; without one it would be
        # read from whatever segment precedes it in the row.
        raise ValueError("pack_pairs: every pair needs a non-empty prompt")
    lengths = [len(p) + len(r) + len(g) for p, r, g in zip(prompts, reals, generateds)]
    width, rows = choose_rows(lengths)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    segment = torch.full((len(rows), width), -1, dtype=torch.long)  # -1: padding
    is_real = torch.zeros((len(rows), width), dtype=torch.bool)
    is_generated = torch.zeros((len(rows), width), dtype=torch.bool)
    response_end = torch.zeros((len(rows), width), dtype=torch.bool)  # each response's last token
    target_pos: list[int] = []
    target_ids: list[int] = []
    target_seq: list[int] = []
    for r, members in enumerate(rows):
        offset = 0
        for i in members:
            p, re, g = prompts[i], reals[i], generateds[i]
            lp, lr, lg = len(p), len(re), len(g)
            start, real_at, gen_at, end = offset, offset + lp, offset + lp + lr, offset + lengths[i]
            input_ids[r, start:end] = torch.as_tensor(list(p) + list(re) + list(g))
            position_ids[r, start:gen_at] = torch.arange(lp + lr)
            position_ids[r, gen_at:end] = torch.arange(lp, lp + lg)
            segment[r, start:end] = i
            is_real[r, real_at:gen_at] = True
            is_generated[r, gen_at:end] = True
            response_end[r, [x - 1 for x, length in ((gen_at, lr), (end, lg)) if length]] = True
            base = r * width
            # Real token k is predicted by the position before it (the prompt's last for k = 0).
            target_pos += [base + real_at - 1 + k for k in range(lr)]
            target_ids += list(re)
            target_seq += [i] * lr
            # Generated token 0 is predicted by the prompt's last position too, not by the real
            # response's last token that sits before it in the row.
            target_pos += [base + (real_at if k == 0 else gen_at + k) - 1 for k in range(lg)]
            target_ids += list(g)
            target_seq += [n + i] * lg
            offset = end
    hidden = None if hide_id is None else (input_ids == hide_id) & (segment >= 0) & ~response_end
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "attention_mask": segment_mask(segment, is_real, is_generated, hidden)[:, None],
        "target_pos": torch.tensor(target_pos, dtype=torch.long),
        "target_ids": torch.tensor(target_ids, dtype=torch.long),
        "target_seq": torch.tensor(target_seq, dtype=torch.long),
        "n_pairs": n,
    }


def final_hidden_states(model, **inputs) -> torch.Tensor:
    """The decoder's output (rows, width, hidden), taken from a call of the model's own forward.

    Going through the model's forward keeps its wrappers in force (accelerate's autocast,
    DeepSpeed's parameter gathering); logits_to_keep=1 leaves its LM head one position per row.
    """
    captured = []
    decoder = extract_model_from_parallel(model).get_decoder()
    handle = decoder.register_forward_hook(lambda _module, _args, out: captured.append(out[0]))
    try:
        model(**inputs, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    return captured[0]


def head_logps(model, hidden: torch.Tensor, target_ids: torch.Tensor, suppress_ids) -> torch.Tensor:
    """log p(target | state) for (N, hidden) states: the LM head applied to these N only.

    Above HEAD_CHUNK_ELEMENTS logits (a 32k vocabulary: ~2k tokens) the head runs in chunks whose
    logits are recomputed in the backward pass instead of kept, so a step never holds (tokens x
    vocab) float32 tensors for its whole batch: that, not the layers, dominates memory at 7B.
    """
    head = extract_model_from_parallel(model).get_output_embeddings()
    # The vocabulary from the module, not the weight: under ZeRO-3 a partitioned weight has shape (0,).
    vocab = getattr(head, "out_features", None) or model.config.get_text_config().vocab_size
    chunk = max(1, head_chunk_elements() // vocab)
    n_chunks = same_on_every_rank(-(-len(hidden) // chunk), head)
    recompute = n_chunks > 1 and torch.is_grad_enabled()

    def score(h, t):
        return label_logps(head(h.to(head.weight.dtype)), t, suppress_ids)

    pieces = []
    # tensor_split: exactly n_chunks pieces (some empty on a rank with fewer tokens).
    for h, t in zip(torch.tensor_split(hidden, n_chunks), torch.tensor_split(target_ids, n_chunks)):
        pieces.append(checkpoint(score, h, t, use_reentrant=False) if recompute else score(h, t))
    return torch.cat(pieces)


def head_chunk_elements() -> int:
    """Logits per head chunk; SPIN_HEAD_CHUNK_ELEMENTS lowers it (tests run the chunked path small)."""
    return int(os.environ.get("SPIN_HEAD_CHUNK_ELEMENTS", HEAD_CHUNK_ELEMENTS))


def same_on_every_rank(n_chunks: int, head) -> int:
    """The largest chunk count of all ranks when the head's weight is ZeRO-3-partitioned.

    Each call of a partitioned module (and each recomputation in the backward) is an all-gather that
    every rank must join: ranks with different token counts would make different numbers of calls
    and hang. So every rank makes as many calls as the rank with the most chunks."""
    if not hasattr(head.weight, "ds_id") or not torch.distributed.is_initialized():
        return max(1, n_chunks)
    count = torch.tensor([max(1, n_chunks)], device=head.weight.device)
    torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MAX)
    return int(count.item())


def packed_logps(model, batch: dict, suppress_ids: Sequence[int] | None) -> torch.Tensor:
    """Summed response log-probs of a pack_pairs batch: (2B,), real responses first."""
    hidden = final_hidden_states(
        model,
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
    )
    picked = hidden.flatten(0, 1).index_select(0, batch["target_pos"])
    token_logps = head_logps(model, picked, batch["target_ids"], suppress_ids)
    out = token_logps.new_zeros(2 * batch["n_pairs"])
    return out.index_add(0, batch["target_seq"], token_logps)


def check_packing_supported(model) -> None:
    """Packing needs attention that takes a 4D mask, and an LM head that is the whole output layer
    (head_logps applies it alone, so a model that rescales or caps its logits after it is out)."""
    impl = getattr(model.config, "_attn_implementation", None) or "eager"
    if impl not in ATTENTION_WITH_4D_MASKS:
        raise ConfigError(
            f"spin.packing: needs attention that takes a 4D mask ({' or '.join(ATTENTION_WITH_4D_MASKS)}); "
            f"this model uses {impl!r}. Set spin.packing: false."
        )
    for key in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier"):
        if getattr(model.config, key, None) not in (None, 1, 1.0):
            raise ConfigError(
                f"spin.packing: this model's config sets {key}, which its forward applies after the LM head; "
                "packing scores with the LM head alone. Set spin.packing: false."
            )


@torch.no_grad()
def pair_logps(
    model,
    encoded: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]],
    pad_id: int,
    batch_size: int = 64,
    desc: str = "scoring pairs",
    hide_id: int | None = None,
) -> tuple[list[float], list[float]]:
    """(real, generated) summed log-probs of many encoded pairs, packed, in length-sorted batches
    (hide_id: pack_pairs')."""
    model.eval()
    device = next(model.parameters()).device
    suppress = suppressed_token_ids(model)
    real, generated = [0.0] * len(encoded), [0.0] * len(encoded)
    for idx in in_sorted_batches([sum(map(len, e)) for e in encoded], batch_size, desc):
        batch = pack_pairs(*zip(*(encoded[i] for i in idx)), pad_id=pad_id, hide_id=hide_id)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        logps = packed_logps(model, batch, suppress).tolist()
        for j, i in enumerate(idx):
            real[i], generated[i] = logps[j], logps[len(idx) + j]
    return real, generated
