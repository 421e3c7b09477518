"""Statistics: the prompt-clustered CI checked by hand, the paired bootstrap against the normal interval."""

import math

import numpy as np
import pytest

from spin_core.stats import clustered_mean_ci, paired_bootstrap_ci, paired_verdict


def test_clustered_ci_uses_per_prompt_means():
    values = np.array([[1.0, 3.0], [2.0, 2.0], [6.0, 4.0]])  # per-prompt means 2, 2, 5
    mean, lo, hi = clustered_mean_ci(values)
    se = np.std([2.0, 2.0, 5.0], ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(3.0)
    assert (lo, hi) == pytest.approx((3.0 - 1.959964 * se, 3.0 + 1.959964 * se))


def test_paired_bootstrap_ci_matches_the_normal_interval_of_the_differences():
    """For many prompts the percentile bootstrap of the mean difference approaches mean +- 1.96 sd/sqrt(n)."""
    rng = np.random.default_rng(1)
    d = rng.normal(0.3, 2.0, size=2000)
    mean, lo, hi = paired_bootstrap_ci(d, seed=0)
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert mean == pytest.approx(d.mean())
    assert lo == pytest.approx(mean - 1.959964 * se, abs=0.15 * se)
    assert hi == pytest.approx(mean + 1.959964 * se, abs=0.15 * se)
    assert paired_bootstrap_ci(d, seed=0) == (mean, lo, hi)  # reproducible


def test_pairing_removes_the_shared_prompt_effect():
    """Two models whose per-prompt KLs share a large prompt effect but differ by 0.1 everywhere: the
    paired CI excludes 0 although each model's own CI is far wider than 0.1."""
    rng = np.random.default_rng(2)
    prompt_effect = rng.normal(5.0, 3.0, size=200)
    a = prompt_effect + rng.normal(0, 0.05, size=200)
    b = a - 0.1
    _, lo_a, hi_a = clustered_mean_ci(a[:, None])
    assert hi_a - lo_a > 0.5
    mean, lo, hi = paired_bootstrap_ci(b - a)
    assert mean == pytest.approx(-0.1)
    assert hi < 0 and paired_verdict(lo, hi) == "lower"
    assert paired_verdict(-0.1, 0.2) == "no difference" and paired_verdict(0.1, 0.2) == "higher"
