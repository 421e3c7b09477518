"""The SPIN loss as a pure function of four log-prob tensors and beta."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("logistic", "hinge")


def spin_loss(
    policy_real_logps: torch.Tensor,
    policy_generated_logps: torch.Tensor,
    ref_real_logps: torch.Tensor,
    ref_generated_logps: torch.Tensor,
    beta: float,
    loss_type: str = "logistic",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair SPIN losses and the implicit rewards of the real and generated responses.

    margin = beta * ((logp(y) - ref_logp(y)) - (logp(y') - ref_logp(y')))
    logistic: log(1 + exp(-margin))   (the paper's choice; = -logsigmoid(margin))
    hinge:    max(0, 1 - margin)      (the paper's alternative, as in SLiC)
    Rewards are beta * (logp - ref_logp), detached, as logged by the official code.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    real_ratio = policy_real_logps - ref_real_logps
    generated_ratio = policy_generated_logps - ref_generated_logps
    margin = beta * (real_ratio - generated_ratio)
    if loss_type == "logistic":
        losses = F.softplus(-margin)
    elif loss_type == "hinge":
        losses = torch.relu(1.0 - margin)
    else:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    return losses, beta * real_ratio.detach(), beta * generated_ratio.detach()
