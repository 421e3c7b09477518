"""A chain of SPIN iterations run inside one job, for the studies that sweep the recipe (the convergence
map, the recipe ablation): each iteration is the workflow's own stage functions in a row
(generate_shard -> reference_pass -> train_spin, or continue_sft for the control), then the exact KL
of the new iterate. Every finished step leaves its file in the job's work folder, so a killed job
resumes at the first unfinished step; a stamp of the inputs (settings, SFT model, data) decides
whether the folder's files may be reused at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..config import (
    ControlConfig,
    DivergenceConfig,
    EncodingConfig,
    GenerateConfig,
    ReferenceConfig,
    SpinConfig,
    replace,
)
from ..data import load_sft
from ..generate.pairs import generate_shard
from ..io import read_json, read_tables, write_json, write_jsonl, write_table
from ..stats import paired_bootstrap_ci
from ..train.reference import reference_pass
from ..train.resume import remove_checkpoints
from ..train.sft import continue_sft
from ..train.spin import train_spin
from .exact import exact_divergence, score_samples
from .proxies import divergence_proxies
from .samples import sample_heldout
from .stability import realised_step

log = logging.getLogger(__name__)


def digest(path: str | Path) -> str:
    """sha256 of a file, or of every file in a directory (sorted by name)."""
    h = hashlib.sha256()
    path = Path(path)
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def inputs_stamp(settings, sections: tuple, sft: Path, train: Path, test: Path, extra: tuple = ()) -> dict:
    """What a job's finished steps were made from: its own settings, the config sections, and digests of
    the SFT model, the data and any other input file (`extra`)."""
    stamp = {
        "settings": settings,
        "configs": [c.model_dump() for c in sections],
        "sft": digest(sft),
        "data": [digest(train), digest(test)] + [digest(p) for p in extra],
    }
    return json.loads(json.dumps(stamp))  # as read back from inputs.json (tuples become lists)


def start_work_dir(work: Path, stamp: dict, name: str) -> None:
    """Keep the folder's finished steps only if they were made from the same inputs; otherwise (a new
    SFT model, other settings) the job starts over."""
    stamp_file = work / "inputs.json"
    if work.exists() and (not stamp_file.exists() or json.loads(stamp_file.read_text()) != stamp):
        log.info("%s: inputs changed since the last run; starting over", name)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(stamp_file, stamp)


def chain_prompts(work: Path, train: Path, n_prompts: int) -> Path:
    """The first n_prompts SFT prompts, the ones every iteration of the chain generates for."""
    prompts = work / "prompts.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, load_sft(train)[:n_prompts])
    return prompts


def pair_files(work: Path, t: int, spin: SpinConfig) -> list[Path]:
    """The generated-pairs files iteration t trains on: those of the same iterations as the main run's
    rule (this one's, and with mixing the previous one's)."""
    recipe = spin.for_iteration(t)
    sources = names.pair_source_iterations(t, recipe.mix_previous_iteration, recipe.replay)
    return [work / f"generated_iter{s}.parquet" for s in sources]


def metrics_file(work: Path, t: int) -> Path:
    return work / f"metrics_iter{t}.json"


def spin_iteration(
    work: Path, t: int, previous: Path, prompts: Path, spin: SpinConfig, generate: GenerateConfig, sft: Path
):
    """SPIN iteration t, as the workflow's stages run it: generate from the previous iterate, score the
    pairs it trains on under that iterate, train. The published fixes change these steps: fictitious
    play and SAPO's moving average (spin.opponent) sample y' from other models of the chain, SAPO's
    replay buffer (spin.replay) trains on more iterations' pairs, α-SPIN (spin.reference_alpha) mixes
    the SFT model `sft` into the reference."""
    recipe = spin.for_iteration(t)
    generated = work / f"generated_iter{t}.parquet"
    if not generated.exists():
        if recipe.opponent == "fictitious":
            history = [Path(sft)] + [work / names.model_name(s) for s in range(t)]
            fictitious_generation(work, t, history, prompts, recipe, generate, generated)
        elif recipe.opponent == "ema":
            opponent = ema_opponent(work, t, Path(sft), recipe.ema_decay)
            generate_shard(generate, recipe.view(EncodingConfig), opponent, prompts, generated, iteration=t)
        else:
            generate_shard(generate, recipe.view(EncodingConfig), previous, prompts, generated, iteration=t)
    pairs = work / f"pairs_iter{t}.parquet"
    if not pairs.exists():
        reference_pass(recipe.view(ReferenceConfig), pair_files(work, t, spin), previous, pairs, base=Path(sft))
    checkpoints = work / f"checkpoints_iter{t}"
    train_spin(recipe, pairs, previous, work / names.model_name(t), checkpoints, metrics_file(work, t))
    remove_checkpoints(checkpoints)  # the model is saved (atomically): nothing will resume from them


def ema_opponent(work: Path, t: int, sft: Path, decay: float) -> Path:
    """SAPO's opponent for iteration t: E_0 = the SFT model, E_t = decay E_(t-1) + (1 - decay) iter(t-1),
    parameter by parameter (float32), each kept in the work folder (ema_iter{t}) for the next."""
    if t == 0:
        return Path(sft)
    out = work / f"ema_iter{t}"
    if out.exists():
        return out
    import torch

    from ..modeling import load_model, save_model

    previous_ema, _ = load_model(ema_opponent(work, t - 1, sft, decay))
    latest, tokenizer = load_model(work / names.model_name(t - 1))
    ema = dict(previous_ema.named_parameters())
    with torch.no_grad():
        # named_parameters lists a tied tensor (embeddings and LM head) once, so each is updated once.
        for key, value in latest.named_parameters():
            value.mul_(1 - decay).add_(ema[key], alpha=decay)
    save_model(latest, tokenizer, out)
    return out


def fictitious_generation(
    work: Path, t: int, history: list[Path], prompts: Path, spin: SpinConfig, generate: GenerateConfig, out: Path
) -> None:
    """Fictitious play's y' for iteration t: each prompt's from one model drawn uniformly from `history`
    (the SFT model and iterations 0..t-1; seeded by the iteration), each model sampling its prompts as
    the generate stage does (its own seed), the rows back in prompt order with the model in `opponent`."""
    rows = load_sft(prompts)
    draw = np.random.default_rng(names.shard_seed(generate.seed, t, 0)).integers(0, len(history), size=len(rows))
    parts = []
    for k, model in enumerate(history):
        mine = [row for row, d in zip(rows, draw) if d == k]
        if not mine:
            continue
        sub_prompts, sub_out = work / f"prompts_iter{t}_from{k}.jsonl", work / f"generated_iter{t}_from{k}.parquet"
        write_jsonl(sub_prompts, mine)
        generate_shard(replace(generate, seed=generate.seed + k), spin.view(EncodingConfig), model, sub_prompts,
                       sub_out, iteration=t)  # fmt: skip
        parts.append(pd.read_parquet(sub_out).assign(opponent=model.name))
    order = {row["prompt_id"]: i for i, row in enumerate(rows)}
    df = pd.concat(parts, ignore_index=True)
    df = df.iloc[np.argsort([order[p] for p in df["prompt_id"]], kind="stable")].reset_index(drop=True)
    log.info("fictitious play, iteration %d: y' from %s", t, df["opponent"].value_counts().sort_index().to_dict())
    write_table(out, df)


def control_iteration(
    work: Path, t: int, previous: Path, prompts: Path, spin: SpinConfig, control: ControlConfig, match: Path
):
    """The SFT-continued control's iteration t: supervised steps on the same prompts, as many as the
    SPIN iteration whose metrics are `match` took."""
    checkpoints = work / f"checkpoints_iter{t}"
    continue_sft(spin.for_iteration(t), control, prompts, previous, match, work / names.model_name(t), checkpoints,
                 metrics_file(work, t))  # fmt: skip
    remove_checkpoints(checkpoints)


def measure(
    work: Path,
    model: Path,
    label: str,
    world: Path,
    test: Path,
    div: DivergenceConfig,
    generate: GenerateConfig,
    spin: SpinConfig,
    previous: tuple[Path, str] | None = None,
) -> pd.DataFrame:
    """The exact KL of one model of the chain. Its held-out samples, per-response forward-KL scores
    (for the realised step), per-prompt KLs (for paired comparisons) and paper-scale proxies (against
    `previous`, the model before it and its label) stay in the work folder."""
    out = work / f"divergence_{label}.csv"
    samples = work / f"samples_{label}.parquet"
    if not samples.exists():
        write_table(samples, sample_heldout(div, generate, spin.view(EncodingConfig), model, test))
    if out.exists():
        df = pd.read_csv(out)
    else:
        df = exact_divergence(div, model, world, samples, label, forward_out=work / f"forward_{label}.parquet",
                              per_prompt_out=per_prompt_file(work, label),
                              reverse_out=work / f"reverse_{label}.parquet")  # fmt: skip
        write_table(out, df)
    measure_proxies(work, model, label, test, div, spin, previous)
    return df


def measure_proxies(
    work: Path, model: Path, label: str, test: Path, div: DivergenceConfig, spin: SpinConfig, previous
) -> pd.DataFrame:
    """What a paper-scale user has of one model of the chain, computed as the workflow's proxies stage
    does: the held-out NLL of the test split's human responses (one per prompt, not the samples the
    exact KL is estimated on) and, against the model before it, the held-out real-vs-generated margin
    with the beta of the step that made it."""
    out = work / f"proxies_{label}.csv"
    if out.exists():
        return pd.read_csv(out)
    t = names.parse_model(label).iteration
    recipe = spin.for_iteration(t) if t >= 0 else spin
    ref = {}
    if previous:  # the margin against the model before it, with the beta of the step that made this one
        ref = {"ref_model": previous[0], "ref_samples": work / f"samples_{previous[1]}.parquet", "beta": recipe.beta}
    samples = work / f"samples_{label}.parquet"
    df = divergence_proxies(div, recipe.view(EncodingConfig), model, samples, test, label, **ref)
    write_table(out, df)
    return df


def chain_proxy(work: Path, labels: list[str], metric: str) -> dict[str, float]:
    """Each model's mean of one proxy (heldout_nll, rv_margin), NaN where it has none (rv_margin: sft)."""
    values = {}
    for label in labels:
        path = work / f"proxies_{label}.csv"
        df = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["metric", "value"])
        hit = df.loc[df["metric"] == metric, "value"]
        values[label] = float(hit.iloc[0]) if len(hit) else float("nan")
    return values


