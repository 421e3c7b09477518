"""The two SFT starts: the saturated one stops at its best held-out NLL and keeps that epoch's weights;
the weak one runs its epochs; both record the held-out NLL per epoch."""

import pytest

from spin_core.config import SFTConfig, SpinConfig
from spin_core.errors import DataError
from spin_core.io import read_json, write_jsonl
from spin_core.modeling import save_tokenizer
from spin_core.train.sft import make_sft_model
from spin_core.world.sft_data import make_tiny_sft_data

SPIN = SpinConfig(max_length=48, max_prompt_length=12)


@pytest.fixture
def sft_data(tmp_path, world, tokenizer):
    train, _ = make_tiny_sft_data(world, 120, 1, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    save_tokenizer(tokenizer, tmp_path / "tok")
    return tmp_path


def _make(tmp_path, cfg, name):
    metrics = tmp_path / f"{name}.json"
    make_sft_model(cfg, SPIN, tmp_path / name, tmp_path / "train.jsonl", tmp_path / "tok", tmp_path / f"{name}_ck",
                   metrics)  # fmt: skip
    return read_json(metrics)["final"]


def test_saturated_start_stops_at_the_best_held_out_nll_and_keeps_it(sft_data, tiny_arch):
    # 80 rows at a high learning rate overfit within a few epochs: the held-out NLL turns up.
    cfg = SFTConfig(architecture=tiny_arch, start="saturated", validation_rows=40, max_epochs=40, patience=2,
                    learning_rate=2e-2, lr_scheduler_type="constant", per_device_train_batch_size=16)  # fmt: skip
    m = _make(sft_data, cfg, "saturated")
    curve = [c["validation_nll"] for c in m["validation_curve"]]
    assert m["start"] == "saturated" and m["validation_rows"] == 40
    assert len(curve) == m["epochs_run"] < 40  # stopped early
    best = min(range(len(curve)), key=curve.__getitem__)
    assert m["best_epoch"] == best + 1
    assert m["epochs_run"] == m["best_epoch"] + 2  # patience: two epochs without a new best
    # The saved model is the best epoch's, not the last one's.
    assert m["validation_nll"] == pytest.approx(curve[best], rel=1e-5)
    assert curve[-1] > curve[best]


def test_weak_start_runs_its_epochs_and_records_the_held_out_nll(sft_data, tiny_arch):
    cfg = SFTConfig(architecture=tiny_arch, start="weak", validation_rows=40, num_train_epochs=1,
                    per_device_train_batch_size=16)  # fmt: skip
    m = _make(sft_data, cfg, "weak")
    assert m["start"] == "weak" and m["epochs_run"] == m["best_epoch"] == 1
    assert m["validation_nll"] == pytest.approx(m["validation_curve"][-1]["validation_nll"], rel=1e-5)


def test_validation_rows_must_leave_rows_to_train_on(sft_data, tiny_arch):
    cfg = SFTConfig(architecture=tiny_arch, validation_rows=120)
    with pytest.raises(DataError, match=r"train.jsonl: sft.validation_rows is 120 but the SFT split has 120 rows"):
        _make(sft_data, cfg, "bad")
