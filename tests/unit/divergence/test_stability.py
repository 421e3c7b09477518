"""The realised-step estimator, on the tabular theory world where the step is known exactly."""

import numpy as np
import pytest

from spin_core.config import TheoryConfig
from spin_core.divergence.stability import predicted_label, realised_step
from spin_core.divergence.theory import closed_form_step, enumerable_world, log_normalise


def theory_world():
    _, logp_data = enumerable_world(TheoryConfig(n_words=3, budget=3, n_prompts=3))
    rng = np.random.default_rng(0)
    logp_t = log_normalise(logp_data + rng.normal(0, 1.0, logp_data.shape))
    return logp_t, logp_data


@pytest.mark.parametrize("beta", [0.1, 0.4, 1.0, 5.0])
def test_the_exact_update_has_step_one_over_beta(beta):
    """The closed-form map p_{t+1} ∝ p_t (p_data/p_t)^(1/beta): s = 1/beta exactly, whatever the
    per-prompt normalising constants."""
    logp_t, logp_data = theory_world()
    logp_next = closed_form_step(logp_t, logp_data, beta)
    prompts = np.repeat(np.arange(logp_t.shape[0]), logp_t.shape[1])
    s = realised_step(logp_next.ravel(), logp_t.ravel(), logp_data.ravel(), prompts)
    assert s == pytest.approx(1 / beta, rel=1e-9)
    assert predicted_label(s) == ("contracts" if beta > 0.5 else "does not contract")


def test_a_subsample_of_responses_recovers_the_step():
    """Held-out responses are a sample, not every event: any >= 2 responses per prompt will do."""
    logp_t, logp_data = theory_world()
    logp_next = closed_form_step(logp_t, logp_data, 0.8)
    rng = np.random.default_rng(1)
    rows, cols = [], []
    for x in range(logp_t.shape[0]):
        picked = rng.choice(logp_t.shape[1], size=5, replace=False, p=np.exp(logp_data[x]))
        rows += [x] * 5
        cols += list(picked)
    s = realised_step(logp_next[rows, cols], logp_t[rows, cols], logp_data[rows, cols], rows)
    assert s == pytest.approx(1.25, rel=1e-9)


def test_no_within_prompt_variation_gives_nan_and_unknown():
    assert np.isnan(realised_step([1.0, 2.0], [0.0, 0.0], [0.5, 0.7], ["a", "b"]))
    assert predicted_label(float("nan")) == "unknown"
    assert predicted_label(2.5) == "does not contract" and predicted_label(-0.1) == "does not contract"


def _expect(logp, f):
    """E_{y~p}[f(y)] per prompt, averaged over prompts (exact: every event of the enumerable world)."""
    return float(np.mean(np.sum(np.exp(logp) * f, axis=1)))


@pytest.mark.parametrize("beta", [0.4, 0.8, 2.0])
def test_the_margin_is_the_step_times_the_jeffreys_divergence(beta):
    """M_t = E_data[D] - E_{p_t}[D], D = log p_{t+1} - log p_t, needs no log p_data; for the exact
    update it equals (1/beta) (KL(p_data||p_t) + KL(p_t||p_data)) exactly, and near p_data consecutive
    margins shrink by (1 - 1/beta)^2, so sqrt of their ratio estimates |1 - s| (analysis.convergence)."""
    import pandas as pd

    from analysis.convergence import margin_factor

    _, logp_data = enumerable_world(TheoryConfig(n_words=3, budget=3, n_prompts=3))
    rng = np.random.default_rng(0)
    logp = log_normalise(logp_data + rng.normal(0, 0.02, logp_data.shape))  # near p_data
    margins = []
    for _ in range(3):
        nxt = closed_form_step(logp, logp_data, beta)
        d = nxt - logp
        m = _expect(logp_data, d) - _expect(logp, d)
        jeffreys = _expect(logp_data, logp_data - logp) + _expect(logp, logp - logp_data)
        assert m == pytest.approx(jeffreys / beta, rel=1e-9)
        margins.append(m)
        logp = nxt
    cell = pd.DataFrame({"iteration": range(3), "margin": margins})
    assert margin_factor(cell) == pytest.approx(abs(1 - 1 / beta), rel=0.05)
