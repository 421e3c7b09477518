"""The exact p_data as an MT-Bench judge (`evaluation.mt_bench.judge: oracle`), the tiny world's
stand-in for GPT-4: it grades an answer by its exact per-token log p_data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .world import TinyWorld


class OracleJudge:
    """Tiny world: scores an answer from its exact per-token log p_data, calibrated to 1..10.

    score = 1 + 9 * clip((l - l_uniform) / (l_data - l_uniform), 0, 1), with l the answer's mean
    log p_data per token (EOS included), l_uniform that of uniformly random words, and l_data the
    median of l over p_data's own answers to the same prompt: p_data's typical answer scores 10,
    noise scores 1.
    """

    name = ("tiny-world-oracle", "exact-logp-v1")

    def __init__(self, world_path: str | Path, n_reference: int = 64, seed: int = 0):
        self.world = TinyWorld.load(world_path)
        self.n_reference = n_reference
        self.seed = seed
        self.l_uniform = -math.log(self.world.config.n_words + 1)

    def _per_token(self, prompt, words) -> float:
        return float(self.world.log_prob([prompt], [words], [True])[0] / (len(words) + 1))

    def judge(self, question: dict, answer: dict, turn: int, ref_answer: dict | None = None) -> tuple[float, str, str]:
        q = question["turns"][turn - 1]
        a = answer["choices"][0]["turns"][turn - 1]
        prompt = self.world.from_text(q, f"question {question['question_id']}")
        try:
            words = self.world.from_text(a, "answer")
        except DataError:
            return 1.0, q, "oracle: the answer uses words outside the world. Rating: [[1]]"
        rng = np.random.default_rng(self.seed + int(question["question_id"]) * 10 + turn)
        ys, done = self.world.sample_responses([prompt] * self.n_reference, rng, 96)
        l_data = float(np.median([self._per_token(prompt, y) for y in ys]))
        ell = self._per_token(prompt, words)
        score = 1 + 9 * float(np.clip((ell - self.l_uniform) / (l_data - self.l_uniform), 0, 1))
        judgment = (
            f"oracle: mean log p_data per token {ell:.3f} (p_data's median {l_data:.3f}, "
            f"uniform {self.l_uniform:.3f}). Rating: [[{score:.2f}]]"
        )
        return score, q, judgment
