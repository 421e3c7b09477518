"""Theory overlay: SPIN iterated exactly on an enumerable world with a tabular policy.

On a world small enough to list every response event (see world.py: complete responses of fewer
than T words, or truncated runs of T words), p_data(.|x) is a vector and a tabular policy is a
vector of logits. For each prompt, iteration t minimises the population SPIN loss

    L(p) = sum_{y, y'} p_data(y) p_t(y') * softplus(-beta * [(log p(y) - log p_t(y)) - (log p(y') - log p_t(y'))])

Three ways to take the step, compared in the report:
  map        the paper's closed form p_{t+1} ∝ p_t (p_data / p_t)^(1/beta);
  minimise   L-BFGS on L from p_t until the gradient vanishes (checks the closed form numerically);
  budget     `steps` plain gradient-descent steps of size `lr` on L from p_t (finite training).

Why the map is the minimiser: L is a Bradley-Terry likelihood in d = log p - log p_t with "wins"
p_data(y) p_t(y'); the fit that makes every pair's win probability equal its empirical share is
beta * d(y) = log(p_data(y) / p_t(y)) + const, which is the map. It follows that
log p_{t+1} - log p_data = (1 - 1/beta) (log p_t - log p_data) + const, a contraction only for
beta > 1/2; at beta = 1 one step lands on p_data, and at the paper's beta = 0.1 the deviation is
multiplied by -9 per step. Everything here is float64 numpy/torch on a CPU, seconds in total.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import torch

from ..config import TheoryConfig, WorldConfig
from ..world.world import TinyWorld

log = logging.getLogger(__name__)

THEORY_COLUMNS = ["method", "beta", "lr", "steps", "iteration", "forward_kl", "reverse_kl", "step_gap_tv"]


# ---------------------------------------------------------------- the enumerable world
def enumerate_events(
    world: TinyWorld, prompt: np.ndarray, budget: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Every response event under a budget of `budget` tokens, with its exact log p_data."""
    n = world.config.n_words
    responses, complete = [], []
    for length in range(budget + 1):
        for words in itertools.product(range(n), repeat=length):
            responses.append(np.array(words, dtype=np.int64))
            complete.append(length < budget)
    complete = np.array(complete)
    logp = world.log_prob([prompt] * len(responses), responses, complete)
    return responses, complete, logp


def enumerable_world(cfg: TheoryConfig) -> tuple[TinyWorld, np.ndarray]:
    """A small world and the (prompts, events) matrix of exact log p_data."""
    world = TinyWorld(
        WorldConfig(seed=cfg.world_seed, n_words=cfg.n_words, length_base=1.0, length_per_prompt_word=0.5)
    )
    prompts = world.sample_prompts(cfg.n_prompts, np.random.default_rng(cfg.prompt_seed))
    logp = np.stack([enumerate_events(world, p, cfg.budget)[2] for p in prompts])
    return world, logp


