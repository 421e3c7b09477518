"""bigbench's source archive for the SmolLM2 micro run (tests/system/test_smol.py): the real one where
it can be had, else a stand-in in its layout.

The registry no longer serves bigbench==1.0.0 (2026-12-07: PyPI lists only 0.0.1, which carries no
task.json files), so a fresh machine cannot fetch BIG-bench's task files. The stand-in is a source
archive `bigbench-1.0.0.tar.gz` with `bigbench/benchmark_tasks/<task>/task.json` for the three tasks
of the paper's Table 6, in BIG-bench's JSON task schema (`examples` of `input` + `target_scores`;
one task with a `task_prefix`, one with its own example prefixes, one with BIG-bench's defaults),
with short examples written here: what the asset rule, lm-eval and the evaluation rules do with it
is the real code path; the scores say nothing about BIG-bench.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import warnings
from pathlib import Path

import yaml

from spin_core.assets.registry import cache_dir, fetch_package, file_sha256
from spin_core.errors import PackageNotServedError

CAUSES = [  # (what happened, the outcome, whether a typical person calls the first the cause)
    ("A child dropped a glass on the stone floor", "the glass broke", "Yes"),
    ("The farmer forgot to close the gate", "the sheep walked out of the field", "Yes"),
    ("A bird sang outside while the kettle boiled", "the water got hot", "No"),
    ("The driver ran a red light", "two cars collided at the crossing", "Yes"),
    ("Anna wore a blue hat on the day", "the train was late", "No"),
    ("The cook left the pan on a high flame", "the sauce burned", "Yes"),
    ("It was a Tuesday", "the printer ran out of paper", "No"),
    ("A storm brought a tree down across the line", "the village lost power", "Yes"),
    ("Tom whistled in the corridor", "the exam results were posted", "No"),
    ("The gardener watered the plants every day", "the tomatoes grew well", "Yes"),
    ("The moon was full", "the shop sold more bread", "No"),
    ("Someone left the freezer door open overnight", "the ice cream melted", "Yes"),
]
TERMS = ["painters", "sailors", "poets", "bakers", "climbers", "singers", "dancers", "farmers"]
SPORTS = [  # (a sentence, whether it is plausible)
    ("The goalkeeper caught the ball with both hands.", "plausible"),
    ("The striker scored a touchdown in the penalty area.", "implausible"),
    ("The pitcher threw a curveball for a strike.", "plausible"),
    ("The tennis player hit a home run over the net.", "implausible"),
    ("The point guard made a three-pointer at the buzzer.", "plausible"),
    ("The goalie served an ace in the third period.", "implausible"),
    ("The golfer sank a long putt on the eighteenth green.", "plausible"),
    ("The boxer kicked a field goal in the second round.", "implausible"),
    ("The sprinter false-started and was disqualified.", "plausible"),
    ("The swimmer dribbled past two defenders.", "implausible"),
    ("The batter was caught out at long leg.", "plausible"),
    ("The jockey hit a slam dunk at the finish line.", "implausible"),
]


def standin_tasks() -> dict[str, dict]:
    """The three task.json files' contents, 12 examples each (a subset of 8 is drawn in the test)."""
    causal = [
        {"input": f"{cause}, and {outcome}. Did this cause it?", "target_scores": {"Yes": int(a == "Yes"), "No": int(a == "No")}}
        for cause, outcome, a in CAUSES
    ]  # fmt: skip
    syllogisms = []
    for i in range(12):
        a, b, c = TERMS[i % 8], TERMS[(i + 3) % 8], TERMS[(i + 5) % 8]
        valid = i % 2 == 0
        text = (f"All {a} are {b}. All {b} are {c}. So all {a} are {c}." if valid
                else f"All {a} are {b}. Some {c} are {b}. So some {c} are {a}.")  # fmt: skip
        syllogisms.append({"input": text, "target_scores": {"valid": int(valid), "invalid": int(not valid)}})
    sports = [
        {"input": f'Is the following sentence plausible? "{s}"', "target_scores": {"plausible": int(p == "plausible"), "implausible": int(p != "plausible")}}
        for s, p in SPORTS
    ]  # fmt: skip
    common = {"metrics": ["multiple_choice_grade"], "keywords": ["stand-in"]}
    return {
        "causal_judgment": {"name": "causal_judgment", "description": "stand-in", **common,
                            "task_prefix": "Answer each question about causation.", "examples": causal},
        "formal_fallacies_syllogisms_negation": {"name": "formal_fallacies_syllogisms_negation", "description": "stand-in", **common,
                                                 "example_input_prefix": "\nArgument: ", "example_output_prefix": "\nValid or invalid? ",
                                                 "examples": syllogisms},
        "sports_understanding": {"name": "sports_understanding", "description": "stand-in", **common, "examples": sports},
    }  # fmt: skip


def write_standin_archive(folder: Path, version: str = "1.0.0") -> Path:
    """folder/bigbench-<version>.tar.gz, byte for byte the same on every call (no timestamps)."""
    top = f"bigbench-{version}"
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        for task, content in standin_tasks().items():
            data = json.dumps(content, indent=1).encode()
            info = tarfile.TarInfo(f"{top}/bigbench/benchmark_tasks/{task}/task.json")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{top}.tar.gz"
    path.write_bytes(buf.getvalue())
    return path


def bigbench_for_smol(smol_config: Path, scratch: Path) -> tuple[dict, dict[str, int]]:
    """(config overlay, examples per task file): {} and BIG-bench's counts where the configured
    archive is cached or downloads; else an overlay whose assets.cache is `scratch` (the other
    packages linked from the user cache, so they download there once) holding the stand-in, with
    its sha256, and the stand-in's counts. Any other failure to fetch is raised."""
    assets = yaml.safe_load(smol_config.read_text())["assets"]
    bb = assets["bigbench"]
    try:
        fetch_package(bb["package"], bb["version"], bb["sha256"], assets.get("cache"))
        return {}, {
            "causal_judgment": 190,
            "formal_fallacies_syllogisms_negation": 14_200,
            "sports_understanding": 1_000,
        }
    except PackageNotServedError as e:
        warnings.warn(f"{e}: BIG-bench stand-in task files instead (tests/helpers/bigbench.py)", stacklevel=2)
    user_cache = cache_dir(assets.get("cache"))
    for key in ("model", "chat_data"):
        name = f"{assets[key]['package']}-{assets[key]['version']}"
        (user_cache / name).mkdir(parents=True, exist_ok=True)
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(user_cache / name, scratch / name)
    archive = write_standin_archive(scratch / f"{bb['package']}-{bb['version']}", bb["version"])
    overlay = {"assets": {"cache": str(scratch), "bigbench": {"sha256": file_sha256(archive)}}}
    return overlay, {task: len(content["examples"]) for task, content in standin_tasks().items()}
