"""BIG-bench's own JSON tasks (the bigbench package's source archive) as local lm-eval tasks.

The three Big-Bench tasks of the paper's Table 6 are read from
`bigbench/benchmark_tasks/<task>/task.json` inside bigbench-1.0.0.tar.gz without installing the
package (it would pull TensorFlow), then converted as the tiny world's BIG-bench task is
(spin_core/world/tasks.py: multiple choice over `target_scores`, the best-scored target gold), with
BIG-bench's own prompt form: the task's `task_prefix` once before the prompt (lm-eval's
`description`), each example as `example_input_prefix` + input + `example_output_prefix` (BIG-bench's
defaults "\\nQ: " and "\\nA: " where a task sets none). A task with many examples can be cut to a
seeded random subset (assets.bigbench.max_examples), kept in the file's order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..config import BigBenchAsset
from ..errors import DataError, PackageNotServedError
from ..io import write_json
from ..names import asset_bigbench_task
from ..world.tasks import bigbench_json_to_docs, write_lm_eval_task
from .registry import fetch, package_record, read_members

log = logging.getLogger(__name__)

TASKS_FOLDER = "bigbench/benchmark_tasks"
# BIG-bench's defaults (bigbench/api/json_task.py) for tasks that set no prefix of their own.
DEFAULT_INPUT_PREFIX, DEFAULT_OUTPUT_PREFIX = "\nQ: ", "\nA: "


def task_docs(task: dict, where: str, max_examples: int | None, seed: int) -> tuple[list[dict], str, list[int]]:
    """(docs, description, indices of the examples kept) of one BIG-bench JSON task."""
    docs = bigbench_json_to_docs(task, where)
    inp = task.get("example_input_prefix", DEFAULT_INPUT_PREFIX)
    out = task.get("example_output_prefix", DEFAULT_OUTPUT_PREFIX)
    for doc in docs:
        doc["input"] = f"{inp}{doc['input']}{out}".strip()
    keep = list(range(len(docs)))
    if max_examples is not None and max_examples < len(docs):
        keep = sorted(np.random.default_rng(seed).choice(len(docs), size=max_examples, replace=False).tolist())
    prefix = task.get("task_prefix", "")
    description = prefix if not prefix or prefix.endswith(("\n", " ")) else prefix + "\n"
    return [docs[i] for i in keep], description, keep


def make_bigbench_asset(bigbench: BigBenchAsset, out: Path, record: Path, cache: str | None = None) -> None:
    """lm-eval tasks bb_<task> (YAML + JSONL) under `out` for lm-eval's include_path, and their record."""
    b = bigbench
    try:
        archive = fetch(b, cache)
    except PackageNotServedError as e:
        # config/smol.yaml evaluates on these tasks alone: without a copy, the rest still runs.
        raise PackageNotServedError(
            f"{e}; or run without the Big-Bench evaluation, the only one config/smol.yaml runs:"
            " evaluation: {enabled: false} in a config file after it"
        ) from None
    members = {t: f"{TASKS_FOLDER}/{t}/task.json" for t in b.tasks}
    raw = read_members(archive, list(members.values()))
    facts = {}
    # Each file is written atomically and the record last: the record says the folder is complete
    # (the rule's outputs are both, so Snakemake removes a failed job's folder).
    for name, member in members.items():
        where = f"{archive.name}:{member}"
        try:
            task = json.loads(raw[member])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{where}: not a JSON task ({e})") from None
        docs, description, keep = task_docs(task, where, b.max_examples, b.seed)
        lm_name = asset_bigbench_task(name)
        write_lm_eval_task(out, lm_name, docs, "multiple_choice", description)
        facts[lm_name] = {"member": member, "sha256": hashlib.sha256(raw[member]).hexdigest(),
                          "examples": len(task["examples"]), "kept": len(keep), "first_kept": keep[:5]}  # fmt: skip
        log.info("bigbench: %s: %d of %d examples -> lm-eval task %s", name, len(keep), len(task["examples"]), lm_name)
    write_json(record, {**package_record(b, archive), "max_examples": b.max_examples, "seed": b.seed, "tasks": facts})
