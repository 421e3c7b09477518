"""The published-numbers file is internally consistent (averages match their task values)."""

import pytest
import yaml

from tests.helpers.workflow import ROOT

DATA = yaml.safe_load((ROOT / "analysis" / "paper_results.yaml").read_text())


@pytest.mark.parametrize("model", sorted(DATA["model_cards"]["models"]))
def test_model_card_average_is_the_mean_of_its_six_tasks(model):
    entry = DATA["model_cards"]["models"][model]
    assert set(entry["values"]) == set(DATA["model_cards"]["tasks"])
    assert sum(entry["values"].values()) / 6 == pytest.approx(entry["average"], abs=0.006)


def test_every_block_names_its_source():
    assert DATA["paper"]["source"] and DATA["model_cards"]["source"]
    assert all(m["card"].startswith("https://huggingface.co/") for m in DATA["model_cards"]["models"].values())
    assert DATA["paper"]["open_llm_leaderboard_average"] == {"sft": 58.14, "iter3": 63.16}
