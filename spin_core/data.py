"""The data contracts of both scales: SFT rows in the UltraChat-200k schema (`prompt_id`, `prompt`,
`messages`) and SPIN pairs (`real`, `generated`, or the official `chosen`/`rejected`): loading and
validating them, and the `data` stage that writes the SFT splits."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from .config import DataConfig
from .errors import DataError
from .io import read_records, write_jsonl
from .names import prompt_id
from .world.sft_data import make_tiny_sft_data
from .world.world import TinyWorld

log = logging.getLogger(__name__)


def first_exchange(messages, where: str) -> tuple[str, str]:
    """The first user turn and the assistant turn after it (SPIN is single-turn, as upstream)."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: field 'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: messages[{i}] needs 'role' and 'content'")
    for i, m in enumerate(messages[:-1]):
        if m["role"] == "user" and messages[i + 1]["role"] == "assistant":
            return str(m["content"]), str(messages[i + 1]["content"])
    raise DataError(f"{where}: field 'messages' has no user turn followed by an assistant turn")


def validate_sft_rows(rows: list[dict], path: str | Path) -> list[dict]:
    """Check the UltraChat schema row by row; errors name the file, row and field."""
    if not rows:
        raise DataError(f"{path}: dataset is empty")
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        where = f"{path}: row {i}"
        for key in ("prompt_id", "prompt", "messages"):
            if key not in row:
                raise DataError(f"{where}: missing field '{key}'")
        if row["prompt_id"] in seen:
            raise DataError(
                f"{where}: duplicate prompt_id {row['prompt_id']!r} (first seen in row {seen[row['prompt_id']]})"
            )
        seen[row["prompt_id"]] = i
        first_exchange(row["messages"], where)
    return rows


def load_sft(path: str | Path) -> list[dict]:
    return validate_sft_rows(read_records(path), path)


def load_ultrachat(name: str, split: str, n: int, seed: int, revision: str | None = None) -> list[dict]:
    """Paper scale: `n` rows of HuggingFaceH4/ultrachat_200k (shuffled with `seed`), first exchange only."""
    from datasets import config as datasets_config
    from datasets import load_dataset

    log.info("loading %s split %s (revision %s)", name, split, revision)
    if Path(name).is_dir():
        # A local folder is read afresh: datasets' cache can key it by the path as given, so a folder
        # rewritten in place, or another run's folder at the same relative path (assets/chat_data),
        # would silently give the rows of the first one it cached.
        with tempfile.TemporaryDirectory(prefix="spin-repro-datasets-") as cache:
            ds = load_dataset(str(Path(name).resolve()), split=split, cache_dir=cache, keep_in_memory=True)
    else:
        try:
            ds = load_dataset(name, split=split, revision=revision)
        except OSError as e:  # datasets' ConnectionError: "Couldn't reach '<name>' on the Hub"
            if not datasets_config.HF_HUB_OFFLINE:  # datasets' own reading of HF_DATASETS_OFFLINE / HF_HUB_OFFLINE
                raise
            # Offline, datasets reads its own cache (a hub dataset downloaded earlier); say where we looked.
            raise DataError(
                f"data.dataset {name!r}: no such folder ({Path(name).resolve()}), nor in datasets' cache, and"
                f" the hub is offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE): a local folder in UltraChat-200k's"
                f" schema, or a hub id downloaded before or with the hub reachable ({e})"
            ) from None
    ds = ds.shuffle(seed=seed)
    n = min(n, len(ds))
    rows = []
    for i, row in enumerate(ds.select(range(n))):
        user, assistant = first_exchange(row["messages"], f"{name}[{split}] row {i + 1}")
        rows.append(
            {
                "prompt_id": row["prompt_id"],
                "prompt": row["prompt"],
                "messages": [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": assistant},
                ],
            }
        )
    return rows


def normalise_pair_row(row: dict, where: str) -> dict:
    """Accept our `real`/`generated` pairs and the official `chosen`/`rejected` schema (UCLA-AGI/SPIN_iter*)."""
    row = dict(row)
    if "real" not in row and "chosen" in row:
        row["real"] = row.pop("chosen")
    if "generated" not in row and "rejected" in row:
        row["generated"] = row.pop("rejected")
    for key in ("real", "generated"):
        if key not in row:
            raise DataError(f"{where}: missing field '{key}' (or its official name)")
        first_exchange(row[key], f"{where}: field '{key}'")
    prompt, _ = first_exchange(row["real"], f"{where}: field 'real'")
    row.setdefault("prompt", prompt)
    row.setdefault("prompt_id", prompt_id(row["prompt"]))
    return row


def load_pairs(path: str | Path) -> list[dict]:
    rows = read_records(path)
    if not rows:
        raise DataError(f"{path}: dataset is empty")
    return [normalise_pair_row(r, f"{path}: row {i}") for i, r in enumerate(rows, start=1)]


def write_sft_data(data: DataConfig, train_out: Path, test_out: Path, world: Path | None = None) -> None:
    """Write the SFT train/test splits (UltraChat schema): sampled from the tiny world, or UltraChat."""
    if data.source == "tiny_world":
        if world is None:
            raise DataError("data: --world (the tiny world's file) is required when data.source is 'tiny_world'")
        train, test = make_tiny_sft_data(TinyWorld.load(world), data.n_train, data.n_test, data.seed)
    else:
        train = load_ultrachat(data.dataset, data.train_split, data.n_train, data.seed, data.revision)
        test = load_ultrachat(data.dataset, data.test_split, data.n_test, data.seed, data.revision)
    validate_sft_rows(train, train_out)
    validate_sft_rows(test, test_out)
    write_jsonl(train_out, train)
    write_jsonl(test_out, test)
    log.info("data: %d train rows -> %s, %d test rows -> %s", len(train), train_out, len(test), test_out)
