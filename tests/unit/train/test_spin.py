"""The SPIN trainer: one concatenated forward, the loss of loss.py, metrics, NaN stop, resume."""

import json
import math

import pandas as pd
import pytest
import torch

from spin_core.config import EncodingConfig, SpinConfig
from spin_core.errors import TrainingDivergedError
from spin_core.modeling import save_model
from spin_core.train.encoding import encode_pair
from spin_core.train.logprobs import response_logps
from spin_core.train.spin import spin_collator, train_spin


def pairs_frame(model, tokenizer, n=24):
    import numpy as np

    rng = np.random.default_rng(0)
    # In token-id order: get_vocab()'s order changes from one process to the next (a Rust hash map),
    # and with it every pair drawn below.
    vocab = tokenizer.get_vocab()
    words = [w for w in sorted(vocab, key=vocab.get) if not w.startswith("<")]
    rows = []
    for i in range(n):
        prompt = " ".join(rng.choice(words, 3))
        real = " ".join(rng.choice(words, 4))
        gen = " ".join(rng.choice(words, 2 + i % 3))
        rows.append(
            {
                "prompt_id": str(i),
                "prompt": prompt,
                "iteration": 0,
                "real": [{"role": "user", "content": prompt}, {"role": "assistant", "content": real}],
                "generated": [{"role": "user", "content": prompt}, {"role": "assistant", "content": gen}],
            }
        )
    enc = [encode_pair(tokenizer, r, EncodingConfig(max_length=64, max_prompt_length=16)) for r in rows]
    lp = response_logps(
        model, [e[0] for e in enc] * 2, [e[1] for e in enc] + [e[2] for e in enc], tokenizer.pad_token_id
    )
    df = pd.DataFrame(rows)
    df["ref_logp_real"], df["ref_logp_generated"] = lp[:n], lp[n:]
    return df


def test_collator_stacks_real_then_generated():
    batch = spin_collator(0, packing=False)(
        [
            {"prompt_ids": [5, 6], "real_ids": [7, 2], "generated_ids": [8, 9, 2], "ref_logps": (-1.0, -2.0)},
            {"prompt_ids": [5], "real_ids": [7, 7, 2], "generated_ids": [2], "ref_logps": (-3.0, -4.0)},
        ]
    )
    assert batch["input_ids"].shape == (4, 5)
    assert batch["input_ids"][0, :4].tolist() == [5, 6, 7, 2] and batch["input_ids"][2, :5].tolist() == [5, 6, 8, 9, 2]
    assert batch["ref_logps"].tolist() == [-1.0, -3.0, -2.0, -4.0]
    assert batch["labels"][0].tolist() == [-100, -100, 7, 2, -100]


def test_packed_collator_keeps_real_then_generated_order():
    examples = [
        {"prompt_ids": [5, 6], "real_ids": [7, 2], "generated_ids": [8, 9, 2], "ref_logps": (-1.0, -2.0)},
        {"prompt_ids": [5], "real_ids": [7, 7, 2], "generated_ids": [2], "ref_logps": (-3.0, -4.0)},
    ]
    batch = spin_collator(0, packing=True)(examples)
    assert batch["ref_logps"].tolist() == [-1.0, -3.0, -2.0, -4.0]
    assert batch["n_pairs"] == 2
    # Every response token is scored once, under the sequence index the loss expects.
    assert sorted(batch["target_seq"].tolist()) == [0, 0, 1, 1, 1, 2, 2, 2, 3]


@pytest.fixture()
def model_dir(tmp_path, tiny_model, tokenizer):
    save_model(tiny_model, tokenizer, tmp_path / "prev")
    return tmp_path / "prev"


def cfg(**kw):
    base = dict(
        beta=0.1,
        learning_rate=1e-3,
        optim="adamw_torch",
        num_train_epochs=2,
        per_device_train_batch_size=8,
        max_length=64,
        max_prompt_length=16,
        logging_steps=1,
        save_steps=2,
        warmup_ratio=0.0,
    )
    base.update(kw)
    return SpinConfig(**base)


def test_training_starts_at_log2_and_raises_the_margin(tmp_path, model_dir, tiny_model, tokenizer):
    pairs = tmp_path / "pairs.parquet"
    pairs_frame(tiny_model, tokenizer).to_parquet(pairs)
    final = train_spin(
        cfg(learning_rate=5e-3, num_train_epochs=3),
        pairs,
        model_dir,
        tmp_path / "out",
        tmp_path / "ckpt",
        tmp_path / "m.json",
    )
    history = [h for h in json.loads((tmp_path / "m.json").read_text())["log_history"] if "loss" in h]
    # The policy starts equal to its reference: the first loss is log 2 (up to the first update).
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert history[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-3)
    assert final["rewards/margins"] > 0.05 and final["rewards/accuracies"] > 0.5
    assert final["loss"] < math.log(2)
    for key in ("rewards/real", "rewards/generated", "logps/real", "logps/generated"):
        assert key in final
    assert (tmp_path / "out" / "config.json").exists()
    # The checkpoint of the last step stays until the workflow accepts the model (release_checkpoints).
    assert (tmp_path / "ckpt" / f"checkpoint-{final['global_step']}" / "trainer_state.json").exists()
    assert final["train_loss"] == pytest.approx(sum(h["loss"] for h in history) / len(history), rel=0.2)


