"""Multi-process training on this CPU, in the train rule's own launcher form (spin_core.train.launch):
`accelerate launch` over 2 processes with DDP (gloo) or DeepSpeed ZeRO-3, each against a one-process
run with the same global batch: losses, grad norms, the gathered reward metrics and the final
weights must agree. Slow: DeepSpeed compiles a CPU op on its first run (~2 min, cached after)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spin_core.config import SpinConfig, params_json
from spin_core.modeling import save_model
from spin_core.train.launch import launcher
from tests.helpers.workflow import ROOT
from tests.unit.train.test_spin import cfg, pairs_frame

pytestmark = pytest.mark.slow

# test_spin's recipe (32 pairs, 2 epochs: 8 steps of a global batch of 8, one process x 8 or 2 x 4),
# every checkpoint kept.
KEEP_ALL = dict(save_total_limit=None, keep_checkpoints=True)
CONFIGS = {"ddp": "config/accelerate/cpu_ddp.yaml", "zero3": "config/accelerate/cpu_zero3.yaml"}
TIMEOUT = 480  # a deadlock (ranks making different numbers of collective calls) fails here


def deepspeed_or_skip():
    try:
        import deepspeed  # noqa: F401
    except Exception as e:  # ImportError, or its build failing on import
        pytest.skip(f"deepspeed cannot be imported here ({type(e).__name__}: {e}); pip install -e '.[test]'")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tokenizer, tiny_arch):
    """A tiny model with tied input/output embeddings (the head shares ZeRO-3's partitioned
    embedding), and pairs scored under it."""
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.tokenizer import non_response_token_ids

    root = tmp_path_factory.mktemp("distributed")
    model = build_tiny_model(
        {**tiny_arch, "tie_word_embeddings": True}, tokenizer, non_response_token_ids(tokenizer), 0
    )
    model.eval()
    save_model(model, tokenizer, root / "init")
    # Unequal lengths: the ranks see different token counts, so chunk counts would differ.
    pairs_frame(model, tokenizer, n=32).to_parquet(root / "pairs.parquet")
    return root


def train(root: Path, name: str, spin: SpinConfig, env_extra: dict | None = None) -> dict:
    """The train command under spin's launcher; returns metrics.json, with the run's log on failure."""
    argv = launcher(spin) + ["train", "--params", params_json(spin=spin)]
    argv += ["--pairs", str(root / "pairs.parquet"), "--init", str(root / "init"), "--out", str(root / name)]
    argv += ["--checkpoints", str(root / f"{name}_ckpt"), "--metrics", str(root / f"{name}.json")]
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        **(env_extra or {}),
    }
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    (root / f"{name}.log").write_text(proc.stdout + proc.stderr)
    return json.loads((root / f"{name}.json").read_text())


def config(processes: int, engine: str = "ddp", **kw) -> SpinConfig:
    acc = CONFIGS[engine] if processes > 1 else None
    return cfg(**KEEP_ALL, **kw, gpus=processes, per_device_train_batch_size=8 // processes, accelerate_config=acc)


def steps(metrics: dict) -> list[dict]:
    return [h for h in metrics["log_history"] if "loss" in h]


def assert_same_run(a: dict, b: dict, a_dir: Path, b_dir: Path, tol: float = 1e-5):
    sa, sb = steps(a), steps(b)
    assert [h["step"] for h in sa] == [h["step"] for h in sb]
    for ha, hb in zip(sa, sb):
        for key in ("loss", "grad_norm", "rewards/margins", "rewards/accuracies", "logps/real", "logps/generated"):
            # At the first step the policy is its reference: every reward is float rounding of a batch
            # layout (one process or two), so which response "wins" says nothing; margins still agree.
            if key == "rewards/accuracies" and abs(ha["rewards/margins"]) < 1e-4:
                continue
            assert ha[key] == pytest.approx(hb[key], abs=tol, rel=tol), (key, ha["step"], ha[key], hb[key])
    assert a["final"]["train_loss"] == pytest.approx(b["final"]["train_loss"], abs=tol)
    from safetensors.torch import load_file

    wa, wb = load_file(a_dir / "model.safetensors"), load_file(b_dir / "model.safetensors")
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst < tol, worst
    return worst


@pytest.mark.parametrize("packing", [True, False], ids=["packing", "padded"])
def test_ddp_two_processes_match_one(inputs, packing):
    one = train(inputs, f"one_{packing}", config(1, packing=packing))
    ddp = train(inputs, f"ddp_{packing}", config(2, "ddp", packing=packing))
    worst = assert_same_run(one, ddp, inputs / f"one_{packing}", inputs / f"ddp_{packing}")
    print(f"ddp packing={packing}: max weight difference {worst:.2e}")


def test_zero3_two_processes_match_one_with_chunked_head_and_checkpointing(inputs):
    """ZeRO-3 with packing, tied embeddings, gradient checkpointing and a head small enough to run
    in chunks, so the chunk-count agreement across ranks is exercised (a mismatch deadlocks)."""
    deepspeed_or_skip()
    small_head = {"SPIN_HEAD_CHUNK_ELEMENTS": "80"}  # a few tokens per chunk (a ~16-token vocabulary)
    kw = dict(packing=True, gradient_checkpointing=True)
    one = train(inputs, "one_z", config(1, **kw), small_head)
    z3 = train(inputs, "zero3", config(2, "zero3", **kw), small_head)
    worst = assert_same_run(one, z3, inputs / "one_z", inputs / "zero3")
    print(f"zero3: max weight difference {worst:.2e}")
    # DeepSpeed's own checkpoint layout: global_stepN/ and `latest`, no optimizer.pt.
    last = inputs / "zero3_ckpt" / "checkpoint-8"
    assert (last / "latest").exists() and not (last / "optimizer.pt").exists()


def test_zero3_resumes_from_its_own_checkpoint(inputs):
    deepspeed_or_skip()
    if not (inputs / "zero3_ckpt" / "checkpoint-4").exists():
        train(inputs, "zero3", config(2, "zero3", packing=True))
    resumed_ckpt = inputs / "resumed_ckpt"
    shutil.rmtree(resumed_ckpt, ignore_errors=True)
    # As if killed after step 4: keep that checkpoint only.
    shutil.copytree(inputs / "zero3_ckpt" / "checkpoint-4", resumed_ckpt / "checkpoint-4")
    spin = config(2, "zero3", packing=True, gradient_checkpointing=True)
    small_head = {"SPIN_HEAD_CHUNK_ELEMENTS": "80"}
    resumed = train(inputs, "resumed", spin, small_head)
    log = (inputs / "resumed.log").read_text()
    assert "resuming from checkpoint" in log and "checkpoint-4" in log, log[-3000:]
    assert resumed["final"]["global_step"] == 8
    full = json.loads((inputs / "zero3.json").read_text())
    assert resumed["final"]["train_loss"] == pytest.approx(full["final"]["train_loss"], abs=1e-6)
    from safetensors.torch import load_file

    wa, wb = load_file(inputs / "zero3" / "model.safetensors"), load_file(inputs / "resumed" / "model.safetensors")
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-6


def test_launcher_takes_precision_from_the_config():
    assert launcher(SpinConfig(gpus=1)) == ["python", "-m", "spin_core.cli"]
    argv = launcher(SpinConfig(gpus=8, bf16=True, accelerate_config="my dir/z3.yaml"))
    assert argv[argv.index("--mixed_precision") + 1] == "bf16" and "my dir/z3.yaml" in argv
    assert launcher(SpinConfig(gpus=2))[launcher(SpinConfig(gpus=2)).index("--mixed_precision") + 1] == "no"
    assert torch.distributed.is_available()


@pytest.mark.parametrize("shard", ["optim_states", "model_states"])
def test_zero3_corrupt_checkpoint_starts_from_the_init_model(inputs, shard):
    """One rank's DeepSpeed shard truncated in the only checkpoint: every rank checks every file, so
    both skip it alike and train from the init model, ending as the run that was never interrupted."""
    deepspeed_or_skip()
    if not (inputs / "zero3_ckpt" / "checkpoint-4").exists():
        train(inputs, "zero3", config(2, "zero3", packing=True, gradient_checkpointing=True),
              {"SPIN_HEAD_CHUNK_ELEMENTS": "80"})  # fmt: skip
    name = f"corrupt_{shard}"
    ckpt = inputs / f"{name}_ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.copytree(inputs / "zero3_ckpt" / "checkpoint-4", ckpt / "checkpoint-4")
    victim = sorted((ckpt / "checkpoint-4").glob(f"global_step*/*{shard}.pt"))[-1]  # the last rank's
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    spin = config(2, "zero3", packing=True, gradient_checkpointing=True)
    resumed = train(inputs, name, spin, {"SPIN_HEAD_CHUNK_ELEMENTS": "80"})
    log = (inputs / f"{name}.log").read_text()
    assert f"{victim.name}" in log and "training from the start (the init model)" in log, log[-3000:]
    full = json.loads((inputs / "zero3.json").read_text())
    assert_same_run(full, resumed, inputs / "zero3", inputs / name, tol=1e-6)
