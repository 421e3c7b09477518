"""Both shipped configs validate; a bad key or value is rejected with its name in the message."""

import copy
import json

import pytest

from spin_core.configfile import load_yaml, validate_config
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
        (("spin", "lerning_rate"), 1e-4, r"spin.lerning_rate: unknown key; did you mean learning_rate\?"),
        (("spin", "learning_rate"), -1.0, r"spin.learning_rate: input should be greater than 0, got -1.0"),
        (("spin", "beta"), 0, r"spin.beta: input should be greater than 0, got 0"),
        (("spin", "beta"), "high", r"spin.beta: input should be a valid number, got 'high'"),
        (("iterations",), [1, 2], r"iterations: must be the consecutive list 0..n"),
        (("iterations",), [0, 2], r"iterations: must be the consecutive list 0..n"),
        (("scale",), "huge", r"scale: input should be 'tiny' or 'paper', got 'huge'"),
        (("generate", "top_p"), 1.5, r"generate.top_p: input should be less than or equal to 1, got 1.5"),
        (("spin", "max_prompt_length"), 64, r"spin.max_prompt_length: must be smaller than max_length \(64\)"),
        (("data",), KeyError, r"data: required key missing"),
        (("world",), KeyError, r"world: required when scale is 'tiny'"),
        (
            ("resources", "trian"),
            {"mem_mb": 1},
            r"resources.trian: the key 'trian' is invalid: input should be 'default'",
        ),
        (("spin", "beta"), float("nan"), r"spin.beta: input should be a finite number, got nan"),
        (("spin", "per_iteration"), {3: {"bta": 5.0}}, r"spin.per_iteration.3.bta: unknown key; did you mean beta\?"),
        (
            ("spin", "per_iteration"),
            {3: {"max_length": 8}},
            r"spin.per_iteration.3: iteration 3's recipe breaks a rule",
        ),
        (("generate", "num_shards"), "2", r"generate.num_shards: input should be a valid integer, got '2'"),
        (
            ("convergence", "recipes", "variants", "greedy", "generate"),
            {"temprature": 0.0},
            r"convergence.recipes.variants.greedy.generate.temprature: unknown key; did you mean temperature\?",
        ),
        (
            ("evaluation", "leaderboard", "harness"),
            "v0.4.0",
            r"evaluation.leaderboard.harness: the tiny world evaluates with the suite's lm-eval: 'current'",
        ),
        (
            ("evaluation", "bigbench", "harness"),
            "0.4.0",
            r"evaluation.bigbench.harness: input should be 'current' or 'v0.4.0'",
        ),
        (("spin", "reference_alpha"), 0.2, r"spin.reference_alpha: offered in the recipe ablation"),
        (("spin", "opponent"), "fictitious", r"spin.opponent: offered in the recipe ablation"),
        (("spin", "reference_alpha"), 1.0, r"spin.reference_alpha: input should be less than 1, got 1.0"),
        (("spin", "replay"), 3, r"spin.replay: offered in the recipe ablation"),
        (("spin", "opponent"), "ema", r"spin.opponent: offered in the recipe ablation"),
        (
            ("convergence", "studies", "fresh"),
            1000,
            r"convergence.studies.fresh: starts from the SFT model of its size",
        ),
        (
            ("convergence", "studies", "data_sizes"),
            [2000, 500],
            r"convergence.studies.data_sizes: distinct and increasing",
        ),
        (("convergence", "studies", "data_sizes"), [200, 2000], r"convergence.studies.data_sizes: 200 leaves no rows"),
        (
            ("convergence", "studies", "hidden_sizes"),
            [30, 64],
            r"convergence.studies.hidden_sizes: \[30\] not divisible",
        ),
        (
            ("convergence", "studies", "gap_prompts"),
            301,
            r"convergence.studies.gap_prompts: at most the rows every arm",
        ),
        (("convergence", "studies", "recipe"), "offical", r"convergence.studies.recipe: 'offical' is not in recipes"),
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
        "invalid_nan",
        "invalid_per_iteration_key",
        "invalid_per_iteration_recipe",
        "invalid_string_for_int",
        "invalid_recipe_variant_key",
        "invalid_tiny_paper_harness",
        "invalid_harness_name",
        "invalid_main_run_alpha",
        "invalid_main_run_opponent",
        "invalid_alpha_one",
        "invalid_main_run_replay",
        "invalid_main_run_ema",
        "invalid_fresh_size",
        "invalid_data_sizes_order",
        "invalid_data_size_small",
        "invalid_hidden_heads",
        "invalid_gap_prompts",
        "invalid_study_recipe",
    ],
)
def test_invalid_config_names_the_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(mutate(path, value))


