"""The reference pass: the long-prompt policy (counted, then truncated or skipped)."""

import logging

import pandas as pd
import pytest

from spin_core.config import SpinConfig
from spin_core.io import write_table
from spin_core.modeling import save_model
from spin_core.train.reference import reference_pass


@pytest.mark.parametrize("policy, kept", [("truncate", 3), ("skip", 2)])
def test_long_prompts_are_counted_and_truncated_or_skipped(
    tmp_path, world, tokenizer, tiny_model, caplog, policy, kept
):
    save_model(tiny_model, tokenizer, tmp_path / "m")
    w = world.words

    def pair(prompt):
        return {
            "real": [{"role": "user", "content": prompt}, {"role": "assistant", "content": w[0]}],
            "generated": [{"role": "user", "content": prompt}, {"role": "assistant", "content": w[1]}],
            "iteration": 0,
        }

    rows = [pair(w[2]), pair(" ".join(w[:10] * 3)), pair(w[3])]  # the second prompt is 30 words
    write_table(tmp_path / "pairs.parquet", pd.DataFrame(rows))
    cfg = SpinConfig(max_length=64, max_prompt_length=12, long_prompts=policy)
    with caplog.at_level(logging.WARNING, logger="spin_core.train.reference"):
        reference_pass(cfg, [tmp_path / "pairs.parquet"], tmp_path / "m", tmp_path / "out.parquet")
    assert "1 of 3 prompts are longer than spin.max_prompt_length=12" in caplog.text
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == kept


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_rows_with_unknown_words_stop_the_pass_or_are_skipped(tmp_path, world, tokenizer, tiny_model, caplog, policy):
    from spin_core.errors import DataError

    save_model(tiny_model, tokenizer, tmp_path / "m")
    w = world.words

    def pair(prompt, real, generated):
        return {
            "real": [{"role": "user", "content": prompt}, {"role": "assistant", "content": real}],
            "generated": [{"role": "user", "content": prompt}, {"role": "assistant", "content": generated}],
            "iteration": 0,
        }

    # an unknown word, an empty human response (allowed: EOS alone), an empty generated one (allowed)
    rows = [pair(w[0], w[1], w[2]), pair(w[3], f"{w[1]} nosuchword", w[2]), pair(w[4], "", w[5]), pair(w[6], w[7], "")]
    write_table(tmp_path / "pairs.parquet", pd.DataFrame(rows))
    cfg = SpinConfig(max_length=64, max_prompt_length=12, invalid_rows=policy)
    run = lambda: reference_pass(cfg, [tmp_path / "pairs.parquet"], tmp_path / "m", tmp_path / "out.parquet")  # noqa: E731
    if policy == "error":
        with pytest.raises(DataError, match=r"pairs.parquet: row 2: field 'real: assistant turn' has 1 word"):
            run()
        assert not (tmp_path / "out.parquet").exists()
        return
    with caplog.at_level(logging.WARNING, logger="spin_core.train.encoding"):
        run()
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert len(out) == 3 and "nosuchword" not in " ".join(str(r) for r in out["real"])
    assert "1 of 4 rows skipped" in caplog.text and "1 of 4 rows have an empty human response" in caplog.text
    assert out["ref_logp_real"].between(-1e4, 0).all()  # no -3.4e38 from an unknown token


@pytest.mark.parametrize("packing", [True, False])
def test_alpha_spin_reference_is_the_geometric_mixture_of_previous_and_base(
    tmp_path, world, tokenizer, tiny_model, tiny_arch, packing
):
    """α-SPIN (arXiv 2404.04291): log r = (1-α) log p_prev + α log p_base, per response, both kept."""
    import numpy as np

    from spin_core.config import replace
    from spin_core.errors import ConfigError
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.tokenizer import non_response_token_ids

    save_model(tiny_model, tokenizer, tmp_path / "prev")
    base = build_tiny_model(tiny_arch, tokenizer, non_response_token_ids(tokenizer), seed=1)
    save_model(base, tokenizer, tmp_path / "base")
    w = world.words
    rows = [
        {
            "real": [{"role": "user", "content": w[i]}, {"role": "assistant", "content": f"{w[i + 1]} {w[i + 2]}"}],
            "generated": [{"role": "user", "content": w[i]}, {"role": "assistant", "content": w[i + 3]}],
            "iteration": 0,
        }
        for i in range(4)
    ]
    write_table(tmp_path / "pairs.parquet", pd.DataFrame(rows))
    cfg = SpinConfig(max_length=64, max_prompt_length=12, packing=packing)
    pairs = [tmp_path / "pairs.parquet"]
    reference_pass(cfg, pairs, tmp_path / "prev", tmp_path / "prev.parquet")
    reference_pass(cfg, pairs, tmp_path / "base", tmp_path / "base.parquet")
    reference_pass(
        replace(cfg, reference_alpha=0.3), pairs, tmp_path / "prev", tmp_path / "mix.parquet", base=tmp_path / "base"
    )
    prev, other, mix = (pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("prev", "base", "mix"))
    for side in ("real", "generated"):
        assert not np.allclose(prev[f"ref_logp_{side}"], other[f"ref_logp_{side}"])  # two different models
        expected = 0.7 * prev[f"ref_logp_{side}"] + 0.3 * other[f"ref_logp_{side}"]
        np.testing.assert_allclose(mix[f"ref_logp_{side}"], expected, rtol=1e-6)
        np.testing.assert_array_equal(mix[f"previous_logp_{side}"], prev[f"ref_logp_{side}"])
        np.testing.assert_array_equal(mix[f"base_logp_{side}"], other[f"ref_logp_{side}"])
    assert set(mix.reference_alpha) == {0.3} and set(mix.base_model) == {str(tmp_path / "base")}
    assert "reference_alpha" not in prev  # SPIN's pairs files are as before
    with pytest.raises(ConfigError, match="spin.reference_alpha: .*needs the chain's SFT model"):
        reference_pass(replace(cfg, reference_alpha=0.3), pairs, tmp_path / "prev", tmp_path / "x.parquet")
