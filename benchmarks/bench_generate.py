"""Generation throughput of the generate stage vs batch size: HF generate with KV cache, and vLLM
when it is installed and a GPU is present. One run, side by side.

    python benchmarks/bench_generate.py [--size 4x256] [--batch-sizes 1 8 32 128 256] [--n 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    import torch
    from bench_train import SIZES, VOCAB, build

    from spin_core.config import GenerateConfig
    from spin_core.generate.backends import hf_generate, vllm_generate
    from spin_core.train.encoding import encode_prompt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="4x256", choices=list(SIZES))
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 128, 256])
    ap.add_argument("--n", type=int, default=256, help="prompts per measurement")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    a = ap.parse_args()
    layers, hidden = SIZES[a.size]
    tok, model, pairs = build(layers, hidden, a.n, vocab=VOCAB.get(a.size))
    model.eval()
    prompts = [encode_prompt(tok, p["prompt"]) for p in pairs]
    print(
        f"bench_generate: {a.size} tiny Llama, {a.n} prompts, max_new_tokens {a.max_new_tokens}, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}, {torch.get_num_threads()} threads"
    )
    print(f"{'backend':8s} {'batch':>6s} {'tokens/s':>10s} {'vs batch 1':>11s}")
    base = None
    for bs in a.batch_sizes:
        cfg = GenerateConfig(max_new_tokens=a.max_new_tokens, batch_size=bs)
        n = min(a.n, max(bs * 2, 16)) if bs == 1 else a.n  # batch 1 is slow: fewer prompts
        t0 = time.perf_counter()
        outs, _ = hf_generate(model, tok, prompts[:n], cfg, seed=0)
        rate = sum(len(o) for o in outs) / (time.perf_counter() - t0)
        base = base or rate
        print(f"{'hf':8s} {bs:6d} {rate:10.0f} {rate / base:10.2f}x", flush=True)
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vllm: not installed here (GPU-only extra); skipped")
        return
    if not torch.cuda.is_available():
        print("vllm: no GPU; skipped")
        return
    from spin_core.modeling import save_model

    with tempfile.TemporaryDirectory() as d:
        save_model(model, tok, d)
        cfg = GenerateConfig(backend="vllm", max_new_tokens=a.max_new_tokens, dtype="float32")
        t0 = time.perf_counter()
        outs, _ = vllm_generate(d, tok, prompts, cfg, seed=0)
        rate = sum(len(o) for o in outs) / (time.perf_counter() - t0)
        print(f"{'vllm':8s} {'all':>6s} {rate:10.0f} {rate / base:10.2f}x")


if __name__ == "__main__":
    main()
