"""The paper-scale path rehearsed on this CPU (config/rehearsal.yaml, scale: paper) with local
stand-ins for the hub (spin_core/rehearsal.py) and a local OpenAI-compatible judge: the datasets
loader on an UltraChat-schema folder, sft import, HF generation with the paper's template, training
under `accelerate launch` on 2 processes with DeepSpeed ZeRO-3, the proxies, lm-eval's own arc_easy
definition over local data, MT-Bench with the openai judge client, tables and figures."""

import json

import pandas as pd
import pytest
import yaml

from spin_core.assets.rehearsal import write_rehearsal_assets
from tests.helpers.fake_openai import FakeOpenAI
from tests.helpers.workflow import ROOT, run_snakemake

pytestmark = pytest.mark.slow


def test_rehearsal_config_runs_the_paper_path_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("deepspeed", reason="the rehearsal trains under DeepSpeed ZeRO-3")
    write_rehearsal_assets(tmp_path / "rehearsal")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rehearsal-test")
    with FakeOpenAI() as judge:
        (tmp_path / "judge.yaml").write_text(yaml.safe_dump({"evaluation": {"mt_bench": {"base_url": judge.base_url}}}))
        configs = [ROOT / "config" / "rehearsal.yaml", tmp_path / "rehearsal" / "paths.yaml", tmp_path / "judge.yaml"]
        proc = run_snakemake(tmp_path, configfile=configs, timeout=900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-5000:]
        assert judge.requests and all(h == "Bearer sk-rehearsal-test" for h in judge.auth_headers)
    assert yaml.safe_load((ROOT / "config" / "rehearsal.yaml").read_text())["scale"] == "paper"
    # The data rule read the UltraChat-schema folder through datasets, as it reads the hub.
    train = [json.loads(line) for line in (tmp_path / "data/sft/train.jsonl").read_text().splitlines()]
    assert len(train) == 32 and train[0]["messages"][0]["role"] == "user"
    # Generation used the paper's template, and says so in every pairs file.
    pairs = pd.read_parquet(tmp_path / "data/pairs/pairs_iter0.parquet")
    assert pairs["generation"].iloc[0]["prompt_template"].startswith("### Instruction:")
    # Training ran as two ZeRO-3 ranks (each logs its final line) and recorded its recipe.
    log = (tmp_path / "logs/train/iter1.log").read_text()
    assert log.count("train: final") == 2 and "ZeRO" in log, log[-3000:]
    metrics = json.loads((tmp_path / "results/train/iter1/metrics.json").read_text())
    assert metrics["recipe"]["beta"] == 5.0 and metrics["recipe"]["gpus"] == 2  # spin.per_iteration
    scores = pd.read_csv(tmp_path / "results/eval/scores.csv")
    assert set(scores.benchmark) == {"open_llm_leaderboard", "bigbench", "mt_bench"}
    assert scores[scores.task == "arc_rehearsal"].harness.str.startswith("lm-eval").all()
    assert (scores[scores.benchmark == "mt_bench"].value == 7.0).all()  # the fake judge's [[7]]
    for table in ("claims", "benchmarks_paper_vs_ours", "recipe", "proxies_by_iteration"):
        assert (tmp_path / "results/tables" / f"{table}.csv").exists(), table
    assert (tmp_path / "results/figures/benchmarks_vs_iteration.png").exists()
