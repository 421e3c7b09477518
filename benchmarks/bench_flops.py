"""Achieved FLOP/s of one SPIN training step vs this machine's measured matmul peak, in one run.

Peak: the best of several large square matmuls (fp32, and bf16 where the device supports it).
Step FLOPs: 6 * (non-embedding parameters) * tokens + 12 * layers * hidden * seq_len * tokens
(forward + backward, attention scores included), the usual transformer estimate, over the tokens
the step computes, padding not counted. The step is our trainer's computation: one forward of real
and generated responses (prefix-shared packing, the default, and two padded rows per pair), the SPIN
loss, backward, optimizer step.

    python benchmarks/bench_flops.py [--sizes 2x128 4x256 8x512] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def matmul_peak(dtype, n: int = 2048, repeats: int = 5) -> float:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def step_flops(model, n_tokens: int, seq_len: int) -> float:
    cfg = model.config
    n_embed = cfg.vocab_size * cfg.hidden_size * (1 if cfg.tie_word_embeddings else 2)
    n_params = sum(p.numel() for p in model.parameters()) - n_embed
    lm_head = 2 * cfg.vocab_size * cfg.hidden_size * 3  # output projection, fwd + bwd
    return (6 * n_params + lm_head + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len) * n_tokens


def measure_step(size: str, batch_size: int, steps: int, packing: bool) -> tuple[float, float]:
    """Median seconds of our training step, and the FLOP/s it achieves on the tokens it computes."""
    import torch
    from bench_train import SIZES, VOCAB, build, encode_rows

    from spin_core.train.logprobs import collate_sequences, model_logps
    from spin_core.train.loss import spin_loss
    from spin_core.train.packing import pack_pairs, packed_logps

    layers, hidden = SIZES[size]
    tok, model, pairs = build(layers, hidden, batch_size, vocab=VOCAB.get(size))
    _, enc = encode_rows(tok, pairs)
    p, r, g = map(list, zip(*enc))
    if packing:
        batch, logps_of = pack_pairs(p, r, g, tok.pad_token_id), packed_logps
        n_tokens = sum(len(x) + len(y) + len(z) for x, y, z in enc)  # the prompt once per pair
    else:
        batch, logps_of = collate_sequences(p * 2, r + g, tok.pad_token_id), model_logps
        n_tokens = int(batch["attention_mask"].sum())
    ref = torch.zeros(2 * batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        logps = logps_of(model, batch, [])
        losses, _, _ = spin_loss(logps[:batch_size], logps[batch_size:], ref[:batch_size], ref[batch_size:], 0.1)
        losses.mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    step_s = sorted(times[2:])[len(times[2:]) // 2]  # median after warm-up
    # Padding positions are computed too but not counted: this is the rate of useful work.
    return step_flops(model, n_tokens, batch["input_ids"].shape[1]) / step_s, step_s


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["2x128", "4x256", "8x512"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    peak32 = matmul_peak(torch.float32)
    print(f"matmul peak fp32: {peak32 / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    try:
        peak16 = matmul_peak(torch.bfloat16)
        print(f"matmul peak bf16: {peak16 / 1e9:.1f} GFLOP/s")
    except RuntimeError as e:
        print(f"matmul peak bf16: not supported here ({e})")
    print(f"\n{'size':6s} {'batches':8s} {'ms/step':>8s} {'GFLOP/s':>9s} {'utilisation (fp32 peak)':>24s}")
    for size in a.sizes:
        for packing in (True, False):
            flops, step_s = measure_step(size, a.batch_size, a.steps, packing)
            kind = "packed" if packing else "padded"
            print(f"{size:6s} {kind:8s} {step_s * 1000:8.1f} {flops / 1e9:9.1f} {100 * flops / peak32:23.1f}%")


if __name__ == "__main__":
    main()
