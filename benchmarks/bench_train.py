"""SPIN training step throughput: our trainer vs TRL's DPOTrainer (sigmoid loss = SPIN's logistic
loss, previous iterate as reference), same tiny Llama, same pairs, same beta/batch/optimizer, same
precision (fp32; TRL's own defaults, bf16 autocast and gradient checkpointing, are switched off).

Engines: ours (prefix-shared packing, the default), ours_padded (spin.packing: false), TRL with its
reference model in memory, TRL with precompute_ref_log_probs=True. Each runs in its own subprocess,
so peak RSS is that run's alone; all of them run in this one invocation, side by side, and the table
reports ratios (this machine is noisy). Memory is reported twice: whole-process peak RSS, and peak
RSS above what the process held once its libraries were imported (the part that grows with the
model: weights, gradients, activations, optimizer state; the import floor is the same ~450 MB
for every engine here). The first 20 losses are printed side by side: same math and precision, so
they must agree to 1e-5.

    python benchmarks/bench_train.py --quick        # two sizes, ~2.5 minutes on 2 cores
    python benchmarks/bench_train.py                # 2x128, 4x256, 8x512, 4x256-v32k (~16 minutes)

Needs TRL (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# layers x hidden; "-v32k" pads the vocabulary to 32000 ids (Mistral/Llama-2 size, the paper's
# zephyr-7b), where the (tokens x vocab) logits, not the layers, dominate a step's memory.
SIZES = {"2x128": (2, 128), "4x256": (4, 256), "8x512": (8, 512), "4x256-v32k": (4, 256)}
VOCAB = {"4x256-v32k": 32000}
ENGINES = ("ours", "ours_padded", "trl_ref_in_memory", "trl_precomputed_ref")
LOSS_TOLERANCE = 1e-5


def build(layers: int, hidden: int, n_pairs: int, seed: int = 0, vocab: int | None = None):
    """Tokenizer, model (no suppressed tokens: TRL scores over the full vocabulary) and pairs."""
    import numpy as np

    from spin_core.config import WorldConfig
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.tokenizer import build_tokenizer
    from spin_core.world.world import TinyWorld

    world = TinyWorld(WorldConfig(n_words=200, seed=seed, length_base=12.0, length_per_prompt_word=4.0))
    tok = build_tokenizer(world.words)
    arch = dict(
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(2, hidden // 64),
        num_key_value_heads=max(2, hidden // 64),
        max_position_embeddings=256,
    )
    model = build_tiny_model(arch, tok, [], seed=seed)
    if vocab:
        # Ids past the tokenizer's are never seen, but every softmax runs over all of them.
        model.resize_token_embeddings(vocab, mean_resizing=False)
    rng = np.random.default_rng(seed)
    prompts = world.sample_prompts(n_pairs, rng)
    real, _ = world.sample_responses(prompts, rng, 96)
    gen, _ = world.sample_responses(prompts, rng, 96)
    pairs = [
        {"prompt": world.to_text(p), "real": world.to_text(r), "generated": world.to_text(g)}
        for p, r, g in zip(prompts, real, gen)
    ]
    return tok, model, pairs


class StepTimer:
    def __new__(cls):
        from transformers import TrainerCallback

        class _T(TrainerCallback):
            def __init__(self):
                self.times = []

            def on_step_end(self, args, state, control, **kw):
                self.times.append(time.perf_counter())

        return _T()


def rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def encode_rows(tok, pairs):
    from spin_core.config import EncodingConfig
    from spin_core.train.encoding import encode_pair

    rows = [
        {
            "real": [{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": p["real"]}],
            "generated": [{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": p["generated"]}],
        }
        for p in pairs
    ]
    return rows, [encode_pair(tok, r, EncodingConfig(max_length=512, max_prompt_length=128)) for r in rows]


def common_args(out: str, a) -> dict:
    import torch

    return dict(
        output_dir=out,
        per_device_train_batch_size=a.batch_size,
        learning_rate=a.lr,
        max_steps=a.steps,
        lr_scheduler_type="constant",
        warmup_steps=0,
        optim=a.optim,
        logging_steps=1,
        seed=42,
        data_seed=42,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        max_grad_norm=a.max_grad_norm,
        weight_decay=0.0,
    )


def worker(a) -> dict:
    import torch

    # Import each engine's libraries first, so the RSS baseline holds them and nothing else.
    if a.engine.startswith("ours"):
        from transformers import TrainingArguments

        from spin_core.config import SpinConfig
        from spin_core.train.packing import pair_logps
        from spin_core.train.spin import SPINTrainer, encode_pairs_for_training, spin_collator
    else:
        import copy

        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer
    rss_base = rss_now_mb()

    torch.manual_seed(0)
    layers, hidden = SIZES[a.size]
    tok, model, pairs = build(layers, hidden, a.n_pairs, vocab=VOCAB.get(a.size))
    n_params = sum(p.numel() for p in model.parameters())
    rows, enc = encode_rows(tok, pairs)
    # Tokens of a pair as two sequences (prompt twice), the same count for every engine.
    tokens_per_pair = sum(2 * len(p) + len(r) + len(g) for p, r, g in enc) / len(enc)
    timer = StepTimer()
    out = f"/tmp/bench_train_{a.engine}"
    t_ref = 0.0
    if a.engine.startswith("ours"):
        packing = a.engine == "ours"
        cfg = SpinConfig(beta=0.1, max_length=512, max_prompt_length=128, packing=packing)
        t0 = time.perf_counter()
        # What the workflow's reference pass does (a job of its own there), timed separately, in
        # batches of the training batch size as TRL's precompute does, so neither peaks there.
        real, gen = pair_logps(model, enc, tok.pad_token_id, a.batch_size)
        t_ref = time.perf_counter() - t0
        for r, a_, b_ in zip(rows, real, gen):
            r["ref_logp_real"], r["ref_logp_generated"] = a_, b_
        examples = encode_pairs_for_training(rows, tok, cfg, "bench")
        # The arguments TRL gets too, plus what our collator needs (its batches carry extra keys).
        args = TrainingArguments(**common_args(out, a), remove_unused_columns=False)
        trainer = SPINTrainer(
            model=model,
            args=args,
            train_dataset=examples,
            data_collator=spin_collator(tok.pad_token_id, packing),
            callbacks=[timer],
            beta=0.1,
            loss_type="logistic",
        )
    else:
        ds = Dataset.from_list(
            [
                {
                    "prompt": [{"role": "user", "content": p["prompt"]}],
                    "chosen": [{"role": "assistant", "content": p["real"]}],
                    "rejected": [{"role": "assistant", "content": p["generated"]}],
                }
                for p in pairs
            ]
        )
        precompute = a.engine == "trl_precomputed_ref"
        cfg = DPOConfig(
            **common_args(out, a),
            beta=0.1,
            loss_type=["sigmoid"],
            max_length=512,
            precompute_ref_log_probs=precompute,
            remove_unused_columns=False,
            # TRL's own defaults are bf16=True (on a CPU: bf16 autocast) and gradient checkpointing;
            # ours trains in fp32 without checkpointing here, so TRL must too, or neither the
            # speed nor the losses would compare the same computation.
            bf16=False,
            gradient_checkpointing=False,
        )
        ref = None if precompute else copy.deepcopy(model)
        trainer = DPOTrainer(
            model=model, ref_model=ref, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[timer]
        )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    grad_norms = [h.get("grad_norm") for h in trainer.state.log_history if "loss" in h]
    # Median step time over steps 3..N: skips warm-up and TRL's in-train reference precompute, and
    # an occasional hiccup of this shared machine. Every engine sees the same batches in order.
    durations = sorted(end - start for start, end in zip(timer.times[2:], timer.times[3:]))
    step_s = durations[len(durations) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "engine": a.engine,
        "size": a.size,
        "params": n_params,
        "step_s": step_s,
        "samples_per_s": a.batch_size / step_s,
        "tokens_per_s": a.batch_size * tokens_per_pair / step_s,
        "ref_precompute_s": t_ref,
        "train_wall_s": wall,
        "losses": losses,
        "grad_norms": grad_norms,
        "peak_rss_mb": peak,
        "rss_base_mb": rss_base,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    }


def run_one(engine: str, size: str, a) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--engine",
        engine,
        "--size",
        size,
        "--steps",
        str(a.steps),
        "--batch-size",
        str(a.batch_size),
        "--n-pairs",
        str(a.n_pairs),
        "--optim",
        a.optim,
        "--lr",
        str(a.lr),
        "--max-grad-norm",
        str(a.max_grad_norm),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} {size} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 2x128 and 4x256, 30 steps")
    ap.add_argument("--sizes", nargs="+", default=None, choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n-pairs", type=int, default=512)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=2, help="runs per engine, taking turns; the fastest counts")
    # SGD by default: Adam/RMSprop divide each gradient entry by its own magnitude on the first
    # steps, so float-rounding differences between two correct implementations grow to the size of
    # the learning rate and the loss comparison would test rounding, not the math.
    ap.add_argument("--optim", default="sgd", help="transformers optim name, same for every engine")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=list(SIZES), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.steps is None:
        a.steps = 30 if a.quick else 40
    if a.worker:
        print(json.dumps(worker(a)))
        return
    sizes = a.sizes or (["2x128", "4x256"] if a.quick else list(SIZES))
    import torch

    device = f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "CPU"
    print(
        f"bench_train: batch {a.batch_size} pairs, {a.steps} steps, optim {a.optim} lr {a.lr}, "
        f"{a.threads} threads, torch {device} fp32, best of {a.repeats} runs per engine"
    )
    results = {}
    for size in sizes:
        # Engines take turns, a.repeats times; each keeps its fastest run (noise only slows down).
        for _ in range(a.repeats):
            for engine in ENGINES:
                r = run_one(engine, size, a)
                if (size, engine) not in results or r["step_s"] < results[size, engine]["step_s"]:
                    results[size, engine] = r
        for engine in ENGINES:
            r = results[size, engine]
            gpu = f"  peak GPU {r['peak_gpu_mb']:7.0f} MB" if r["peak_gpu_mb"] is not None else ""
            print(
                f"  {size:6s} {engine:20s} {r['step_s'] * 1000:8.1f} ms/step  {r['samples_per_s']:7.1f} pairs/s"
                f"  {r['tokens_per_s']:8.0f} tok/s  peak RSS {r['peak_rss_mb']:6.0f} MB"
                f" ({r['peak_rss_mb'] - r['rss_base_mb']:5.0f} above imports){gpu}",
                flush=True,
            )
    print()
    print(
        f"{'size':6s} {'params':>9s} {'ours pairs/s':>13s} {'vs TRL ref':>11s} {'vs TRL precomp':>15s}"
        f" {'vs ours padded':>15s} {'RSS ratio':>10s} {'RSS>imports':>12s} {'max |dloss|':>12s} {'TRL vs TRL':>11s}"
    )
    ratios_ref, ratios_pre, ratios_pack, rss, rss_model, worst = [], [], [], [], [], 0.0
    for size in sizes:
        o, op, t, p = (results[size, e] for e in ENGINES)
        r1, r2 = o["samples_per_s"] / t["samples_per_s"], o["samples_per_s"] / p["samples_per_s"]
        r3 = o["samples_per_s"] / op["samples_per_s"]
        mem = o["peak_rss_mb"] / t["peak_rss_mb"]
        mem_model = (o["peak_rss_mb"] - o["rss_base_mb"]) / (t["peak_rss_mb"] - t["rss_base_mb"])
        n = min(20, *(len(x["losses"]) for x in (o, op, t, p)))
        dl = max(
            abs(x - y) for ours in (o, op) for trl in (t, p) for x, y in zip(ours["losses"][:n], trl["losses"][:n])
        )
        worst = max(worst, dl)
        # TRL's two reference modes against each other: the numerical floor of the comparison.
        dtt = max(abs(y - z) for y, z in zip(t["losses"][:n], p["losses"][:n]))
        ratios_ref.append(r1), ratios_pre.append(r2), ratios_pack.append(r3), rss.append(mem)
        rss_model.append(mem_model)
        print(
            f"{size:6s} {o['params']:9d} {o['samples_per_s']:13.1f} {r1:10.2f}x {r2:14.2f}x {r3:14.2f}x"
            f" {mem:10.2f} {mem_model:12.2f} {dl:12.2e} {dtt:11.2e}"
        )
    print("\nfirst losses (ours | ours padded | TRL ref in memory | TRL precomputed):")
    size = sizes[0]
    cols = [results[size, e]["losses"] for e in ENGINES]
    for i, row in enumerate(zip(*(c[:20] for c in cols)), start=1):
        print(f"  step {i:2d}: " + " ".join(f"{x:.6f}" for x in row))
    geo = lambda xs: float(__import__("math").prod(xs) ** (1 / len(xs)))  # noqa: E731
    print(f"\nspeedup vs TRL (reference in memory): {geo(ratios_ref):.2f}")
    print(f"speedup vs TRL (precomputed reference): {geo(ratios_pre):.2f}")
    print(f"speedup from packing (ours vs ours padded): {geo(ratios_pack):.2f}")
    print(f"peak RSS vs TRL (reference in memory): {geo(rss):.2f}")
    print(f"peak RSS above imports vs TRL (reference in memory): {geo(rss_model):.2f}")
    verdict = "yes" if worst < LOSS_TOLERANCE else "NO"
    print(f"first {n} losses agree with TRL to {LOSS_TOLERANCE:g}: {verdict} (max |difference| {worst:.2e})")


if __name__ == "__main__":
    main()
