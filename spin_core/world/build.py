"""The `world` stage: the tiny world's file and its tokenizer (with the chat template)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import WorldConfig
from ..io import atomic_dir
from ..modeling import save_tokenizer
from .tokenizer import build_tokenizer
from .world import TinyWorld

log = logging.getLogger(__name__)


def build_world(world: WorldConfig, world_out: Path, tokenizer_out: Path) -> None:
    """Build the tiny world and its tokenizer."""
    tiny = TinyWorld(world)
    tok = build_tokenizer(tiny.words)
    with atomic_dir(tokenizer_out) as tmp:
        save_tokenizer(tok, tmp)
    tiny.save(world_out)
    log.info("world: %d words, fingerprint %s; tokenizer of %d tokens", len(tiny.words), tiny.fingerprint(), len(tok))
