"""Samples from a model on the held-out prompts: the reverse-KL samples of the exact divergence
(tiny world) and the generations the paper-scale proxies look at (length, distinct-n, and the
rejected side of the held-out real-vs-generated pairs). One file per model, both scales."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..config import DivergenceConfig, EncodingConfig, GenerateConfig, replace
from ..data import load_sft
from ..errors import DataError
from ..generate.backends import generate_for_rows
from ..io import read_records

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ["prompt_id", "prompt", "sample", "response_ids", "response", "complete"]


def heldout_prompts(test: str | Path, cfg: DivergenceConfig) -> list[dict]:
    """The first n_prompts held-out rows, each repeated samples_per_prompt times."""
    rows = load_sft(test)[: cfg.n_prompts]
    return [r for r in rows for _ in range(cfg.samples_per_prompt)]


def sample_heldout(
    divergence: DivergenceConfig, generate: GenerateConfig, spin: EncodingConfig, model: Path, test: Path
) -> pd.DataFrame:
    """Sample one model on the held-out prompts (shared by the exact KL and the proxies).

    Pure sampling (temperature 1, no top-p/top-k: the policy itself) of samples_per_prompt responses
    per held-out prompt, with a budget of max_new_tokens tokens. The backend, dtype and vLLM settings
    come from the generate section; the sampling settings from divergence."""
    rows = heldout_prompts(test, divergence)
    sampling = replace(
        generate,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=divergence.max_new_tokens,
        batch_size=divergence.batch_size,
    )
    tok, rows, outs, done = generate_for_rows(
        model, rows, sampling, divergence.seed, spin, "held-out samples", str(test)
    )
    texts = tok.batch_decode(outs, skip_special_tokens=True)
    k = divergence.samples_per_prompt
    records = [
        {
            "prompt_id": r["prompt_id"],
            "prompt": r["prompt"],
            "sample": i % k,
            "response_ids": [int(t) for t in o],
            "response": text.strip(),
            "complete": bool(d),
        }
        for i, (r, o, text, d) in enumerate(zip(rows, outs, texts, done))
    ]
    log.info("held-out samples: %d prompts x %d from %s", len(rows) // k, k, model)
    return pd.DataFrame.from_records(records, columns=SAMPLE_COLUMNS)


def read_samples(path: str | Path, samples_per_prompt: int) -> list[dict]:
    """A held-out samples file, checked to hold whole groups of samples_per_prompt rows."""
    samples = read_records(path)
    if not samples or len(samples) % samples_per_prompt:
        raise DataError(
            f"{path}: {len(samples)} samples, not a positive multiple of samples_per_prompt={samples_per_prompt}"
        )
    return samples
