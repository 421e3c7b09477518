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
