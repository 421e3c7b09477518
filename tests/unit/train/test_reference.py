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
