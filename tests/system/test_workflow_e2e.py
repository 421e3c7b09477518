"""The workflow end to end on the micro config, and the DAGs of both shipped configs."""

import math

import pandas as pd
import pytest

from tests.helpers.workflow import (
    MODELS,
    ROOT,
    TEMP_GLOB,
    check_no_partial_outputs,
    declared_outputs,
    run_snakemake,
)


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml", "paper-official.yaml"])
def test_dry_run_shows_sft_generate_and_train(tmp_path, config):
    proc = run_snakemake(tmp_path, "-n", "-p", configfile=ROOT / "config" / config, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    if config == "config.yaml":
        # the tiny world: one job per SPIN chain (its SFT model, then per iteration generate, reference,
        # train and the new model's divergences; 2 shards each), one for the control, one for every
        # model's evaluations
        assert out.count("rule spin_chain:") == 1 and out.count("rule spin_chain_seed:") == 2
        assert out.count("rule sft_continued:") == 1 and out.count("rule eval_models:") == 1
        assert "shard1-of-2" in out and "spin_core.cli steps --stash work/steps/spin_chain/main" in out
        chain = next(line for line in out.splitlines() if "work/steps/spin_chain/main" in line)
        steps = [step.split()[0] for step in chain.split(" -- ", 1)[1].split(" :: ")]
        assert steps == ["sft", "divergence-model"] + ["generate-shards", "reference", "train", "divergence-model"] * 4
        for rule in ("sft", "generate", "reference", "train", "divergence_model", "iteration", "eval_model"):
            assert f"rule {rule}:" not in out
    if config.startswith("paper"):
        for rule in ("sft", "generate", "reference", "train"):  # one job per stage: GPU hours each
            assert f"rule {rule}:" in out
        assert "rule spin_chain:" not in out and "spin_core.cli steps" not in out
        assert "divergence_model" not in out  # p_data is unknown at paper scale: samples + proxies only
        assert out.count("rule heldout_samples:") == 5 and out.count("rule divergence_proxies:") == 5
        assert out.count("rule generate:") == 4 * 8  # 4 iterations x 8 shards
        # 5 models x (6 leaderboard tasks + 3 BBH CoT tasks + OpenBookQA + MT-Bench answer + judge)
        assert out.count("rule eval_leaderboard:") == 30 and out.count("rule eval_bigbench:") == 20
        assert out.count("rule mt_bench_answer:") == 5 and out.count("rule mt_bench_judge:") == 5
        for task in ("bbh_cot_fewshot_causal_judgement", "bbh_cot_fewshot_formal_fallacies", "openbookqa"):
            assert f"task={task}" in out
        assert "piqa" not in out


def test_released_checkpoints_dry_run_imports_the_models_and_trains_nothing(tmp_path):
    proc = run_snakemake(tmp_path, "-n", configfile=ROOT / "config" / "paper-released.yaml", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert out.count("rule import_model:") == 5
    for rule in ("sft", "generate", "reference", "train"):
        assert f"rule {rule}:" not in out
    assert out.count("rule eval_leaderboard:") == 30 and "rule tables:" in out


def test_a_benchmark_switched_off_has_no_jobs_and_the_others_keep_theirs(tmp_path):
    (tmp_path / "off.yaml").write_text("evaluation: {bigbench: {enabled: false}}\n")
    proc = run_snakemake(tmp_path, "-n", configfile=[ROOT / "config" / "paper.yaml", tmp_path / "off.yaml"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule eval_bigbench:" not in out and "results/eval/bigbench" not in out
    assert out.count("rule eval_leaderboard:") == 30 and out.count("rule mt_bench_judge:") == 5


def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config" / "micro.yaml").read_text().replace("beta: 0.1", "beta: 0.1\n  betta: 2"))
    proc = run_snakemake(tmp_path / "wd", "-n", configfile=bad, timeout=120)
    assert proc.returncode != 0
    assert "betta" in proc.stdout + proc.stderr
    assert not (tmp_path / "wd" / "data").exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda text: text + "seed: 1\nseed: 2\n", "duplicate key 'seed'"),  # YAML alone: the last one wins
        (
            lambda text: text.replace("beta: 0.1", "beta: 0.1\n  learning_rate: 1.0e-4\n  beta: 5.0"),
            "duplicate key 'beta'",
        ),
        (lambda text: text.replace("  beta: 0.1", "  beta: 0.1\n  accelerate_config: a;b"), "spin.accelerate_config"),
    ],
    ids=["duplicate_top_level_key", "duplicate_nested_key", "shell_characters_in_a_path"],
)
def test_snakemake_gives_the_same_config_errors_as_validate(tmp_path, edit, expected):
    """What Snakemake's own reading lets through (a repeated key) is caught by ours, with file:line;
    `spin-repro validate` prints the same line."""
    from spin_core.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(edit((ROOT / "config" / "micro.yaml").read_text()))
    proc = run_snakemake(tmp_path / "wd", "-n", configfile=bad, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert expected in out, out[-2000:]
    assert not (tmp_path / "wd" / "data").exists()
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["validate", str(bad)]) == 2
    line = err.getvalue().strip().removeprefix("error: ")
    assert expected in line and line in out, (line, out[-2000:])


@pytest.mark.slow
def test_micro_workflow_end_to_end_in_a_path_with_a_space(micro_run):
    tmp_path = micro_run
    assert " " in str(tmp_path)  # every path a rule hands to a shell is quoted
    for rel in declared_outputs():
        assert (tmp_path / rel).exists(), rel
    check_no_partial_outputs(tmp_path)
    assert not list(tmp_path.glob("**/" + TEMP_GLOB)), "temp files left behind"
    # checkpoints are dropped once each model is saved (empty chain folders may stay)
    assert not [p for p in (tmp_path / "work" / "train").rglob("*") if p.is_file()]

    div = pd.read_csv(tmp_path / "results/divergence/exact.csv")
    assert list(div.columns) == ["model", "iteration", "metric", "value", "ci_low", "ci_high", "n"]
    # main run, a second seed's chain from its own SFT model and the SFT-continued control, two metrics each
    chains = ["seed1/sft"] + [f"seed1/iter{t}" for t in range(4)] + [f"sft_continued/iter{t}" for t in range(4)]
    assert set(div["model"]) == set(MODELS + chains) and set(div["metric"]) == {"forward_kl", "reverse_kl"}
    assert len(div) == 2 * (len(MODELS) + len(chains))
    assert all(math.isfinite(v) for v in div[["value", "ci_low", "ci_high"]].to_numpy().ravel())
    assert (div["ci_low"] <= div["value"]).all() and (div["value"] <= div["ci_high"]).all()
    assert div.set_index("model").loc["iter2", "iteration"].tolist() == [2, 2]

    # Mixing rule: iteration 0 trains on its own pairs, iteration t >= 1 on those of t-1 and t,
    # all scored under the iteration's own reference (the previous model).
    # The replicate chain starts from its own SFT model (another init and data order), the control from the main one.
    assert set(pd.read_parquet(tmp_path / "data/pairs/seed1/pairs_iter0.parquet")["reference_model"]) == {
        "models/seed1/sft"
    }
    sft = div[div.metric == "forward_kl"].set_index("model")["value"]
    assert sft["seed1/sft"] != sft["sft"]
    p0 = pd.read_parquet(tmp_path / "data/pairs/pairs_iter0.parquet")
    p2 = pd.read_parquet(tmp_path / "data/pairs/pairs_iter2.parquet")
    assert set(p0["iteration"]) == {0} and set(p2["iteration"]) == {1, 2} and len(p2) == 2 * len(p0)
    assert set(p2["reference_model"]) == {"models/iter1"}
    assert p0["ref_logp_real"].lt(0).all() and p0["ref_logp_generated"].lt(0).all()
    meta = p0["generation"].iloc[0]
    assert meta["model"] == "models/sft" and meta["temperature"] == 1.0 and meta["max_new_tokens"] == 32
    assert meta["decoding"] == "sample" and meta["prompt_template"] == "chat"  # decoding is recorded

    scores = pd.read_csv(tmp_path / "results/eval/scores.csv")
    assert list(scores.columns) == ["model", "benchmark", "task", "metric", "value", "stderr", "harness"]
    average = scores[scores.task == "average"]
    assert average.stderr.notna().all() and average.stderr.gt(0).all()  # propagated from the tasks
    assert scores[scores.benchmark != "mt_bench"].harness.str.match(r"lm-eval \d").all()
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


@pytest.mark.slow
def test_changing_a_spin_only_key_reruns_no_sft_or_generation_job_params(micro_run, tmp_path):
    """Each stage's params hold only what it reads: a new beta reaches the training steps (and the
    margin's measures) but neither the SFT step nor generation or the reference pass. At the tiny scale
    a chain is one job, so it reruns whole (seconds, the same SFT model and pairs); those steps' own
    --params carrying no beta is what keeps the paper scale's SFT, generate and reference jobs (GPU
    hours) from rerunning."""
    import json
    import re
    import shlex

    from tests.helpers.workflow import MICRO

    edited = tmp_path / "beta.yaml"
    edited.write_text(MICRO.read_text().replace("  beta: 0.1\n", "  beta: 0.2\n", 1))
    assert edited.read_text() != MICRO.read_text()
    proc = run_snakemake(micro_run, "-n", "-p", configfile=edited, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = proc.stdout + proc.stderr
    planned = {}  # (rule, wildcards) -> the job's shell command, of every job the dry run plans
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", out, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        wildcards = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        planned[(rule, wildcards.group(1) if wildcards else "")] = shell.group(1) if shell else ""
    assert ("spin_chain", "") in planned, out[-3000:]  # the edit takes effect
    assert not {rule for rule, _ in planned} & {"sft", "recipe_sft"}, sorted(planned)
    shell = planned[("spin_chain", "")]
    argv = shlex.split(shell[shell.index(" steps ") : shell.rindex(") 2>&1 |")])
    steps, current = [], []
    for arg in argv[argv.index("--") + 1 :] + ["::"]:
        if arg == "::":
            steps.append(current)
            current = []
        else:
            current.append(arg)
    params = [(step[0], json.loads(step[step.index("--params") + 1])) for step in steps]
    order = [name for name, _ in params]
    assert order[:3] == ["sft", "divergence-model", "generate-shards"] and order.count("train") >= 2, order
    for name, p in params:
        assert p["spin"].get("beta") == (0.2 if name == "train" else None), (name, p["spin"])
    # The measures read beta only for the margin against the previous model, as an option of its own:
    # the SFT model's measures have none.
    betas = [
        step[step.index("--beta") + 1] if "--beta" in step else None for step in steps if step[0] == "divergence-model"
    ]
    assert betas[0] is None and set(betas[1:]) == {"0.2"}, betas


@pytest.mark.slow
def test_convergence_outputs(micro_run):
    tables, figures = micro_run / "results" / "tables", micro_run / "results" / "figures"
    claims = pd.read_csv(tables / "claims.csv")
    assert set(claims["verdict"]) <= {
        "reproduced",
        "not reproduced",
        "inconclusive",
        "not run at this scale",
        "not run",
    }
    assert claims["claim"].str.contains("sft_continued").any() and claims["claim"].str.contains("theory overlay").any()
    # The main run starts from the saturated SFT model; its divergence verdicts rest on paired differences.
    main = claims[claims.claim.str.contains("saturated start, main run")]
    assert len(main) == 4 and main.rule.str.contains("paired bootstrap").all()
    assert claims.claim.str.contains("from the weak start").any()  # "not run" until `snakemake recipes`
    sft = pd.read_csv(tables / "sft_start.csv").iloc[0]
    assert sft.start == "saturated" and 1 <= sft.best_epoch <= sft.epochs_run <= 3
    per_prompt = pd.read_parquet(micro_run / "results/divergence/per_prompt.parquet")
    assert per_prompt.groupby(["model", "metric"]).size().eq(16).all()  # every held-out prompt, every model
    assert (tables / "claims.md").read_text().startswith("| claim")
    assert len(list(figures.glob("*.png"))) >= 5 and len(list(figures.glob("*.svg"))) >= 5
    proxies = pd.read_csv(micro_run / "results/divergence/proxies.csv")
    assert {"heldout_nll_per_token", "rv_accuracy", "rv_margin", "gen_length", "gen_distinct_2"} <= set(
        proxies["metric"]
    )
    tracking = pd.read_csv(tables / "proxy_tracking.csv").set_index("proxy")
    # held-out NLL = data entropy + forward KL: it must rank the models as the exact KL does
    assert tracking.loc["heldout_nll", "spearman_rho"] > 0.8
    theory = pd.read_csv(micro_run / "results/theory/overlay.csv")
    assert {"map", "minimise", "budget"} == set(theory["method"])
    # the control trained exactly as many steps as the SPIN iteration it matches
    import json

    for t in range(4):
        spin = json.loads((micro_run / f"results/train/iter{t}/metrics.json").read_text())["final"]["global_step"]
        ctrl = json.loads((micro_run / f"results/train/sft_continued/iter{t}/metrics.json").read_text())["final"]
        assert ctrl["global_step"] == spin


@pytest.mark.slow
def test_report_renders_figures_in_headless_chromium(micro_run):
    import re
    import shutil

    report = micro_run / "results" / "report.html"
    proc = run_snakemake(micro_run, "--report", str(report), timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    html = report.read_text()
    for name in ("divergence_vs_iteration", "theory_overlay", "spin_vs_sft_continued", "claims"):
        assert name in html
    assert len(re.findall(r"data:image/(?:png|svg)", html)) >= 5 or html.count(".png") >= 5

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    # The report is a single-page app: open it, go to Figures, open each figure, and check that
    # the browser decoded the image (naturalWidth > 0); keep a screenshot of the last one.
    shown = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report.as_uri())
        page.get_by_text("Figures", exact=True).click()
        for name in (
            "divergence_vs_iteration",
            "spin_vs_sft_continued",
            "theory_overlay",
            "proxies_vs_iteration",
            "proxy_tracking",
        ):
            page.locator("tr", has_text=f"{name}.png").locator("a[iconname=eye]").click()
            img = page.locator("img[src^='data:image/png']").first
            img.wait_for(timeout=10000)
            shown[name] = img.evaluate("e => e.naturalWidth")
            page.screenshot(path=str(micro_run / f"report_{name}.png"))
            page.keyboard.press("Escape")
            page.goto(report.as_uri())
            page.get_by_text("Figures", exact=True).click()
        browser.close()
    assert all(width > 500 for width in shown.values()), shown
    import matplotlib.image

    pixels = matplotlib.image.imread(micro_run / "report_theory_overlay.png")
    assert pixels.shape[:2] == (1000, 1400) and pixels.std() > 0.05  # not a blank page


@pytest.mark.slow
def test_released_models_are_evaluated_without_training(micro_run, tmp_path):
    """The released-checkpoints path on CPU: the micro run's own models, given as local folders in
    `released.models`, are imported and evaluated; nothing is generated or trained, and the same
    model gives the same exact divergence as in the run that trained it."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "micro.yaml").read_text())
    cfg["iterations"] = [0, 1]
    cfg["released"] = {"models": {m: {"model": str(micro_run / "models" / m)} for m in ("sft", "iter0", "iter1")}}
    (tmp_path / "released.yaml").write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    proc = run_snakemake(work, configfile=tmp_path / "released.yaml", timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert out.count("rule import_model:") == 3
    for rule in ("sft:", "generate:", "reference:", "train:", "spin_chain:", "sft_continued:"):
        assert f"rule {rule}" not in out
    assert not (work / "data" / "pairs").exists() and not (work / "results" / "train").exists()
    ours = pd.read_csv(work / "results/divergence/exact.csv").set_index(["model", "metric"])
    trained = pd.read_csv(micro_run / "results/divergence/exact.csv").set_index(["model", "metric"])
    for key in ours.index:
        assert ours.loc[key, "value"] == trained.loc[key, "value"], key
    recipe = pd.read_csv(work / "results/tables/recipe.csv")
    assert list(recipe.iteration) == [0, 1]
    scores = pd.read_csv(work / "results/eval/scores.csv")
    assert set(scores.model) == {"sft", "iter0", "iter1"}


@pytest.mark.slow
def test_convergence_map_target(micro_run):
    proc = run_snakemake(micro_run, "convergence_map", timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    cells = pd.read_csv(micro_run / "results/convergence_map/map.csv")
    assert set(cells["iteration"]) == {-1, 0, 1}  # the SFT start + the micro map's 2 iterations
    assert cells["label"].iloc[0] in {"monotone", "plateau", "flat", "oscillate", "diverge"}
    # The realised step that made each iterate (none for the SFT start), and what it predicts.
    steps = cells[cells.iteration >= 0]["realised_step"]
    assert steps.notna().all() and cells[cells.iteration == -1]["realised_step"].isna().all()
    assert set(cells["predicted_cell"]) <= {"contracts", "does not contract"}
    # The held-out margin (no p_data needed) and the label decided on paired per-prompt steps.
    assert cells[cells.iteration >= 0]["margin"].notna().all()
    assert cells["label_paired"].iloc[0] in {"monotone", "plateau", "flat", "oscillate", "diverge"}
    assert cells[cells.iteration >= 0][["paired_step_ci_low", "change_ci_high"]].notna().all().all()
    assert "realised step predicts the label in" in (micro_run / "results/convergence_map/map.md").read_text()
    assert (micro_run / "results/figures/convergence_map.png").stat().st_size > 10_000
    # once run, the default target includes the map (so the report shows it); nothing else re-runs
    proc = run_snakemake(micro_run, "-n", timeout=120)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]


@pytest.mark.slow
def test_recipes_target_from_both_starts(micro_run):
    """`snakemake recipes`: every variant and the control from each SFT start, its tables and figure;
    then the default target's claims decide the weak start's verdicts from it, and nothing else re-runs."""
    proc = run_snakemake(micro_run, "recipes", timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    tables = micro_run / "results" / "tables"
    table = pd.read_csv(tables / "recipe_ablation.csv")
    assert set(table.start) == {"saturated", "weak"}
    assert set(table.recipe) == {"official", "greedy", "sft_continued"}
    assert set(table.iteration) == {-1, 0} and {"step_ci_low", "realised_step", "band_low"} <= set(table.columns)
    summary = pd.read_csv(tables / "recipe_ablation_summary.csv")
    assert set(summary.falls_each_iteration) <= {"reproduced", "not reproduced", "inconclusive"}
    spin_rows = summary[summary.recipe != "sft_continued"]
    assert spin_rows.vs_control_verdict.isin(["reproduced", "not reproduced", "inconclusive"]).all()
    # The stopping rules named in advance, scored per chain against the exact forward KL.
    rules = pd.read_csv(tables / "stopping_rules.csv")
    assert set(rules.rule) == {"nll_first_rise", "nll_lowest", "margin_positive", "all_iterations", "sft_only"}
    assert len(rules) == 5 * 2 * 2 and (rules.nats_lost >= 0).all()  # rules x starts x SPIN variants, 1 seed
    assert (rules.hit == (rules.nats_lost == 0)).all()
    stop = pd.read_csv(tables / "stopping_summary.csv")
    assert set(stop.start) == {"all", "saturated", "weak"} and stop.hit_rate.between(0, 1).all()
    starts = pd.read_csv(tables / "sft_starts.csv").set_index("start")
    assert starts.loc["weak", "epochs_run"] == 1 and starts.loc["saturated", "epochs_run"] >= 1
    assert (micro_run / "results/figures/recipe_ablation.png").stat().st_size > 10_000
    # The greedy variant sampled its pairs at temperature 0.
    gen = pd.read_parquet(micro_run / "work/recipes/weak/greedy/seed0/generated_iter0.parquet")
    assert {g["temperature"] for g in gen["generation"]} == {0.0}
    before = pd.read_csv(tables / "claims.csv")
    assert (before.verdict == "not run").sum() == 2  # one per start, until the tables are remade
    proc = run_snakemake(micro_run, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    claims = pd.read_csv(tables / "claims.csv")
    weak = claims[claims.claim.str.contains("weak start, recipe ablation")]
    assert len(weak) == 4  # falls at each iteration and SPIN vs the control, for both metrics
    assert "not run" not in set(claims.verdict)
    proc = run_snakemake(micro_run, "-n", timeout=120)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]


@pytest.mark.slow
def test_long_horizon_target(micro_run):
    """`snakemake long_horizon`: the long chains from the ablation's SFT models, each model with its exact
    KL, held-out NLL and memorisation gap, in one table per iteration."""
    proc = run_snakemake(micro_run, "long_horizon", timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    table = pd.read_csv(micro_run / "results/tables/long_horizon.csv")
    assert list(table.model) == ["sft", "iter0", "iter1", "iter2"] and set(table.seeds) == {1}  # micro: 3 iterations
    assert table[["forward_kl", "reverse_kl", "heldout_nll", "gap", "data_gap"]].notna().all().all()
    assert table.data_gap.nunique() == 1  # p_data's own gap: the same responses for every model


@pytest.mark.slow
def test_data_size_and_capacity_targets(micro_run):
    """`snakemake data_size capacity`: SPIN from SFT models on nested data sizes, on fresh rows every
    iteration, and at other widths; the arm both studies share runs once, from the recipe ablation's
    SFT model; then the default target keeps both (the report shows them) and nothing re-runs."""
    proc = run_snakemake(micro_run, "data_size", "capacity", timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    tables = micro_run / "results" / "tables"
    data_size = pd.read_csv(tables / "data_size.csv")
    assert list(dict.fromkeys(data_size.arm)) == ["n48_h32", "n96_h32", "n192_h32", "fresh96_h32"]
    assert set(data_size.iteration) == {-1, 0, 1}  # micro: 2 iterations
    assert data_size[["mean", "ci_low", "gap", "heldout_nll"]].notna().all().all()
    fresh = pd.read_csv(tables / "data_size_summary.csv").set_index(["arm", "metric"]).loc["fresh96_h32"]
    assert fresh.vs_same_sft.str.startswith("fresh96_h32 - n96_h32 at iter1").all()
    capacity = pd.read_csv(tables / "capacity_summary.csv")
    assert set(capacity.arm) == {"n96_h16", "n96_h32"} and capacity.sft_kl.notna().all()
    # each arm its own SFT model, the shared one the ablation's (trained once, by `recipes`' rule)
    sft = pd.read_csv(tables / "data_size_sft.csv")
    assert list(sft.run) == ["n48_h32", "n96_h32", "n192_h32"] and (sft.start == "saturated").all()
    assert not (micro_run / "work/studies/sft/n96_h32").exists()
    assert (micro_run / "work/recipes/sft/saturated/seed0").exists()
    assert len(pd.read_csv(micro_run / "results/studies/runs/n96_h32/seed0.csv").model.unique()) == 3
    # the fresh arm drew new prompts each iteration; a size's arm reuses its first spin_prompts rows
    work = micro_run / "work/studies"
    first, second = (
        set(pd.read_json(work / f"fresh96_h32/seed0/prompts_iter{t}.jsonl", lines=True).prompt) for t in (0, 1)
    )
    assert len(first) == len(second) == 32 and not first & second
    assert len(pd.read_json(work / "n192_h32/seed0/prompts.jsonl", lines=True)) == 32
    assert (micro_run / "results/figures/data_size.png").stat().st_size > 10_000
    proc = run_snakemake(micro_run, "-n", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Nothing to be done" in out, out[-2000:]
    # The report carries both studies, the "What to do" section, and every other study that has run in
    # this directory (the recipes, map and long-horizon tests above share it).
    report = micro_run / "results" / "report_studies.html"
    proc = run_snakemake(micro_run, "--report", str(report), timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    html = report.read_text()
    for name in ("data_size_summary", "data_size_sft", "capacity_summary", "What to do"):
        assert name in html, name
    assert html.count("data_size.png") + html.count("data_size_figure") >= 1
    for marker, name in (("long_horizon.csv", "long_horizon"), ("stopping_summary_map.csv", "stopping_rules_map"),
                         ("stopping_summary.csv", "stopping_summary")):  # fmt: skip
        if (tables / marker).exists():
            assert name in html, name


def test_snakemake_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr
