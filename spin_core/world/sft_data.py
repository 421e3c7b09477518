"""SFT data sampled from the tiny world, in the UltraChat-200k schema (spin_core/data.py)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..names import prompt_id
from .world import TinyWorld

# Budget for sampling the "human" responses of the tiny world. With the default length hazard the
# chance of running past it is below 1e-100, so the SFT responses are untruncated p_data samples.
DATA_MAX_TOKENS = 96


def make_tiny_sft_data(world: TinyWorld, n_train: int, n_test: int, seed: int) -> tuple[list, list]:
    """Sample distinct prompts and one p_data response each; split into train and test rows."""
    rng = np.random.default_rng(seed)
    prompts, seen = [], set()
    n_total = n_train + n_test
    attempts = 0
    while len(prompts) < n_total:
        attempts += 1
        if attempts > 50 * n_total:
            raise DataError(f"world: cannot draw {n_total} distinct prompts; enlarge the world")
        for p in world.sample_prompts(n_total - len(prompts), rng):
            text = world.to_text(p)
            if text not in seen:
                seen.add(text)
                prompts.append(p)
    responses, complete = world.sample_responses(prompts, rng, DATA_MAX_TOKENS)
    if not complete.all():
        raise DataError("world: a data response ran past DATA_MAX_TOKENS; lower world.length_base")
    rows = []
    for p, r in zip(prompts, responses):
        prompt, answer = world.to_text(p), world.to_text(r)
        rows.append(
            {
                "prompt_id": prompt_id(prompt),
                "prompt": prompt,
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
    return rows[:n_train], rows[n_train:]
