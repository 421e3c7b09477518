"""One cell of the convergence map: SPIN on the tiny world for many iterations at one beta and one
training budget (learning rate x epochs), with the exact forward/reverse KL after every iteration.

Each iteration is the workflow's own stage functions in a row (generate_shard -> reference_pass ->
train_spin -> sample_heldout -> exact_divergence) on a subset of the SFT prompts, so the map
measures the same trainer as the main run. Snakemake runs one job per cell; inside a cell the
iterations must run in order, and each finished iteration leaves its model and divergence rows in
the cell's work folder, so a killed cell resumes at the first unfinished iteration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from .config import DivergenceConfig, GenerateConfig, SpinConfig
from .data import load_sft
from .io import write_json, write_jsonl, write_table

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MapConfig:
    iterations: int = 6
    n_prompts: int = 1000  # SFT prompts per iteration (a subset keeps a cell to about a minute)
    betas: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0)
    budgets: tuple[tuple[float, float], ...] = ((1e-4, 1), (1e-4, 3), (1e-3, 3))  # (learning_rate, epochs)
    divergence_prompts: int = 200
    divergence_samples: int = 4

    @classmethod
    def from_dict(cls, d: dict | None) -> MapConfig:
        d = dict(d or {})
        if "betas" in d:
            d["betas"] = tuple(float(b) for b in d["betas"])
        if "budgets" in d:
            d["budgets"] = tuple((float(b["learning_rate"]), float(b["epochs"])) for b in d["budgets"])
        return cls(**d)


def cell_name(beta: float, learning_rate: float, epochs: float) -> str:
    return f"beta{beta:g}_lr{learning_rate:g}_ep{epochs:g}"


def _digest(path: str | Path) -> str:
    """sha256 of a file, or of every file in a directory (sorted by name)."""
    h = hashlib.sha256()
    path = Path(path)
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _inputs_stamp(
    beta, learning_rate, epochs, cfg, spin, generate, divergence, sft_model, train_path, test_path
) -> dict:
    stamp = {
        "cell": [beta, learning_rate, epochs],
        "configs": [dataclasses.asdict(c) for c in (cfg, spin, generate, divergence)],
        "sft": _digest(sft_model),
        "data": [_digest(train_path), _digest(test_path)],
    }
    return json.loads(json.dumps(stamp))  # as read back from inputs.json (tuples become lists)


def run_cell(
    beta: float,
    learning_rate: float,
    epochs: float,
    cfg: MapConfig,
    spin: SpinConfig,
    generate: GenerateConfig,
    divergence: DivergenceConfig,
    sft_model: str | Path,
    world_path: str | Path,
    train_path: str | Path,
    test_path: str | Path,
    work_dir: str | Path,
) -> pd.DataFrame:
    from .divergence import exact_divergence
    from .generation import generate_shard
    from .heldout import sample_heldout
    from .reference import reference_pass
    from .trainer import train_spin

    work = Path(work_dir)
    name = cell_name(beta, learning_rate, epochs)
    # Finished iterations in the work folder are reused only if they were made from the same
    # inputs; otherwise (new SFT model, other settings) the cell starts over.
    stamp = _inputs_stamp(
        beta, learning_rate, epochs, cfg, spin, generate, divergence, sft_model, train_path, test_path
    )
    stamp_file = work / "inputs.json"
    if work.exists() and (not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp):
        log.info("map cell %s: inputs changed since the last run; starting the cell over", name)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(stamp_file, stamp)
    prompts = work / "prompts.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, load_sft(train_path)[: cfg.n_prompts])
    spin = dataclasses.replace(
        spin, beta=beta, learning_rate=learning_rate, num_train_epochs=epochs, keep_checkpoints=False
    )
    generate = dataclasses.replace(generate, num_shards=1)
    div = dataclasses.replace(divergence, n_prompts=cfg.divergence_prompts, samples_per_prompt=cfg.divergence_samples)

    def measure(model_dir: Path, label: str, iteration: int) -> pd.DataFrame:
        out = work / f"divergence_{label}.csv"
        if out.exists():
            return pd.read_csv(out)
        samples = work / f"samples_{label}.parquet"
        if not samples.exists():
            write_table(samples, sample_heldout(model_dir, test_path, div, generate))
        df = exact_divergence(model_dir, world_path, samples, div, label, iteration)
        write_table(out, df)
        return df

    frames = [measure(Path(sft_model), "sft", -1)]
    previous = Path(sft_model)
    for t in range(cfg.iterations):
        model = work / f"iter{t}"
        if not model.exists():
            log.info("map cell %s: iteration %d/%d", name, t + 1, cfg.iterations)
            generated = work / f"generated_iter{t}.parquet"
            if not generated.exists():
                generate_shard(previous, prompts, generated, generate, 0, t)
            pairs = work / f"pairs_iter{t}.parquet"
            if not pairs.exists():
                reference_pass([generated], previous, pairs, spin)
            train_spin(spin, pairs, previous, model, work / f"checkpoints_iter{t}", work / f"metrics_iter{t}.json")
        frames.append(measure(model, f"iter{t}", t))
        previous = model
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "cell", name)
    df.insert(1, "beta", beta)
    df.insert(2, "learning_rate", learning_rate)
    df.insert(3, "epochs", epochs)
    return df
