"""The SPIN loss against hand-computed values and the closed form."""

import math

import pytest
import torch

from spin_core.train.loss import spin_loss


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_logistic_loss_hand_computed():
    # margin = 0.5 * ((-10 - -12) - (-20 - -18)) = 0.5 * (2 - (-2)) = 2
    losses, r_real, r_gen = spin_loss(t(-10.0), t(-20.0), t(-12.0), t(-18.0), beta=0.5)
    assert losses.item() == pytest.approx(math.log(1 + math.exp(-2.0)), abs=1e-12)
    assert r_real.item() == pytest.approx(1.0)
    assert r_gen.item() == pytest.approx(-1.0)


def test_logistic_loss_closed_form_on_batch():
    g = torch.Generator().manual_seed(0)
    pr, pg, rr, rg = (torch.randn(64, generator=g, dtype=torch.float64) * 5 for _ in range(4))
    beta = 0.1
    losses, _, _ = spin_loss(pr, pg, rr, rg, beta)
    expected = [
        math.log1p(math.exp(-beta * ((a - c) - (b - d))))
        for a, b, c, d in zip(pr.tolist(), pg.tolist(), rr.tolist(), rg.tolist())
    ]
    assert torch.allclose(losses, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_logistic_at_reference_is_log2():
    # At initialisation the policy equals the reference: every pair costs log 2.
    x = t(-3.0, -7.0)
    losses, _, _ = spin_loss(x, x + 1, x, x + 1, beta=0.1)
    assert torch.allclose(losses, torch.full_like(losses, math.log(2)))


def test_logistic_is_stable_for_large_margins():
    losses, _, _ = spin_loss(t(0.0), t(-1e4), t(0.0), t(0.0), beta=1.0)
    assert losses.item() == pytest.approx(0.0, abs=1e-30)
    losses, _, _ = spin_loss(t(-1e4), t(0.0), t(0.0), t(0.0), beta=1.0)
    assert losses.item() == pytest.approx(1e4)


def test_hinge_loss_hand_computed():
    # pair 1: (-1 - -1) - (-2 - -1) = 1 -> margin 0.2 -> 0.8
    # pair 2: (-10 - -12) - (-20 - -18) = 4 -> margin 0.8 -> 0.2;  pair 3: margin 2 -> 0
    losses, _, _ = spin_loss(
        t(-1.0, -10.0, 0.0), t(-2.0, -20.0, -10.0), t(-1.0, -12.0, 0.0), t(-1.0, -18.0, 0.0), 0.2, "hinge"
    )
    assert losses.tolist() == pytest.approx([0.8, 0.2, 0.0])


def test_gradient_raises_real_and_lowers_generated():
    pr, pg = t(-5.0).requires_grad_(), t(-5.0).requires_grad_()
    losses, _, _ = spin_loss(pr, pg, t(-5.0), t(-5.0), beta=0.1)
    losses.sum().backward()
    # d/dpr = -beta * sigmoid(-m) = -0.05 at m = 0
    assert pr.grad.item() == pytest.approx(-0.05) and pg.grad.item() == pytest.approx(0.05)


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_beta_must_be_positive(beta):
    with pytest.raises(ValueError, match="beta"):
        spin_loss(t(0.0), t(0.0), t(0.0), t(0.0), beta=beta)


def test_unknown_loss_type():
    with pytest.raises(ValueError, match="loss_type"):
        spin_loss(t(0.0), t(0.0), t(0.0), t(0.0), beta=0.1, loss_type="ipo")
