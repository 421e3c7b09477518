"""The tiny world: a synthetic conversational language whose p_data(y|x) is known exactly.

A prompt x is a sequence of 2..5 words drawn uniformly from a small vocabulary. A response y is
generated word by word by a prompt-conditioned second-order Markov chain with a stop hazard:

    p(next word = w | y_{<k}, x) = (1 - h_k) * softmax_w(A[y_{k-1}] + B[y_{k-2}] + C[x_first] + D[x_last])
    p(stop | y_{<k}, x)          = h_k = sigmoid(s * (k - L(x)) + E[y_{k-1}])

where L(x) = length_base + length_per_prompt_word * len(x) sets the expected response length. All
of A..E are drawn once from a seeded RNG, so the world is a pure function of its config.

Responses are read with a token budget T (like `max_new_tokens`): an event is either a complete
response of k <= T-1 words followed by the stop token, or a truncated run of T words. These events
partition the sample space, so log p_data below is an exact, normalised log-probability. With T
large enough that truncation never happens, it is the log-probability of the full response.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..config import WorldConfig
from ..configfile import parse_section
from ..errors import ConfigError, DataError
from ..io import write_json

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def make_words(n: int) -> list[str]:
    """First n words of a fixed list of pronounceable syllables (CV, then CVC)."""
    cv = [c + v for c in _CONSONANTS for v in _VOWELS]
    cvc = [c + v + d for c in _CONSONANTS for v in _VOWELS for d in _CONSONANTS]
    words = cv + cvc
    if not 2 <= n <= len(words):
        raise ConfigError(f"world.n_words: must be between 2 and {len(words)}, got {n}")
    return words[:n]


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


class TinyWorld:
    """Exact sampler and scorer for p_data(y|x). Words are indices 0..n_words-1."""

    def __init__(self, config: WorldConfig):
        self.config = config
        self.words = make_words(config.n_words)
        self.index = {w: i for i, w in enumerate(self.words)}
        n = config.n_words
        rng = np.random.default_rng(config.seed)
        # Row n of A, B and E is the "before the response" state.
        self.A = config.bigram_scale * rng.standard_normal((n + 1, n))
        self.B = config.skipgram_scale * rng.standard_normal((n + 1, n))
        self.C = config.topic_scale * rng.standard_normal((n, n))
        self.D = config.mood_scale * rng.standard_normal((n, n))
        self.E = config.stop_word_scale * rng.standard_normal(n + 1)

    # ---------- identity ----------
    def fingerprint(self) -> str:
        """Hash of the drawn parameters: detects a different numpy RNG rebuilding another world."""
        h = hashlib.sha256()
        for arr in (self.A, self.B, self.C, self.D, self.E):
            h.update(np.round(arr, 10).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        write_json(path, {"config": self.config.model_dump(), "fingerprint": self.fingerprint()})

    @classmethod
    def load(cls, path: str | Path) -> TinyWorld:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: world file not found")
        try:
            spec = json.loads(path.read_text())
            world = cls(parse_section(WorldConfig, spec["config"], f"{path}: config"))
        except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as e:
            raise DataError(f"{path}: not a tiny-world file ({e})") from None
        if world.fingerprint() != spec.get("fingerprint"):
            raise DataError(f"{path}: fingerprint mismatch: this numpy draws a different world from the same seed")
        return world

    # ---------- text ----------
    def to_text(self, words: np.ndarray | list[int]) -> str:
        return " ".join(self.words[int(i)] for i in words)

    def from_text(self, text: str, where: str = "text") -> np.ndarray:
        try:
            return np.array([self.index[w] for w in text.split()], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"{where}: word {e.args[0]!r} is not in the tiny world's vocabulary") from None

    # ---------- the distribution ----------
    def _target_length(self, prompt_lengths: np.ndarray) -> np.ndarray:
        c = self.config
        return c.length_base + c.length_per_prompt_word * prompt_lengths

    def _step(self, prev1, prev2, first, last, k, target):
        """Log-probabilities at step k: (log p(word) without the stop factor, log h, log(1-h))."""
        logits = self.A[prev1] + self.B[prev2] + self.C[first] + self.D[last]
        logits = logits - logits.max(axis=1, keepdims=True)
        log_words = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        # The hazard is positive at every step, k = 0 included, so every finite word sequence
        # (the empty response too) has p_data > 0 and the reverse KL of any model is finite.
        z = self.config.stop_sharpness * (k - target) + self.E[prev1]
        return log_words, _log_sigmoid(z), _log_sigmoid(-z)

    def sample_prompts(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        c = self.config
        lengths = rng.integers(c.prompt_min_words, c.prompt_max_words + 1, size=n)
        return [rng.integers(0, c.n_words, size=int(k)) for k in lengths]

    def sample_responses(
        self, prompts: list[np.ndarray], rng: np.random.Generator, max_tokens: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Sample y ~ p_data(.|x) for each prompt with a budget of max_tokens tokens (stop included).

        Returns the word arrays and a boolean array `complete` (False where the budget ran out).
        """
        n_prompts = len(prompts)
        start = self.config.n_words
        first = np.array([p[0] for p in prompts])
        last = np.array([p[-1] for p in prompts])
        target = self._target_length(np.array([len(p) for p in prompts]))
        prev1 = np.full(n_prompts, start)
        prev2 = np.full(n_prompts, start)
        alive = np.ones(n_prompts, dtype=bool)
        out = [[] for _ in range(n_prompts)]
        for k in range(max_tokens):
            if not alive.any():
                break
            log_words, log_stop, _ = self._step(prev1, prev2, first, last, k, target)
            stop = rng.random(n_prompts) < np.exp(log_stop)
            # Inverse-CDF sampling of the next word for every row (rows that stop ignore it).
            cdf = np.cumsum(np.exp(log_words), axis=1)
            u = rng.random(n_prompts) * cdf[:, -1]
            nxt = np.minimum((cdf < u[:, None]).sum(axis=1), self.config.n_words - 1)
            # A word emitted as the last token of the budget leaves the response truncated.
            alive_now = alive & ~stop
            for i in np.flatnonzero(alive_now):
                out[i].append(int(nxt[i]))
            alive = alive_now
            prev2 = np.where(alive, prev1, prev2)
            prev1 = np.where(alive, nxt, prev1)
        complete = ~alive
        return [np.array(r, dtype=np.int64) for r in out], complete

    def log_prob(
        self, prompts: list[np.ndarray], responses: list[np.ndarray], complete: np.ndarray | list[bool]
    ) -> np.ndarray:
        """Exact log p_data of each event: the words, then the stop token if `complete`."""
        n = len(prompts)
        complete = np.asarray(complete, dtype=bool)
        if len(responses) != n or len(complete) != n:
            raise ValueError("prompts, responses and complete must have the same length")
        start = self.config.n_words
        first = np.array([p[0] for p in prompts])
        last = np.array([p[-1] for p in prompts])
        target = self._target_length(np.array([len(p) for p in prompts]))
        lengths = np.array([len(r) for r in responses])
        max_len = int(lengths.max()) if n else 0
        padded = np.zeros((n, max_len), dtype=np.int64)
        for i, r in enumerate(responses):
            padded[i, : len(r)] = r
        total = np.zeros(n)
        prev1 = np.full(n, start)
        prev2 = np.full(n, start)
        rows = np.arange(n)
        for k in range(max_len + 1):
            log_words, log_stop, log_go = self._step(prev1, prev2, first, last, k, target)
            emits_word = k < lengths
            stops_here = (k == lengths) & complete
            nxt = padded[:, k] if k < max_len else np.zeros(n, dtype=np.int64)
            total += np.where(emits_word, log_go + log_words[rows, nxt], 0.0)
            total += np.where(stops_here, log_stop, 0.0)
            prev2 = np.where(emits_word, prev1, prev2)
            prev1 = np.where(emits_word, nxt, prev1)
        return total

    def greedy_response(self, prompt: np.ndarray, max_tokens: int) -> tuple[np.ndarray, bool]:
        """The most probable token at each step (stop included), for up to max_tokens tokens."""
        start = self.config.n_words
        target = self._target_length(np.array([len(prompt)]))
        first, last = np.array([prompt[0]]), np.array([prompt[-1]])
        prev1, prev2 = np.array([start]), np.array([start])
        words = []
        for k in range(max_tokens):
            log_words, log_stop, log_go = self._step(prev1, prev2, first, last, k, target)
            best = int(np.argmax(log_words[0]))
            if log_stop[0] >= log_go[0] + log_words[0, best]:
                return np.array(words, dtype=np.int64), True
            words.append(best)
            prev1, prev2 = np.array([best]), prev1
        return np.array(words, dtype=np.int64), False