# ---------------------------------------------------------------- pure math
def log_normalise(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis."""
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


def kl(logp: np.ndarray, logq: np.ndarray) -> float:
    """KL(p || q) summed over events, averaged over prompts (rows)."""
    return float(np.mean(np.sum(np.exp(logp) * (logp - logq), axis=-1)))


def total_variation(logp: np.ndarray, logq: np.ndarray) -> float:
    """Largest (over prompts) total-variation distance between two rows of distributions."""
    return float(np.max(0.5 * np.abs(np.exp(logp) - np.exp(logq)).sum(axis=-1)))


def closed_form_step(logp_t: np.ndarray, logp_data: np.ndarray, beta: float) -> np.ndarray:
    """The paper's update p_{t+1} ∝ p_t (p_data / p_t)^(1/beta), in log space."""
    return log_normalise(logp_t + (logp_data - logp_t) / beta)


def alpha_spin_step(
    logp_t: np.ndarray, logp_0: np.ndarray, logp_data: np.ndarray, beta: float, alpha: float
) -> np.ndarray:
    """α-SPIN's update (arXiv 2404.04291: the reference is the geometric mixture r_t ∝ p_t^(1-α) p_0^α,
    the opponent y' still ~ p_t). The Bradley-Terry argument of the module docstring, with d = log p -
    log r_t, gives beta * d(y) = log(p_data(y) / p_t(y)) + const, so
        log p_{t+1} = (1 - α) log p_t + α log p_0 + (log p_data - log p_t) / beta + const.
    α = 0 is SPIN's map."""
    return log_normalise((1 - alpha) * logp_t + alpha * logp_0 + (logp_data - logp_t) / beta)


def alpha_spin_fixed_point(logp_0: np.ndarray, logp_data: np.ndarray, beta: float, alpha: float) -> np.ndarray:
    """The α-SPIN map's fixed point: x = (1 - α - 1/beta) x + α log p_0 + log p_data / beta gives
    p* ∝ p_data^(1/(1+αβ)) p_0^(αβ/(1+αβ)), a geometric mixture pulled towards the start: p_data only
    at α = 0 (or when p_0 = p_data)."""
    w = alpha * beta / (1 + alpha * beta)
    return log_normalise((1 - w) * logp_data + w * logp_0)


def alpha_spin_factor(beta: float, alpha: float) -> float:
    """What one α-SPIN step multiplies the deviation log p_t - log p* by (up to a constant per prompt):
    1 - α - 1/beta. It contracts iff |1 - α - 1/beta| < 1; at the paper's beta = 0.1 it is -9 - α, so the
    KL regularisation does not make the exact update converge there."""
    return 1.0 - alpha - 1.0 / beta


def population_spin_loss(
    logits: torch.Tensor,
    logp_t: torch.Tensor,
    logp_data: torch.Tensor,
    beta: float,
    logp_ref: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact expected SPIN logistic loss over y ~ p_data, y' ~ p_t, averaged over prompts; the margins
    are taken against logp_ref (default p_t itself; α-SPIN: a mixture with p_0)."""
    d = torch.log_softmax(logits, dim=-1) - (logp_t if logp_ref is None else logp_ref)  # (prompts, events)
    margin = beta * (d[:, :, None] - d[:, None, :])  # [x, y, y']
    weights = logp_data.exp()[:, :, None] * logp_t.exp()[:, None, :]
    return (weights * torch.nn.functional.softplus(-margin)).sum(dim=(1, 2)).mean()


def minimise_step(
    logp_t: np.ndarray, logp_data: np.ndarray, beta: float, max_iter: int = 500, logp_ref: np.ndarray | None = None
) -> np.ndarray:
    """Numerically minimise the population loss from p_t (L-BFGS, float64), margins against logp_ref."""
    lt = torch.tensor(logp_t, dtype=torch.float64)
    ld = torch.tensor(logp_data, dtype=torch.float64)
    lr = None if logp_ref is None else torch.tensor(logp_ref, dtype=torch.float64)
    logits = lt.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [logits], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = population_spin_loss(logits, lt, ld, beta, lr)
        loss.backward()
        return loss

    opt.step(closure)
    return log_normalise(logits.detach().numpy())


def budget_step(logp_t: np.ndarray, logp_data: np.ndarray, beta: float, lr: float, steps: int) -> np.ndarray:
    """`steps` steps of gradient descent with step size `lr` on the population loss from p_t."""
    lt = torch.tensor(logp_t, dtype=torch.float64)
    ld = torch.tensor(logp_data, dtype=torch.float64)
    logits = lt.clone().requires_grad_(True)
    opt = torch.optim.SGD([logits], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        population_spin_loss(logits, lt, ld, beta).backward()
        opt.step()
    return log_normalise(logits.detach().numpy())


# ---------------------------------------------------------------- the overlay
def iterate(step, logp_0: np.ndarray, logp_data: np.ndarray, iterations: int) -> list[np.ndarray]:
    """[p_0, p_1, ..., p_iterations] from a step function p_t -> p_{t+1}."""
    out = [logp_0]
    for _ in range(iterations):
        out.append(step(out[-1]))
    return out


def theory_overlay(theory: TheoryConfig) -> pd.DataFrame:
    """The tabular theory overlay: SPIN iterated exactly on an enumerable world.

    KL(p_data || p_t) and KL(p_t || p_data) per iteration for the map, the numerical minimiser
    and each finite budget, at every beta. `step_gap_tv` (minimise rows) is the total-variation
    distance between the numerical minimiser and the map taken from the same p_t."""
    _, logp_data = enumerable_world(theory)
    logp_0 = log_normalise(logp_data / theory.init_temperature)
    rows = []

    def record(method, beta, lr, steps, path, gaps=None):
        for t, lp in enumerate(path):
            rows.append(
                {
                    "method": method,
                    "beta": beta,
                    "lr": lr,
                    "steps": steps,
                    "iteration": t,
                    "forward_kl": kl(logp_data, lp),
                    "reverse_kl": kl(lp, logp_data),
                    "step_gap_tv": np.nan if gaps is None else gaps[t],
                }
            )

    for beta in theory.betas:
        record(
            "map",
            beta,
            np.nan,
            0,
            iterate(lambda lp, beta=beta: closed_form_step(lp, logp_data, beta), logp_0, logp_data, theory.iterations),
        )
        path, gaps = [logp_0], [0.0]
        for _ in range(theory.iterations):
            nxt = minimise_step(path[-1], logp_data, beta)
            gaps.append(total_variation(nxt, closed_form_step(path[-1], logp_data, beta)))
            path.append(nxt)
        record("minimise", beta, np.nan, 0, path, gaps)
        for b in theory.budgets:
            step = lambda lp, b=b, beta=beta: budget_step(lp, logp_data, beta, b.lr, b.steps)  # noqa: E731
            record("budget", beta, b.lr, b.steps, iterate(step, logp_0, logp_data, theory.iterations))
        log.info("theory: beta=%g done", beta)
    return pd.DataFrame(rows, columns=THEORY_COLUMNS)
