"""The exact p_data as an lm-eval model, `tiny-world-oracle`: it scores continuations with the exact
log p_data and generates p_data's greedy path. Importing this module registers it with lm-eval; the
tests use it to check that the tiny tasks tell a better model from a worse one."""

from __future__ import annotations

import re

import lm_eval.models  # noqa: F401  (registers hf, vllm, ...; the registry is filled on import)
import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from .world import TinyWorld

ORACLE = "tiny-world-oracle"


@register_model(ORACLE)
class TinyWorldOracle(LM):
    def __init__(self, world: str, **kwargs):
        super().__init__()
        self.world = TinyWorld.load(world)

    @classmethod
    def create_from_arg_string(cls, arg_string, additional_config=None):
        args = dict(kv.split("=", 1) for kv in arg_string.split(",") if kv)
        return cls(**args)

    def _split(self, context: str):
        # "<|user|> PROMPT </s> <|assistant|> [RESPONSE PREFIX]"
        m = re.match(r"\s*<\|user\|>(.*?)</s>\s*<\|assistant\|>(.*)$", context, re.S)
        if not m:
            raise ValueError(f"oracle: not a tiny-world chat context: {context!r}")
        return self.world.from_text(m.group(1)), self.world.from_text(m.group(2))

    def loglikelihood(self, requests):
        out = []
        for req in requests:
            context, continuation = req.args
            prompt, prefix = self._split(context)
            words = continuation.split()
            complete = bool(words) and words[-1] == "</s>"
            cont = self.world.from_text(" ".join(words[:-1] if complete else words))
            full = np.concatenate([prefix, cont])
            lp_full = self.world.log_prob([prompt], [full], [complete])[0]
            lp_prefix = self.world.log_prob([prompt], [prefix], [False])[0]
            out.append((float(lp_full - lp_prefix), False))
        return out

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError("the oracle scores continuations only")

    def generate_until(self, requests):
        out = []
        for req in requests:
            context, gen_kwargs = req.args
            prompt, _ = self._split(context)
            words, _ = self.world.greedy_response(prompt, int(gen_kwargs.get("max_gen_toks", 3)))
            out.append(self.world.to_text(words))
        return out