def test_errors_name_the_file_and_line_that_set_the_key(tmp_path):
    from spin_core.configfile import key_lines

    bad = tmp_path / "bad.yaml"
    text = (ROOT / "config" / "config.yaml").read_text().replace("  beta: 0.1 ", "  betta: 0.1 ")
    bad.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if t.startswith("  betta:"))
    with pytest.raises(ConfigError) as e:
        validate_config(load_yaml(bad), str(bad), key_lines([bad]))
    assert str(e.value) == f"{bad}:{line}: spin.betta: unknown key; did you mean beta?"


def test_several_problems_are_one_line_each():
    cfg = mutate(("spin", "beta"), -1)
    cfg["generate"]["top_p"] = 0
    with pytest.raises(ConfigError) as e:
        validate_config(cfg, "c.yaml")
    lines = str(e.value).splitlines()
    assert lines[0] == "c.yaml: 2 problems"
    assert sorted(line.split(": ")[1] for line in lines[1:]) == ["generate.top_p", "spin.beta"]


def test_cli_validate_checks_overlays_merged(tmp_path):
    """An overlay alone is no config; on the file it overlays it is, as Snakemake merges them."""
    from spin_core import cli

    overlay = ROOT / "config" / "tiny-paper-schedule.yaml"
    assert cli.main(["validate", str(ROOT / "config" / "config.yaml"), str(overlay)]) == 0
    assert cli.main(["validate", str(overlay)]) == 2


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

    from spin_core.configfile import validate_config

    cfg = load_yaml(ROOT / "config" / "config.yaml")
    update_config(cfg, load_yaml(ROOT / "config" / "tiny-paper-schedule.yaml"))
    spin = validate_config(cfg, "merged").spin
    base = spin.learning_rate
    lrs = [spin.for_iteration(t).learning_rate / base for t in range(4)]
    assert lrs == pytest.approx([1, 1, 0.2, 0.2])
    assert [spin.for_iteration(t).beta for t in range(4)] == [0.1, 0.1, 0.1, 5.0]


def test_paper_harness_counts_the_bbh_exemplars_its_prompts_hold():
    # lm-eval v0.4.0's BBH CoT prompts carry 3 exemplars in their text: any other count is refused.
    cfg = copy.deepcopy(load_yaml(ROOT / "config" / "paper.yaml"))
    cfg["evaluation"]["bigbench"]["harness"] = "v0.4.0"
    assert validate_config(cfg).evaluation.bigbench.harness == "v0.4.0"
    cfg["evaluation"]["bigbench"]["tasks"]["bbh_cot_fewshot_causal_judgement"]["num_fewshot"] = 0
    with pytest.raises(
        ConfigError,
        match=r"evaluation.bigbench.tasks.bbh_cot_fewshot_causal_judgement.num_fewshot: .*hold exactly 3 exemplars .*\(got 0\)",
    ):
        validate_config(cfg)


def test_paper_configs_run_the_leaderboard_on_the_papers_lm_eval():
    for name in ("paper", "paper-released", "paper-official"):
        cfg = validate_config(load_yaml(ROOT / "config" / f"{name}.yaml"))
        assert (cfg.evaluation.leaderboard.harness, cfg.evaluation.bigbench.harness) == ("v0.4.0", "current"), name


def test_alpha_spin_needs_the_reference_pass():
    from spin_core.config import SpinConfig

    with pytest.raises(ValueError, match="reference_alpha: α-SPIN's mixed reference is scored by the reference pass"):
        SpinConfig(reference="live", reference_alpha=0.5)
    with pytest.raises(
        ValueError, match=r"per_iteration.2: iteration 2's recipe breaks a rule: reference_alpha: α-SPIN"
    ):
        SpinConfig(reference="live", per_iteration={2: {"reference_alpha": 0.5}})


def test_a_family_switched_off_gives_its_jobs_no_tasks_and_changes_no_jobs_params():
    from spin_core.config import LmEvalFamily, params_json

    cfg = load_yaml(ROOT / "config" / "paper.yaml")
    on = validate_config(cfg).evaluation.bigbench
    assert on.enabled and len(on.for_jobs.tasks) == 4 and type(on.for_jobs) is LmEvalFamily
    # What a job reads has no `enabled`: the same params as the family had before the switch existed.
    job = json.loads(params_json(family=on.for_jobs))["family"]
    assert "enabled" not in job and job == {k: v for k, v in json.loads(params_json(family=on))["family"].items()
                                            if k != "enabled"}  # fmt: skip
    cfg["evaluation"]["bigbench"]["enabled"] = False
    off = validate_config(cfg).evaluation
    assert off.bigbench.for_jobs.tasks == {} and len(off.bigbench.tasks) == 4 and off.leaderboard.for_jobs.tasks
    with pytest.raises(ConfigError, match=r"family.enabled: unknown key"):
        from spin_core.configfile import parse_section

        parse_section(LmEvalFamily, json.loads(params_json(family=on))["family"], "family")