def test_nan_loss_stops_with_the_step(tmp_path, model_dir, tiny_model, tokenizer):
    df = pairs_frame(tiny_model, tokenizer)
    df.loc[3, "ref_logp_real"] = float("nan")
    df.to_parquet(tmp_path / "pairs.parquet")
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at step \d+"):
        train_spin(
            cfg(num_train_epochs=1),
            tmp_path / "pairs.parquet",
            model_dir,
            tmp_path / "out",
            tmp_path / "ckpt",
            tmp_path / "m.json",
        )
    assert not (tmp_path / "out").exists()


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, model_dir, tiny_model, tokenizer):
    pairs = tmp_path / "pairs.parquet"
    pairs_frame(tiny_model, tokenizer).to_parquet(pairs)
    # Logs every 5 steps, checkpoints every 2 (6 steps): the logged windows and the checkpoints do not line up.
    full = train_spin(
        cfg(keep_checkpoints=True, save_total_limit=None, logging_steps=5),
        pairs,
        model_dir,
        tmp_path / "a",
        tmp_path / "ck_a",
        tmp_path / "a.json",
    )
    # Simulate a run killed after step 4: keep only that checkpoint, then train again.
    import shutil

    shutil.copytree(tmp_path / "ck_a" / "checkpoint-4", tmp_path / "ck_b" / "checkpoint-4")
    # ...and a kill while saving step 6 left a partial checkpoint, and step 5's is corrupt.
    (tmp_path / "ck_b" / "checkpoint-6").mkdir()
    (tmp_path / "ck_b" / "checkpoint-6" / "config.json").write_text("{}")
    shutil.copytree(tmp_path / "ck_a" / "checkpoint-4", tmp_path / "ck_b" / "checkpoint-5")
    (tmp_path / "ck_b" / "checkpoint-5" / "optimizer.pt").write_bytes(b"truncated")
    resumed = train_spin(cfg(logging_steps=5), pairs, model_dir, tmp_path / "b", tmp_path / "ck_b", tmp_path / "b.json")
    assert resumed["global_step"] == full["global_step"]
    # The loss is over the whole run, not only the steps after the resume (Trainer's training_loss).
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-5)
    # Resumed at the last step (the job finished but its outputs were rejected): no step runs, and
    # the loss is still the run's.
    at_end = train_spin(cfg(logging_steps=5), pairs, model_dir, tmp_path / "c", tmp_path / "ck_a", tmp_path / "c.json")
    assert at_end["global_step"] == full["global_step"]
    assert at_end["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(tmp_path / "a").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_packed_and_padded_training_give_the_same_losses(tmp_path, model_dir, tiny_model, tokenizer):
    pairs = tmp_path / "pairs.parquet"
    pairs_frame(tiny_model, tokenizer).to_parquet(pairs)
    histories = {}
    for packing in (True, False):
        # SGD: adaptive optimisers would blow float rounding up to the size of the learning rate.
        c = cfg(packing=packing, optim="sgd", learning_rate=0.5, num_train_epochs=2)
        out = tmp_path / f"p{packing}"
        train_spin(c, pairs, model_dir, out / "model", out / "ckpt", out / "m.json")
        log = json.loads((out / "m.json").read_text())["log_history"]
        histories[packing] = [h["loss"] for h in log if "loss" in h]
    assert len(histories[True]) == len(histories[False]) >= 6
    assert histories[True][-1] < histories[True][0] - 1e-3  # it trained
    assert max(abs(a - b) for a, b in zip(histories[True], histories[False])) < 1e-5


def test_progress_logger_reports_steps_per_second_and_eta(caplog):
    import logging
    import time
    from types import SimpleNamespace

    from spin_core.train.callbacks import ProgressLogger

    cb = ProgressLogger("train")
    state = SimpleNamespace(global_step=10, max_steps=30, is_world_process_zero=True)
    cb.on_train_begin(None, state, None)
    cb.start = (time.time() - 2.0, 10)  # as if 2 s had passed since step 10 (a resume starts there)
    state.global_step = 20
    with caplog.at_level(logging.INFO, logger="spin_core.train.callbacks"):
        cb.on_log(None, state, None, logs={"loss": 0.5})
    line = caplog.records[-1].getMessage()
    import re

    assert re.match(r"train step 20/30 \((5|4\.9\d*) steps/s, ETA 2s\) loss=0.5$", line), line


def test_run_mean_loss_weights_each_logged_window_by_its_steps():
    from spin_core.train.callbacks import run_mean_loss

    # Windows (0, 4], (4, 5], (5, 8]: mean losses 1, 4, 2 -> (4*1 + 1*4 + 3*2) / 8.
    history = [{"loss": 1.0, "step": 4}, {"learning_rate": 0.1, "step": 4}, {"loss": 4.0, "step": 5}]
    history += [{"loss": 2.0, "step": 8}, {"train_runtime": 1.0, "step": 8}]
    assert run_mean_loss(history) == pytest.approx(14 / 8)
    assert run_mean_loss(list(reversed(history))) == pytest.approx(14 / 8)


def test_the_previous_iterations_checkpoints_are_released_when_the_next_one_starts(
    tmp_path, model_dir, tiny_model, tokenizer
):
    pairs = tmp_path / "pairs.parquet"
    pairs_frame(tiny_model, tokenizer).to_parquet(pairs)
    previous = tmp_path / "previous_ckpt" / "checkpoint-6"
    previous.mkdir(parents=True)
    (previous / "optimizer.pt").write_bytes(b"x")
    train_spin(
        cfg(), pairs, model_dir, tmp_path / "out", tmp_path / "ckpt", tmp_path / "m.json", tmp_path / "previous_ckpt"
    )
    assert not (tmp_path / "previous_ckpt").exists() and (tmp_path / "ckpt").is_dir()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model, tokenizer):
    """A run with every checkpoint kept, and its pairs: what a resumed run must reproduce."""
    root = tmp_path_factory.mktemp("corrupt")
    model_dir = root / "prev"
    save_model(tiny_model, tokenizer, model_dir)
    pairs_frame(tiny_model, tokenizer).to_parquet(root / "pairs.parquet")
    spin = cfg(keep_checkpoints=True, save_total_limit=None)
    train_spin(spin, root / "pairs.parquet", model_dir, root / "full", root / "ck_full", root / "full.json")
    return root


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                                  "trainer_state.json"])  # fmt: skip
@pytest.mark.parametrize("older", [False, True], ids=["only", "with_older"])
def test_corrupt_checkpoint_never_yields_a_half_loaded_model(uninterrupted, name, older, caplog):
    """A truncated file in the newest checkpoint: the run falls back to the older complete one, or
    starts from the init model, says which, and ends exactly as the uninterrupted run."""
    import shutil

    from safetensors.torch import load_file

    root, tag = uninterrupted, f"{name}_{older}"
    model_dir = root / "prev"
    ck = root / f"ck_{tag}"
    for step in [2, 4] if older else [4]:
        shutil.copytree(root / "ck_full" / f"checkpoint-{step}", ck / f"checkpoint-{step}")
    bad = ck / "checkpoint-4" / name
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with caplog.at_level("INFO", logger="spin_core"):
        train_spin(cfg(), root / "pairs.parquet", model_dir, root / tag, ck, root / f"{tag}.json")
    assert f"checkpoint {ck / 'checkpoint-4'} cannot be loaded ({name}" in caplog.text
    expected = (
        f"resuming from checkpoint {ck / 'checkpoint-2'}" if older else "training from the start (the init model)"
    )
    assert expected in caplog.text
    full, resumed = (json.loads((root / f"{n}.json").read_text()) for n in ("full", tag))
    assert resumed["final"]["train_loss"] == pytest.approx(full["final"]["train_loss"], rel=1e-6)
    steps = [[h["step"] for h in run["log_history"] if "loss" in h] for run in (full, resumed)]
    assert steps[0] == steps[1]  # every step once: none lost, none trained twice
    wa, wb = load_file(root / "full" / "model.safetensors"), load_file(root / tag / "model.safetensors")
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-6