def per_prompt_file(work: Path, label: str) -> Path:
    return work / f"per_prompt_{label}.parquet"


def chain_steps(work: Path, labels: list[str]) -> dict[str, float]:
    """The realised step (divergence/stability.py) that made each iterate from the one before, on the
    forward-KL responses both were scored on; NaN where a model's per-response file is missing."""
    steps = {}
    for prev, cur in zip(labels, labels[1:]):
        a, b = work / f"forward_{prev}.parquet", work / f"forward_{cur}.parquet"
        if not (a.exists() and b.exists()):
            steps[cur] = float("nan")
            continue
        before, after = pd.read_parquet(a), pd.read_parquet(b)
        if not np.allclose(before.logp_data, after.logp_data):  # not the same responses
            raise RuntimeError(f"{work}: {prev} and {cur} were scored on different responses")
        steps[cur] = realised_step(after.logp_model, before.logp_model, after.logp_data, after.prompt)
    return steps


def chain_margins(work: Path, labels: list[str], div: DivergenceConfig) -> dict[str, float]:
    """The held-out margin that made each iterate from the one before, in nats: with
    D = log p_{t+1} - log p_t, M_t = E_{y~p_data}[D] - E_{y~p_t}[D], on the forward-KL responses (the
    human side) and on p_t's own held-out samples (the generated side), scored by both models. It
    needs no log p_data: it is the real-vs-generated reward margin of the paper-scale proxies over beta.
    For an update along log p_data - log p_t with step s, M_t = s (KL(p_data||p_t) + KL(p_t||p_data))
    exactly. NaN where a file is missing."""
    margins = {}
    for prev, cur in zip(labels, labels[1:]):
        files = [work / f"forward_{prev}.parquet", work / f"forward_{cur}.parquet", work / f"reverse_{prev}.parquet"]
        cur_model = work / cur
        if not all(f.exists() for f in files) or not cur_model.exists():
            margins[cur] = float("nan")
            continue
        cross = work / f"cross_{prev}_under_{cur}.parquet"
        if not cross.exists():
            logp = score_samples(cur_model, work / f"samples_{prev}.parquet", div.samples_per_prompt, div.batch_size)
            write_table(cross, pd.DataFrame({"logp_model": logp}))
        before, after = pd.read_parquet(files[0]), pd.read_parquet(files[1])
        own, crossed = pd.read_parquet(files[2]), pd.read_parquet(cross)
        human = float(np.mean(after.logp_model - before.logp_model))
        generated = float(np.mean(crossed.logp_model - own.logp_model))
        margins[cur] = human - generated
    return margins


