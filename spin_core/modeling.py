"""Model directories (save_pretrained: config, weights, tokenizer with its chat template): checking,
loading and saving them, the same at both scales."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .errors import ModelError
from .io import atomic_dir

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_model_dir(path: str | Path) -> Path:
    """A usable model directory has a config, weights and a tokenizer with a chat template."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: model directory not found")
    if not (path / "config.json").exists():
        raise ModelError(f"{path}: no config.json (not a save_pretrained directory)")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelError(f"{path}: no model weights (*.safetensors or *.bin)")
    if not (path / "tokenizer_config.json").exists():
        raise ModelError(f"{path}: no tokenizer (tokenizer_config.json missing)")
    return path


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if not getattr(tok, "chat_template", None):
        raise ModelError(f"{path}: tokenizer has no chat template")
    if tok.pad_token_id is None:
        # Zephyr ships no pad token; the official SPIN code pads with EOS, and so do we.
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, dtype: str = "float32", device: str | None = None, place: bool = True):
    """Load (model, tokenizer) from a save_pretrained directory, checking it first; a directory
    that does not load (truncated weights, a config that does not fit them, a tokenizer larger than
    the model's vocabulary) is a ModelError naming it.

    place=False leaves the model where from_pretrained put it, for Trainer to place on each rank's
    own device (and, under DeepSpeed ZeRO-3 init, partitioned as it loads)."""
    from transformers import AutoModelForCausalLM

    path = check_model_dir(path)
    tok = load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=DTYPES[dtype])
    except Exception as e:  # safetensors, torch and transformers raise many types for a broken file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelError(f"{path}: the model does not load ({type(e).__name__}: {reason[:300]})") from None
    # From the config: under ZeRO-3 a partitioned embedding's weight has shape (0,).
    vocab = model.config.get_text_config().vocab_size
    if len(tok) > vocab:
        raise ModelError(
            f"{path}: the tokenizer has {len(tok)} tokens but the model's vocabulary only {vocab} "
            "(a tokenizer and a model that do not belong together)"
        )
    if not place:
        return model, tok
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tok


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """save_pretrained model + tokenizer into a temp dir, renamed onto out_dir when complete."""
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        save_tokenizer(tokenizer, tmp)
    log.info("saved model to %s", out_dir)


# transformers 5 names a tokenizer.json-only tokenizer TokenizersBackend, a class 4.x lacks; 5.x reads
# the 4.x name PreTrainedTokenizerFast as the same class. Writing that keeps a saved model readable by
# the paper's harness (lm-eval 0.4.0 runs on transformers 4.37: envs/paper-harness.txt).
_PORTABLE_TOKENIZER_CLASSES = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def save_tokenizer(tokenizer, out_dir: str | Path) -> None:
    """tokenizer.save_pretrained into out_dir, its class named so that transformers 4.x reads it too."""
    tokenizer.save_pretrained(str(out_dir))
    path = Path(out_dir) / "tokenizer_config.json"
    if not path.exists():
        return
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("tokenizer_class") in _PORTABLE_TOKENIZER_CLASSES:
        cfg["tokenizer_class"] = _PORTABLE_TOKENIZER_CLASSES[cfg["tokenizer_class"]]
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
