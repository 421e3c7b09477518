"""Paper-scale proxies: hand counts for the statistics, and the fixed point of the real-vs-generated
proxy (a model compared with itself has every margin exactly 0)."""

import numpy as np
import pandas as pd
import pytest

from spin_core.config import DivergenceConfig, EncodingConfig, GenerateConfig, SpinConfig
from spin_core.divergence.proxies import distinct_n, divergence_proxies, real_vs_generated
from spin_core.divergence.samples import sample_heldout
from spin_core.errors import ConfigError
from spin_core.io import write_jsonl, write_table
from spin_core.modeling import save_model
from spin_core.train.encoding import encode_prompt, encode_response
from spin_core.train.logprobs import response_logps
from spin_core.world.sft_data import make_tiny_sft_data


def test_distinct_n_hand_counts():
    seqs = [[1, 2, 1, 2], [1, 2]]
    assert distinct_n(seqs, 1) == pytest.approx(2 / 6)
    assert distinct_n(seqs, 2) == pytest.approx(2 / 4)  # (1,2) (2,1) (1,2) | (1,2)
    assert np.isnan(distinct_n([[1]], 2))


def test_real_vs_generated_margin_closed_form():
    m = real_vs_generated([-1.0, -2.0], [-1.5, -2.0], [-3.0, -1.0], [-3.0, -2.0], beta=0.5)
    np.testing.assert_allclose(m, [0.5 * (0.5 - 0.0), 0.5 * (0.0 - 1.0)])


@pytest.fixture
def proxy_setup(tmp_path, world, tokenizer, tiny_model):
    _, test = make_tiny_sft_data(world, 1, 6, seed=0)
    write_jsonl(tmp_path / "test.jsonl", test)
    save_model(tiny_model, tokenizer, tmp_path / "model")
    dcfg = DivergenceConfig(n_prompts=6, samples_per_prompt=2, max_new_tokens=12, batch_size=16)
    samples = sample_heldout(
        dcfg,
        GenerateConfig(),
        EncodingConfig(max_length=64, max_prompt_length=16),
        tmp_path / "model",
        tmp_path / "test.jsonl",
    )
    write_table(tmp_path / "samples.parquet", samples)
    return tmp_path, test, dcfg, samples


def test_proxies_of_a_model_against_itself_sit_at_the_fixed_point(proxy_setup, tokenizer, tiny_model):
    tmp, test, dcfg, samples = proxy_setup
    spin = SpinConfig(max_length=64, max_prompt_length=16).view(EncodingConfig)
    df = divergence_proxies(
        dcfg, spin, tmp / "model", tmp / "samples.parquet", tmp / "test.jsonl", "iter0",
        ref_model=tmp / "model", ref_samples=tmp / "samples.parquet", beta=0.1,
    )  # fmt: skip
    v = df.set_index("metric")["value"]
    assert v["rv_margin"] == 0.0 and v["rv_accuracy"] == 0.0  # no pair is told apart
    # held-out NLL is minus the summed log-prob of each human response, by hand
    prompts = [encode_prompt(tokenizer, r["prompt"]) for r in test]
    responses = [encode_response(tokenizer, r["messages"][1]["content"]) for r in test]
    nll = -np.array(response_logps(tiny_model, prompts, responses, tokenizer.pad_token_id, 16))
    assert v["heldout_nll"] == pytest.approx(nll.mean(), rel=1e-6)
    assert v["heldout_nll_per_token"] == pytest.approx(np.mean(nll / [len(r) for r in responses]), rel=1e-6)
    assert v["gen_length"] == pytest.approx(
        np.mean([len([t for t in ids if t != tokenizer.eos_token_id]) for ids in samples["response_ids"]])
    )
    assert set(df["model"]) == {"iter0"} and list(df.columns)[:3] == ["model", "iteration", "metric"]


def test_sft_model_has_no_real_vs_generated_rows(proxy_setup):
    tmp, _, dcfg, _ = proxy_setup
    spin = SpinConfig().view(EncodingConfig)  # an SFT model's measures read no beta
    df = divergence_proxies(dcfg, spin, tmp / "model", tmp / "samples.parquet", tmp / "test.jsonl", "sft")
    assert "rv_accuracy" not in set(df["metric"]) and "heldout_nll" in set(df["metric"])
    assert isinstance(df, pd.DataFrame)


def test_the_margin_needs_its_beta_with_the_reference(proxy_setup):
    tmp, _, dcfg, _ = proxy_setup
    spin = SpinConfig().view(EncodingConfig)
    ref = {"ref_model": tmp / "model", "ref_samples": tmp / "samples.parquet"}
    with pytest.raises(ConfigError, match="--beta"):
        divergence_proxies(dcfg, spin, tmp / "model", tmp / "samples.parquet", tmp / "test.jsonl", "iter0", **ref)
    with pytest.raises(ConfigError, match="together"):
        divergence_proxies(dcfg, spin, tmp / "model", tmp / "samples.parquet", tmp / "test.jsonl", "sft", beta=0.1)
