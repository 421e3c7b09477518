"""Running the Snakemake workflow on the micro config in a scratch directory."""

import os
import subprocess
import sys
from pathlib import Path

from spin_core.io import temp_glob

ROOT = Path(__file__).resolve().parents[2]
MICRO = ROOT / "config" / "micro.yaml"
MODELS = ["sft", "iter0", "iter1", "iter2", "iter3"]


def snakemake_cmd(workdir: Path, *args: str, configfile: Path | list[Path] = MICRO) -> list[str]:
    files = [str(f) for f in (configfile if isinstance(configfile, list) else [configfile])]
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        *files,
        "--cores",
        "2",
        *args,
    ]


def workflow_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Rules call `python`: make it this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def run_snakemake(workdir: Path, *args: str, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(workdir, *args, **kw), env=workflow_env(), capture_output=True, text=True, timeout=timeout
    )


def start_snakemake(workdir: Path, configs: list[Path], log) -> subprocess.Popen:
    """The workflow in its own process group (so a test can SIGKILL all of it), output to `log`."""
    return subprocess.Popen(
        snakemake_cmd(workdir, configfile=configs),
        env=workflow_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def declared_outputs(iterations=(0, 1, 2, 3), shards=1, evaluation=True) -> list[str]:
    out = [
        "data/world/world.json",
        "data/world/tokenizer",
        "data/sft/train.jsonl",
        "data/sft/test.jsonl",
        "models/sft",
        "results/train/sft/metrics.json",
        "results/divergence/exact.csv",
    ]
    for t in iterations:
        out += [f"data/generated/iter{t}/shard{k}-of-{shards}.parquet" for k in range(shards)]
        out += [f"data/pairs/pairs_iter{t}.parquet", f"models/iter{t}", f"results/train/iter{t}/metrics.json"]
    models = ["sft"] + [f"iter{t}" for t in iterations]
    out += [f"results/divergence/exact/{m}.csv" for m in models]
    out += [f"results/divergence/per_prompt/{m}.parquet" for m in models]
    if not evaluation:
        return out
    out += ["results/eval/scores.csv", "data/eval/mt_bench/question.jsonl", "data/eval/lm_eval/tiny_choice.yaml"]
    for m in models:
        out += [
            f"results/eval/leaderboard/{m}/{t}.{ext}" for t in ("tiny_choice", "tiny_greedy") for ext in ("json", "csv")
        ]
        out += [
            f"results/eval/bigbench/{m}/tiny_bb_continuation.json",
            f"results/eval/mt_bench/model_answer/{m}.jsonl",
            f"results/eval/mt_bench/model_judgment/{m}_single.jsonl",
        ]
    return out


# Every output's temp siblings (spin_core/io.py): a kill mid-write leaves one; it never takes a final name.
TEMP_GLOB = temp_glob()


def temps_left(workdir: Path) -> list[Path]:
    """The temp siblings under data/, results/ and models/, relative to workdir."""
    return sorted(p.relative_to(workdir) for d in ("data", "results", "models") for p in (workdir / d).rglob(TEMP_GLOB))


def check_no_partial_outputs(workdir: Path) -> None:
    """Every output file present is complete and readable; no temp file sits in a final name."""
    import json

    import pandas as pd

    from spin_core.modeling import check_model_dir

    def finals(pattern: str) -> list[Path]:  # a hidden name is a temp or Snakemake's own, not an output
        return [p for p in workdir.glob(pattern) if not p.name.startswith(".")]

    for path in finals("data/**/*.parquet"):
        pd.read_parquet(path)
    for path in finals("results/**/*.csv"):
        pd.read_csv(path)
    for path in finals("results/**/*.json") + finals("data/world/*.json"):
        json.loads(path.read_text())
    for path in finals("data/sft/*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)
    for entry in workdir.glob("models/*"):
        # models/<name>, or for the extra chains models/<chain>/iter<t>; hidden names are temps
        is_chain = entry.is_dir() and entry.name.startswith(("seed", "sft_continued"))
        for model in entry.iterdir() if is_chain else [entry]:
            if model.is_dir() and not model.name.startswith("."):
                check_model_dir(model)
