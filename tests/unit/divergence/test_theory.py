"""Theory overlay: the enumerable world, the closed-form map and the numerical minimiser."""

import numpy as np
import pytest
import torch

from spin_core.config import TheoryBudget, TheoryConfig
from spin_core.divergence.theory import (
    budget_step,
    closed_form_step,
    enumerable_world,
    enumerate_events,
    kl,
    log_normalise,
    minimise_step,
    population_spin_loss,
    theory_overlay,
    total_variation,
)

CFG = TheoryConfig(n_words=3, budget=3, n_prompts=2)


@pytest.fixture(scope="module")
def data():
    _, logp_data = enumerable_world(CFG)
    return logp_data, log_normalise(logp_data / 2.0)


def test_events_partition_the_sample_space(data):
    logp_data, _ = data
    # 1 + 3 + 9 complete responses + 27 truncated runs of 3 words
    assert logp_data.shape == (2, 1 + 3 + 9 + 27)
    np.testing.assert_allclose(np.exp(logp_data).sum(axis=1), 1.0, atol=1e-12)


def test_enumerate_events_flags_truncated_runs():
    world, _ = enumerable_world(CFG)
    responses, complete, _ = enumerate_events(world, np.array([0, 1]), 2)
    assert [len(r) for r, c in zip(responses, complete) if not c] == [2] * 9
    assert all(len(r) < 2 for r, c in zip(responses, complete) if c)


def test_map_at_beta_one_lands_on_p_data(data):
    logp_data, logp_0 = data
    np.testing.assert_allclose(closed_form_step(logp_0, logp_data, 1.0), logp_data, atol=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_map_scales_the_log_deviation_by_one_minus_inverse_beta(data, beta):
    logp_data, logp_0 = data
    dev = lambda lp: (lp - logp_data) - (lp - logp_data).mean(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(dev(closed_form_step(logp_0, logp_data, beta)), (1 - 1 / beta) * dev(logp_0), atol=1e-9)


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_numerical_minimiser_matches_the_map(data, beta):
    logp_data, logp_0 = data
    found, target = minimise_step(logp_0, logp_data, beta), closed_form_step(logp_0, logp_data, beta)
    assert total_variation(logp_0, target) > 0.05  # the step is far from trivial
    assert total_variation(found, target) < 1e-4  # L-BFGS stops within ~1e-5 of it


def test_map_is_a_stationary_point_of_the_population_loss(data):
    logp_data, logp_0 = data
    target = torch.tensor(closed_form_step(logp_0, logp_data, 2.0), requires_grad=True)
    population_spin_loss(target, torch.tensor(logp_0), torch.tensor(logp_data), 2.0).backward()
    assert target.grad.abs().max() < 1e-10
    # and p_t itself is not (SPIN moves away from it when p_t != p_data)
    start = torch.tensor(logp_0, requires_grad=True)
    population_spin_loss(start, torch.tensor(logp_0), torch.tensor(logp_data), 2.0).backward()
    assert start.grad.abs().max() > 1e-3


def test_budget_step_moves_toward_p_data_and_zero_steps_is_identity(data):
    logp_data, logp_0 = data
    np.testing.assert_allclose(budget_step(logp_0, logp_data, 0.1, lr=1.0, steps=0), logp_0, atol=1e-12)
    assert kl(logp_data, budget_step(logp_0, logp_data, 0.1, lr=1.0, steps=10)) < kl(logp_data, logp_0)


def test_overlay_rows_and_the_beta_regimes():
    df = theory_overlay(
        TheoryConfig(
            n_words=3,
            budget=3,
            n_prompts=2,
            iterations=4,
            betas=(0.1, 1.0, 2.0),
            budgets=(TheoryBudget(lr=1.0, steps=5),),
        )
    )
    assert set(df.method) == {"map", "minimise", "budget"}
    fkl = df[df.method == "map"].set_index(["beta", "iteration"]).forward_kl
    assert fkl[(1.0, 1)] < 1e-12  # one step lands on p_data
    assert fkl[(2.0, 4)] < fkl[(2.0, 1)] < fkl[(2.0, 0)]  # beta > 1/2 contracts
    assert fkl[(0.1, 2)] > fkl[(0.1, 0)]  # the paper's beta = 0.1 overshoots
    assert np.isfinite(df.forward_kl).all()


@pytest.mark.parametrize("beta, alpha", [(2.0, 0.3), (1.0, 0.5), (0.5, 0.2)])
def test_alpha_spin_map_is_the_minimiser_with_the_mixture_reference(data, beta, alpha):
    """α-SPIN's closed form (reference r_t ∝ p_t^(1-α) p_0^α, y' ~ p_t) is what minimising the exact
    population loss with that reference gives, and α = 0 is SPIN's map."""
    from spin_core.divergence.theory import alpha_spin_step

    logp_data, logp_0 = data
    logp_t = log_normalise(0.7 * logp_0 + 0.3 * logp_data)  # an iterate between the start and p_data
    ref = log_normalise((1 - alpha) * logp_t + alpha * logp_0)
    numeric = minimise_step(logp_t, logp_data, beta, logp_ref=ref)
    target = alpha_spin_step(logp_t, logp_0, logp_data, beta, alpha)
    assert total_variation(numeric, target) < 1e-4  # L-BFGS stops within ~1e-5 of it, as for SPIN's map
    assert total_variation(numeric, closed_form_step(logp_t, logp_data, beta)) > 100 * total_variation(numeric, target)
    np.testing.assert_allclose(alpha_spin_step(logp_t, logp_0, logp_data, beta, 0.0),
                               closed_form_step(logp_t, logp_data, beta), atol=1e-12)  # fmt: skip


def test_alpha_spin_fixed_point_and_deviation_factor(data):
    """Iterating the α-SPIN map: the deviation from p* ∝ p_data^(1/(1+αβ)) p_0^(αβ/(1+αβ)) is multiplied
    by 1 - α - 1/β each step (within prompts, up to a constant): it settles at p*, not at p_data, where
    that factor is below 1 in size, and grows at the paper's β = 0.1 whatever α."""
    from spin_core.divergence.theory import alpha_spin_factor, alpha_spin_fixed_point, alpha_spin_step

    logp_data, logp_0 = data

    def deviation(lp, star):  # log-ratio to p*, centred per prompt (normalisation is a constant)
        e = lp - star
        return e - e.mean(axis=-1, keepdims=True)

    beta, alpha = 2.0, 0.3
    star = alpha_spin_fixed_point(logp_0, logp_data, beta, alpha)
    np.testing.assert_allclose(alpha_spin_step(star, logp_0, logp_data, beta, alpha), star, atol=1e-12)
    lp = logp_0
    for _ in range(3):
        nxt = alpha_spin_step(lp, logp_0, logp_data, beta, alpha)
        ratio = np.linalg.norm(deviation(nxt, star)) / np.linalg.norm(deviation(lp, star))
        assert ratio == pytest.approx(abs(alpha_spin_factor(beta, alpha)), rel=1e-9)  # 0.2
        lp = nxt
    assert kl(logp_data, star) > 1e-3  # the fixed point is not p_data
    lp = logp_0
    for _ in range(40):
        lp = alpha_spin_step(lp, logp_0, logp_data, beta, alpha)
    assert total_variation(lp, star) < 1e-12
    assert alpha_spin_factor(0.1, 0.5) == pytest.approx(-9.5)  # diverges at the paper's beta
