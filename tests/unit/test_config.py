"""Both shipped configs validate; a bad key or value is rejected with its name in the message."""

import copy

import pytest

from spin_core.config import load_yaml, validate_config
from spin_core.errors import ConfigError
from tests.helpers.workflow import ROOT


@pytest.mark.parametrize(
    "name", ["config.yaml", "paper.yaml", "paper-official.yaml", "paper-released.yaml", "micro.yaml"]
)
def test_shipped_configs_validate(name):
    validate_config(load_yaml(ROOT / "config" / name), source=name)


def test_paper_configs_share_the_official_settings_the_paper_does_not_change():
    for name in ("paper.yaml", "paper-official.yaml"):
        cfg = load_yaml(ROOT / "config" / name)
        spin = cfg["spin"]
        assert (spin["beta"], spin["learning_rate"], spin["optim"]) == (0.1, 5e-7, "rmsprop")
        assert (spin["lr_scheduler_type"], spin["warmup_ratio"], spin["max_prompt_length"]) == ("linear", 0.1, 512)
        assert spin["per_device_train_batch_size"] * spin["gpus"] == 64
        assert cfg["sft"]["model"] == "alignment-handbook/zephyr-7b-sft-full"
        assert cfg["data"]["n_train"] == 50000 and cfg["generate"]["backend"] == "hf"
        assert (ROOT / spin["accelerate_config"]).exists()


def mutate(path, value):
    cfg = copy.deepcopy(load_yaml(ROOT / "config" / "config.yaml"))
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("spin", "lerning_rate"), 1e-4, r"spin: Unevaluated properties are not allowed \('lerning_rate'"),
        (("spin", "learning_rate"), -1.0, r"spin.learning_rate: -1.0 is less than or equal to the minimum"),
        (("spin", "beta"), 0, r"spin.beta: 0 is less than or equal to the minimum"),
        (("spin", "beta"), "high", r"spin.beta: 'high' is not of type 'number'"),
        (("iterations",), [1, 2], r"iterations: must be the consecutive list 0..n"),
        (("iterations",), [0, 2], r"iterations: must be the consecutive list 0..n"),
        (("scale",), "huge", r"scale: 'huge' is not one of"),
        (("generate", "top_p"), 1.5, r"generate.top_p: 1.5 is greater than the maximum"),
        (("spin", "max_prompt_length"), 64, r"spin.max_prompt_length: must be smaller than spin.max_length"),
        (("data",), KeyError, r"'data' is a required property"),
        (("world",), KeyError, r"world: required when scale is 'tiny'"),
        (("resources", "trian"), {"mem_mb": 1}, r"resources: 'trian' does not match any of the regexes"),
    ],
    ids=[
        "invalid_unknown_key",
        "invalid_negative_lr",
        "invalid_beta_zero",
        "invalid_beta_type",
        "invalid_iterations_start",
        "invalid_iterations_gap",
        "invalid_scale",
        "invalid_top_p",
        "invalid_prompt_length",
        "invalid_missing_section",
        "invalid_missing_world",
        "invalid_resource_rule",
    ],
)
def test_invalid_config_names_the_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(mutate(path, value))


def test_cli_validate_prints_error_without_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config" / "config.yaml").read_text().replace("beta: 0.1", "beta: -0.1"))
    proc = subprocess.run(
        [sys.executable, "-m", "spin_core.cli", "validate", str(bad)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "spin.beta" in proc.stderr and "Traceback" not in proc.stderr


def test_tiny_paper_schedule_overlay_applies_the_papers_ratios():
    """config/tiny-paper-schedule.yaml on config.yaml: lr x1, x1, x0.2, x0.2; beta 5.0 at iteration 3."""
    from snakemake.utils import update_config

    from spin_core.config import validate_config

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    update_config(cfg, load_yaml(ROOT / "config" / "tiny-paper-schedule.yaml"))
    spin = validate_config(cfg, "merged").spin
    base = spin.learning_rate
    lrs = [spin.for_iteration(t).learning_rate / base for t in range(4)]
    assert lrs == pytest.approx([1, 1, 0.2, 0.2])
    assert [spin.for_iteration(t).beta for t in range(4)] == [0.1, 0.1, 0.1, 5.0]