def test_step0_margin_is_zero_with_the_live_reference_as_in_the_official_trainer(
    tmp_path, model_dir, tiny_model, tokenizer, monkeypatch
):
    """bf16 training (bf16 autocast, forced here on the CPU as a GPU runs it): with spin.reference: live
    a frozen copy scores each batch in the policy's own forward layout and precision, so the first
    step's margins are exactly 0, as in the official trainer. A reference scored once beforehand, in
    fp32 or even under the same autocast, leaves beta x the bf16 error of another batch layout."""
    from spin_core.config import ReferenceConfig
    from spin_core.train import precision, reference

    monkeypatch.setattr(precision, "bf16_training", lambda spin: bool(spin.bf16))
    raw = tmp_path / "raw.parquet"
    pairs_frame(tiny_model, tokenizer).drop(columns=["ref_logp_real", "ref_logp_generated"]).to_parquet(raw)
    margins = {}
    for ref in ("live", "precomputed"):
        spin = cfg(bf16=True, beta=5.0, learning_rate=1e-9, num_train_epochs=1, logging_steps=1, reference=ref)
        pairs = tmp_path / f"pairs_{ref}.parquet"
        reference.reference_pass(spin.view(ReferenceConfig), [raw], model_dir, pairs)
        assert set(pd.read_parquet(pairs)["reference_precision"]) == {precision.AUTOCAST_BF16}
        train_spin(spin, pairs, model_dir, tmp_path / ref, tmp_path / f"ck_{ref}", tmp_path / f"{ref}.json")
        history = [h for h in json.loads((tmp_path / f"{ref}.json").read_text())["log_history"] if "loss" in h]
        margins[ref] = max(abs(history[0][k]) for k in ("rewards/margins", "rewards/real", "rewards/generated"))
    assert margins["live"] == 0.0, margins
    assert margins["precomputed"] > 1e-4, margins  # the error the live reference removes
