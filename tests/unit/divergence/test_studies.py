"""The data-size and capacity studies: the nested pool of SFT rows, the fresh arm's rows, the arms a
config asks for and their SFT settings."""

import copy
from pathlib import Path

import pytest

from spin_core import names
from spin_core.configfile import load_yaml, validate_config
from spin_core.data import load_sft
from spin_core.divergence.studies import fresh_rows, make_pool
from spin_core.errors import BadNameError
from spin_core.io import write_jsonl
from spin_core.world.sft_data import make_tiny_sft_data

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def split(tmp_path, world):
    train, test = make_tiny_sft_data(world, 40, 10, seed=0)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    world.save(tmp_path / "world.json")
    return tmp_path, train, test


def test_pool_is_nested_and_starts_with_the_main_runs_rows(split):
    """Each size is the pool's first N rows: the main run's rows first (a smaller size is their prefix),
    then new p_data rows whose prompts are in neither split; every prompt once."""
    d, train, test = split
    out = [d / "n20.jsonl", d / "n120.jsonl", d / "n300.jsonl"]
    make_pool(d / "world.json", d / "train.jsonl", d / "test.jsonl", [20, 120, 300], seed=1, out=out)
    small, mid, big = (load_sft(p) for p in out)
    assert [len(small), len(mid), len(big)] == [20, 120, 300]
    assert small == train[:20] and mid[:40] == train and big[:120] == mid
    prompts = [r["prompt"] for r in big]
    assert len(set(prompts)) == 300
    assert not set(prompts) & {r["prompt"] for r in test}
    # seeded: the same pool on a rerun
    again = d / "again.jsonl"
    make_pool(d / "world.json", d / "train.jsonl", d / "test.jsonl", [300], seed=1, out=[again])
    assert load_sft(again) == big


def test_fresh_rows_are_new_per_iteration_and_never_held_out(split, world):
    d, train, test = split
    a0, a0_again, a1 = (fresh_rows(world, 30, 7, t, d / "test.jsonl") for t in (0, 0, 1))
    assert a0 == a0_again and a0 != a1 and len(a0) == len(a1) == 30
    held_out = {r["prompt"] for r in test}
    assert not {r["prompt"] for r in a0 + a1} & held_out
    assert fresh_rows(world, 30, 8, 0, d / "test.jsonl") != a0  # the chain's seed moves it
    # rows as the data stage writes them (the SFT schema)
    assert set(a0[0]) == set(train[0]) and a0[0]["messages"][0]["content"] == a0[0]["prompt"]


def test_arm_names_parse_back_and_bad_names_are_refused():
    arm = names.StudyArm(8000, 64)
    assert arm.name == "n8000_h64" and names.parse_study_arm(arm.name) == arm
    fresh = names.parse_study_arm("fresh2000_h64")
    assert fresh.fresh and fresh.sft_arm == "n2000_h64"
    with pytest.raises(BadNameError, match="n<rows>_h<hidden>"):
        names.parse_study_arm("n2000")


def test_the_shared_arm_starts_from_the_recipe_ablations_sft_model():
    """The main run's size and width is the ablation's saturated SFT model of that seed (the same
    settings and rows), so neither study trains it again; other arms have their own."""
    main = names.StudyArm(2000, 64)
    assert names.study_sft_model(main, 1, main) == names.recipe_sft("saturated", 1)
    assert names.study_sft_model(names.StudyArm(2000, 64, True), 1, main) == names.recipe_sft("saturated", 1)
    assert names.study_sft_model(names.StudyArm(500, 64), 0, main) == names.study_sft("n500_h64", 0)
    assert names.study_sft_model(main, 1, main, metrics=True) == names.recipe_sft_metrics("saturated", 1)
    assert names.study_sft_model(names.StudyArm(500, 64), 0, main, metrics=True) == names.study_sft_metrics(
        "n500_h64", 0
    )
    assert names.study_train(2000, 2000) == "data/sft/train.jsonl"
    assert names.study_train(500, 2000) == "data/studies/train_n500.jsonl"


def test_config_arms_and_their_sft_settings():
    cfg = validate_config(load_yaml(ROOT / "config" / "config.yaml"))
    data_size = [a.name for a in cfg.study_arms("data_size")]
    assert data_size == ["n500_h64", "n2000_h64", "n8000_h64", "n32000_h64", "fresh2000_h64"]
    assert [a.name for a in cfg.study_arms("capacity")] == ["n2000_h32", "n2000_h64", "n2000_h128"]
    same = cfg.study_sft(names.StudyArm(2000, 64), 1)
    from spin_core.config import RecipesConfig

    assert same == RecipesConfig.sft_for(cfg.sft, "saturated", 1)
    wide = cfg.study_sft(names.StudyArm(2000, 128), 1)
    assert wide.architecture["hidden_size"] == 128 and wide.architecture["intermediate_size"] == 384
    assert {k: v for k, v in wide.architecture.items() if k not in ("hidden_size", "intermediate_size")} == {
        k: v for k, v in same.architecture.items() if k not in ("hidden_size", "intermediate_size")
    }
    assert wide.seed == same.seed and wide.start == "saturated"


def test_no_fresh_arm_when_fresh_is_zero():
    raw = copy.deepcopy(load_yaml(ROOT / "config" / "config.yaml"))
    raw["convergence"]["studies"]["fresh"] = 0
    assert not any(a.fresh for a in validate_config(raw).study_arms("data_size"))
