"""The workflow end to end on the micro config, and the DAGs of both shipped configs."""

import math

import pandas as pd
import pytest
from workflow_helpers import MODELS, ROOT, check_no_partial_outputs, declared_outputs, run_snakemake


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_dry_run_shows_sft_generate_and_train(tmp_path, config):
    proc = run_snakemake(tmp_path, "-n", configfile=ROOT / "config" / config, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("sft", "generate", "reference", "train"):
        assert f"rule {rule}:" in out
    if config == "paper.yaml":
        assert "divergence_exact" not in out  # p_data is unknown at paper scale
        assert out.count("rule generate:") == 4 * 8  # 4 iterations x 8 shards
        # 5 models x (6 leaderboard tasks + 5 Big-Bench/reasoning tasks + MT-Bench answer + judge)
        assert out.count("rule eval_leaderboard:") == 30 and out.count("rule eval_bigbench:") == 25
        assert out.count("rule mt_bench_answer:") == 5 and out.count("rule mt_bench_judge:") == 5


def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config" / "micro.yaml").read_text().replace("beta: 0.1", "beta: 0.1\n  betta: 2"))
    proc = run_snakemake(tmp_path / "wd", "-n", configfile=bad, timeout=120)
    assert proc.returncode != 0
    assert "betta" in proc.stdout + proc.stderr
    assert not (tmp_path / "wd" / "data").exists()


@pytest.mark.slow
def test_micro_workflow_end_to_end(tmp_path):
    proc = run_snakemake(tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    for rel in declared_outputs():
        assert (tmp_path / rel).exists(), rel
    check_no_partial_outputs(tmp_path)
    assert not list(tmp_path.glob("**/.*.tmp*")), "temp files left behind"
    assert not (tmp_path / "work" / "train").exists() or not any((tmp_path / "work" / "train").iterdir())

    div = pd.read_csv(tmp_path / "results/divergence/exact.csv")
    assert list(div.columns) == ["model", "iteration", "metric", "value", "ci_low", "ci_high", "n"]
    assert len(div) == 10
    assert set(div["model"]) == set(MODELS) and set(div["metric"]) == {"forward_kl", "reverse_kl"}
    assert all(math.isfinite(v) for v in div[["value", "ci_low", "ci_high"]].to_numpy().ravel())
    assert (div["ci_low"] <= div["value"]).all() and (div["value"] <= div["ci_high"]).all()
    assert div.set_index("model").loc["iter2", "iteration"].tolist() == [2, 2]

    # Mixing rule: iteration 0 trains on its own pairs, iteration t >= 1 on those of t-1 and t,
    # all scored under the iteration's own reference (the previous model).
    p0 = pd.read_parquet(tmp_path / "data/pairs/pairs_iter0.parquet")
    p2 = pd.read_parquet(tmp_path / "data/pairs/pairs_iter2.parquet")
    assert set(p0["iteration"]) == {0} and set(p2["iteration"]) == {1, 2} and len(p2) == 2 * len(p0)
    assert set(p2["reference_model"]) == {"models/iter1"}
    assert p0["ref_logp_real"].lt(0).all() and p0["ref_logp_generated"].lt(0).all()
    meta = p0["generation"].iloc[0]
    assert meta["model"] == "models/sft" and meta["temperature"] == 1.0 and meta["max_new_tokens"] == 32

    scores = pd.read_csv(tmp_path / "results/eval/scores.csv")
    assert list(scores.columns) == ["model", "benchmark", "task", "metric", "value", "stderr"]
    assert set(scores["benchmark"]) == {"open_llm_leaderboard", "bigbench", "mt_bench"}
    for model in MODELS:
        part = scores[scores["model"] == model]
        assert set(part["benchmark"]) == {"open_llm_leaderboard", "bigbench", "mt_bench"}
        assert set(part["task"]) >= {"tiny_choice", "tiny_greedy", "tiny_bb_continuation", "average", "overall"}
    assert scores["value"].notna().all()

    import json

    metrics = json.loads((tmp_path / "results/train/iter0/metrics.json").read_text())
    for key in ("loss", "rewards/real", "rewards/generated", "rewards/margins", "rewards/accuracies"):
        assert math.isfinite(metrics["final"][key])


def test_snakemake_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr
