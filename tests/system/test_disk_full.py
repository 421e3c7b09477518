"""Disk full for real: a small tmpfs mounted over the checkpoint or the model folder (tests run as
root here and in CI; elsewhere they skip). The command must end with one line naming the path and
"No space left on device", leave no partial output, and a rerun with space must finish."""

import json
import logging
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from spin_core.cli import main
from spin_core.modeling import save_model
from tests.unit.train.test_spin import cfg, pairs_frame


@contextmanager
def small_filesystem(path: Path, size: str):
    """A tmpfs of `size` mounted at path (created), unmounted afterwards; yields a function that
    grows it (remount keeps the files), as a user freeing space would."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")

    def grow(new_size: str):
        subprocess.run(["mount", "-o", f"remount,size={new_size}", str(path)], check=True)

    try:
        yield grow
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def training_inputs(tmp_path, tiny_model, tokenizer):
    save_model(tiny_model, tokenizer, tmp_path / "init")
    pairs_frame(tiny_model, tokenizer).to_parquet(tmp_path / "pairs.parquet")
    # 6 steps, a checkpoint every 2.
    params = json.dumps({"spin": {**cfg().__dict__, "per_iteration": {}}})
    return tmp_path, params


def train(tmp_path: Path, params: str, out: Path, checkpoints: Path) -> int:
    return main(
        ["train", "--params", params, "--pairs", str(tmp_path / "pairs.parquet"), "--init", str(tmp_path / "init")]
        + ["--out", str(out), "--checkpoints", str(checkpoints), "--metrics", str(tmp_path / "metrics.json")]
    )


@pytest.mark.parametrize("full", ["checkpoints", "model"])
def test_disk_full_on_a_real_filesystem_names_the_path_and_the_rerun_recovers(training_inputs, full, capsys, caplog):
    tmp_path, params = training_inputs
    assert train(tmp_path, params, tmp_path / "reference", tmp_path / "reference_ckpt") == 0
    mount = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    out = mount / "model" if full == "model" else tmp_path / "model"
    checkpoints = mount / "ckpt" if full == "checkpoints" else tmp_path / "ckpt"
    # Room for a few small files, not for a checkpoint (weights + optimizer) or the model's weights.
    with small_filesystem(mount, "96k") as grow:
        capsys.readouterr()
        assert train(tmp_path, params, out, checkpoints) == 1
        err = capsys.readouterr().err
        # One line, the folder and the reason; before: torch's "unexpected pos 64 vs 0" traceback.
        assert (
            f"error: cannot write or read {mount / full.replace('checkpoints', 'ckpt')}: No space left on device" in err
        )
        assert "Traceback" not in err and "unexpected pos" not in err, err
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))

        grow("64m")  # the user frees space and runs the same command again
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert train(tmp_path, params, out, checkpoints) == 0
        if full == "model":  # training had finished: the rerun resumes at its last checkpoint
            assert "resuming from checkpoint" in caplog.text and "checkpoint-6" in caplog.text
        else:  # the partial checkpoint is dropped, training starts again
            assert "removing incomplete checkpoint" in caplog.text
        assert_same_weights(out, tmp_path / "reference")


def assert_same_weights(a: Path, b: Path):
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