def chain_per_prompt(work: Path, labels: list[str]) -> pd.DataFrame:
    """The per-prompt KLs of the chain's models (rows model, prompt_id, metric, value), in label order."""
    return read_tables([per_prompt_file(work, label) for label in labels])


def paired_changes(work: Path, labels: list[str]) -> pd.DataFrame:
    """Per model and metric, paired on the held-out prompts: the change from the previous model
    (paired_step) and from the SFT model (change_from_sft), each with its paired bootstrap 95% CI."""
    pp = chain_per_prompt(work, labels)
    rows = []
    for metric, part in pp.groupby("metric"):
        wide = part.pivot_table(index="prompt_id", columns="model", values="value")
        for prev, cur in zip(labels, labels[1:]):
            step, step_lo, step_hi = paired_bootstrap_ci(wide[cur] - wide[prev])
            total, lo, hi = paired_bootstrap_ci(wide[cur] - wide[labels[0]])
            rows.append({"model": cur, "metric": metric, "paired_step": step, "paired_step_ci_low": step_lo,
                         "paired_step_ci_high": step_hi, "change_from_sft": total, "change_ci_low": lo,
                         "change_ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


def run_chain(work: Path, sft: Path, iterations: int, step, measure_model, name: str) -> tuple[pd.DataFrame, list]:
    """sft, then `iterations` iterations made by step(t, previous) into work/iter{t}, each measured by
    measure_model(model, label, (previous model, its label) or None). Returns the tidy KL rows and the model labels in order."""
    frames = [measure_model(Path(sft), names.SFT, None)]
    labels = [names.SFT]
    previous = Path(sft)
    for t in range(iterations):
        model = work / names.model_name(t)
        if not model.exists():
            log.info("%s: iteration %d/%d", name, t + 1, iterations)
            step(t, previous)
        labels.append(names.model_name(t))
        frames.append(measure_model(model, labels[-1], (previous, labels[-2])))
        previous = model
    return pd.concat(frames, ignore_index=True), labels


def chain_rows(work: Path, df: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A finished chain's KL rows (run_chain's) with each model's realised step, the paper-scale proxies
    (held-out NLL and margin: analysis/stopping.py's rules read them) and the training steps that made
    it; and its per-prompt KLs with their iteration."""
    df = df.copy()
    df["realised_step"] = df["model"].map(chain_steps(work, labels))
    df["heldout_nll"] = df["model"].map(chain_proxy(work, labels, "heldout_nll"))
    df["heldout_margin"] = df["model"].map(chain_proxy(work, labels, "rv_margin"))
    df["steps"] = [global_step(work, t) for t in df["iteration"]]
    per_prompt = chain_per_prompt(work, labels)
    per_prompt["iteration"] = [names.parse_model(m).iteration for m in per_prompt["model"]]
    return df, per_prompt


def global_step(work: Path, t: int) -> float:
    """The training steps that made iteration t (NaN for the SFT model)."""
    path = metrics_file(work, t)
    return float(read_json(path)["final"]["global_step"]) if t >= 0 and path.exists() else float("nan")
